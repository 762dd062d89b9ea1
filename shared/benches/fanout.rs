//! The fan-out engine against a loopback @connections sink: posts/s, CPU per post and peak
//! memory, next to the sink's raw rate measured in the same run.
//!
//! `cargo bench -p hubbub-core --bench fanout [-- --recipients 1000,10000 --runs 3]`
//!
//! The sink is this same binary started as a child process (`--sink`): an HTTP server that
//! answers 200 to every `POST /{stage}/@connections/{id}`, so the CPU this process spends is
//! the engine's alone. The engine runs on a single-threaded runtime, as a Lambda with a
//! fraction of a vCPU effectively does. Each size runs:
//!
//! - **raw**: unsigned POSTs from a bare pooled hyper client at the same concurrency, the
//!   most this sink can take from one core of this machine (the baseline);
//! - **engine**: `fanout::broadcast` over an in-memory room, through the real
//!   `ManagementGateway` (SigV4 signing, retry rules, pooled connections);
//! - **sdk**: the same posts through aws-sdk-apigatewaymanagement's `PostToConnection`
//!   (one cached client, 32 in flight), which is how hubbub posted before.
//!
//! and prints the median of the runs and the engine's rate as a ratio of the raw rate.
//!
//! `-- --room 100000 --workers 8` measures a large room instead: its members in the
//! in-memory store, `queue::deliver` splitting them into chunk jobs, and `--workers`
//! in-process fan-out workers (concurrent tasks on a two-thread runtime, as the
//! `fanout-worker` Lambdas are concurrent invocations) posting to the sink; it prints the
//! time until every post is answered, the posts/s each worker drove while busy, and the CPU
//! per post of this process and of the sink (both share the machine's cores).
//!
//! `-- --member-pages 1000` measures what reading a room's members costs the function that
//! fans out, on the DynamoDB adapter against the DynamoDB-compatible server the tests use
//! (`HUBBUB_TEST_DYNAMODB_ENDPOINT`): this process's CPU per page of full member items
//! (`room_members`) and of ids only (`room_member_ids`, what fan-out reads), alternating,
//! 5 reads of each per run. (Joining the members takes the server a while: ~6 min for 1,000.)

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::Full;
use hubbub_core::fanout::{FANOUT_CONCURRENCY, broadcast};
use hubbub_core::gateway::Endpoint;
use hubbub_core::gateway::management::ManagementGateway;
use hubbub_core::protocol::{ChatMessage, ClientMsgId, MessageBody, RoomId, ServerFrame, UserRef};
use hubbub_core::queue::local::LocalFanoutQueue;
use hubbub_core::queue::{CHUNK_SIZE, deliver};
use hubbub_core::store::memory::MemoryConnectionStore;
use hubbub_core::store::{Connection, ConnectionStore};
use time::OffsetDateTime;

type Raw = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--sink") {
        sink();
        return;
    }
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let sizes: Vec<usize> = arg("--recipients")
        .unwrap_or_else(|| "1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("--recipients takes numbers"))
        .collect();
    let runs: usize = arg("--runs")
        .map(|s| s.parse().expect("--runs takes a number"))
        .unwrap_or(3);

    if let Some(members) = arg("--member-pages") {
        member_pages(
            members.parse().expect("--member-pages takes a number"),
            runs,
        );
        return;
    }
    let (mut child, port) = start_sink();
    if let Some(members) = arg("--room") {
        let members: usize = members.parse().expect("--room takes a number");
        let workers: usize = arg("--workers")
            .map(|s| s.parse().expect("--workers takes a number"))
            .unwrap_or(8);
        large_room(port, child.id(), members, workers, runs);
        let _ = child.kill();
        let _ = child.wait();
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let endpoint = format!("http://127.0.0.1:{port}/bench");
    println!(
        "fan-out engine vs raw loopback sink (concurrency {FANOUT_CONCURRENCY}, {runs} runs, medians)"
    );
    println!(
        "| recipients | raw posts/s | engine posts/s | engine/raw | engine CPU µs/post | raw CPU µs/post | SDK posts/s | SDK CPU µs/post | engine ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let results = rt.block_on(measure(&endpoint, n, runs));
        println!(
            "| {n} | {:.0} | {:.0} | {:.0} % | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} |",
            results.raw_rate,
            results.engine_rate,
            100.0 * results.engine_rate / results.raw_rate,
            results.engine_cpu_us,
            results.raw_cpu_us,
            results.sdk_rate,
            results.sdk_cpu_us,
            results.engine_ms,
        );
    }
    println!("peak RSS of the bench process: {:.1} MiB", peak_rss_mib());
    let _ = child.kill();
    let _ = child.wait();
}

/// One message to a room of `members`, through `deliver` and `workers` in-process workers;
/// `sink` is the sink's process id, for its CPU time.
fn large_room(port: u16, sink: u32, members: usize, workers: usize, runs: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let endpoint = format!("http://127.0.0.1:{port}/bench");
    rt.block_on(async {
        let (store, room, frame) = room_of(members).await;
        let store = std::sync::Arc::new(store);
        let gateway = ManagementGateway::new(&bench_sdk());
        let ep = Endpoint::for_request("x", "y", Some(&endpoint));
        println!(
            "large room: {members} members, {workers} workers (chunks of {CHUNK_SIZE}), {runs} runs"
        );
        println!(
            "| run | all answered ms | posts/s | per worker posts/s (busy) | delivered | engine CPU µs/post | sink CPU µs/post |"
        );
        println!("|---|---|---|---|---|---|---|");
        let mut totals_ms = Vec::new();
        for run in 0..=runs {
            // Run 0 warms the pool, as a warm worker's is, and is not counted.
            let queue = LocalFanoutQueue::new(store.clone(), gateway.clone(), workers);
            let (engine0, sink0) = (process_cpu_seconds("self"), process_cpu_seconds(sink));
            let t0 = Instant::now();
            deliver(
                store.as_ref(),
                gateway.as_ref(),
                &queue,
                &ep,
                &room,
                &frame,
                None,
            )
            .await
            .expect("deliver");
            queue.idle().await;
            let dt = t0.elapsed().as_secs_f64();
            let per_post = |cpu: f64| cpu * 1e6 / members as f64;
            let engine_us = per_post(process_cpu_seconds("self") - engine0);
            let sink_us = per_post(process_cpu_seconds(sink) - sink0);
            let totals = queue.totals();
            assert_eq!(
                totals.delivered, members,
                "every post delivered: {totals:?}"
            );
            if run == 0 {
                continue;
            }
            let per: Vec<String> = queue
                .stats()
                .iter()
                .filter(|s| s.posts > 0)
                .map(|s| format!("{:.0}", s.posts as f64 / s.busy.as_secs_f64()))
                .collect();
            println!(
                "| {run} | {:.0} | {:.0} | {} | {} | {engine_us:.1} | {sink_us:.1} |",
                dt * 1e3,
                members as f64 / dt,
                per.join(", "),
                totals.delivered
            );
            totals_ms.push(dt * 1e3);
        }
        println!(
            "median: {:.0} ms for {members} posts ({:.0} posts/s)",
            median(totals_ms.clone()),
            members as f64 / (median(totals_ms) / 1e3)
        );
    });
    println!("peak RSS of the bench process: {:.1} MiB", peak_rss_mib());
}

/// `--member-pages`: one page of `members` read as full items and as ids, `runs` × 5 times.
fn member_pages(members: usize, runs: usize) {
    use hubbub_core::store::MembershipStore;
    use hubbub_core::store::dynamodb::DynamoConnectionStore;
    let endpoint = std::env::var("HUBBUB_TEST_DYNAMODB_ENDPOINT")
        .expect("--member-pages needs HUBBUB_TEST_DYNAMODB_ENDPOINT");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dynamo = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&bench_sdk())
                .endpoint_url(endpoint)
                .build(),
        );
        let table = format!("hubbub-bench-{}", std::process::id());
        let store = DynamoConnectionStore::new(dynamo, table);
        store.ensure_table().await.expect("table");
        let room = RoomId::parse("bench").expect("room");
        let now = OffsetDateTime::now_utc();
        // Ids and names of the sizes API Gateway and hubbub give them.
        for i in 0..members {
            let c = Connection::new(
                format!("L0SM9cOFvHc{i:05}="),
                UserRef {
                    id: format!("8f14e45f-ceea-467f-a0e6-{i:012}"),
                    name: format!("user-name-{i}"),
                },
                now,
            );
            store.put_connection(&c).await.expect("put");
            store.join_room(&c, &room).await.expect("join");
        }
        let page = u32::try_from(members).expect("page size");
        let (mut full, mut ids) = (vec![], vec![]);
        for _ in 0..runs * 5 {
            let cpu0 = cpu_seconds();
            let p = store.room_members(&room, None, page).await.expect("page");
            full.push((cpu_seconds() - cpu0) * 1e6);
            assert_eq!(p.members.len(), members);
            let cpu0 = cpu_seconds();
            let p = store
                .room_member_ids(&room, None, page)
                .await
                .expect("page");
            ids.push((cpu_seconds() - cpu0) * 1e6);
            assert_eq!(p.connection_ids.len(), members);
        }
        let (full, ids) = (median(full), median(ids));
        println!("| members per page | full items: CPU µs | ids only: CPU µs | ids / full |");
        println!("|---|---|---|---|");
        println!("| {members} | {full:.0} | {ids:.0} | {:.2} |", ids / full);
    });
}

/// A room of `n` members in the in-memory store, and a typical message frame for it.
async fn room_of(n: usize) -> (MemoryConnectionStore, RoomId, ServerFrame) {
    let room = RoomId::parse("bench").expect("room");
    let store = MemoryConnectionStore::new();
    let now = OffsetDateTime::now_utc();
    for i in 0..n {
        let c = Connection::new(
            format!("c{i:07}AbCdEf="),
            UserRef {
                id: format!("u{i}"),
                name: format!("user{i}"),
            },
            now,
        );
        store.put_connection(&c).await.expect("put");
        store.join_room(&c, &room).await.expect("join");
    }
    let frame = ServerFrame::Message(ChatMessage::plain(
        room.clone(),
        42,
        UserRef {
            id: "u-sender".into(),
            name: "sender".into(),
        },
        MessageBody::parse("x".repeat(120)).expect("body"),
        ClientMsgId::parse("m-1").expect("id"),
        now,
    ));
    (store, room, frame)
}

/// Static credentials: the sink does not check signatures, but the engine signs as on AWS.
fn bench_sdk() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .http_client(hubbub_core::runtime::https_client())
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    "AKIDBENCH",
                    "bench-secret",
                    None,
                    None,
                    "bench",
                ),
            ),
        )
        .build()
}

struct Results {
    raw_rate: f64,
    engine_rate: f64,
    engine_cpu_us: f64,
    raw_cpu_us: f64,
    engine_ms: f64,
    sdk_rate: f64,
    sdk_cpu_us: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn measure(endpoint: &str, n: usize, runs: usize) -> Results {
    let (store, room, frame) = room_of(n).await;
    let sdk = bench_sdk();
    let gateway = ManagementGateway::new(&sdk);
    let ep = Endpoint::for_request("x", "y", Some(endpoint));
    let raw: Raw =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build_http();
    let data = Bytes::from(frame.to_json());

    // Warm both pools, as a warm Lambda's are.
    raw_posts(&raw, endpoint, n.min(200), &data).await;
    broadcast(&store, gateway.as_ref(), &ep, &room, &frame, None)
        .await
        .expect("warm-up");

    let sdk = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .build(),
    );
    sdk_posts(&sdk, n.min(200), &data).await;
    let (mut raw_rate, mut raw_cpu, mut eng_rate, mut eng_cpu, mut eng_ms) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut sdk_rate, mut sdk_cpu) = (vec![], vec![]);
    for _ in 0..runs {
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        raw_posts(&raw, endpoint, n, &data).await;
        let (dt, dcpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
        raw_rate.push(n as f64 / dt);
        raw_cpu.push(dcpu * 1e6 / n as f64);

        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        let report = broadcast(&store, gateway.as_ref(), &ep, &room, &frame, None)
            .await
            .expect("broadcast");
        let (dt, dcpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
        assert_eq!(report.delivered, n, "every post delivered: {report:?}");
        eng_rate.push(n as f64 / dt);
        eng_cpu.push(dcpu * 1e6 / n as f64);
        eng_ms.push(dt * 1e3);

        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        sdk_posts(&sdk, n, &data).await;
        let (dt, dcpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
        sdk_rate.push(n as f64 / dt);
        sdk_cpu.push(dcpu * 1e6 / n as f64);
    }
    Results {
        raw_rate: median(raw_rate),
        engine_rate: median(eng_rate),
        engine_cpu_us: median(eng_cpu),
        raw_cpu_us: median(raw_cpu),
        engine_ms: median(eng_ms),
        sdk_rate: median(sdk_rate),
        sdk_cpu_us: median(sdk_cpu),
    }
}

/// `n` posts through the SDK client at the engine's concurrency.
async fn sdk_posts(client: &aws_sdk_apigatewaymanagement::Client, n: usize, data: &Bytes) {
    let ok = futures::stream::iter(0..n)
        .map(|i| {
            client
                .post_to_connection()
                .connection_id(format!("c{i:07}AbCdEf="))
                .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
                    data.to_vec(),
                ))
                .send()
        })
        .buffer_unordered(FANOUT_CONCURRENCY)
        .filter(|r| futures::future::ready(r.is_ok()))
        .count()
        .await;
    assert_eq!(ok, n, "SDK posts succeed");
}

/// `n` unsigned posts at the engine's concurrency.
async fn raw_posts(client: &Raw, endpoint: &str, n: usize, data: &Bytes) {
    let ok = futures::stream::iter(0..n)
        .map(|i| {
            let req = http::Request::post(format!("{endpoint}/@connections/c{i:07}AbCdEf%3D"))
                .body(Full::new(data.clone()))
                .expect("request");
            client.request(req)
        })
        .buffer_unordered(FANOUT_CONCURRENCY)
        .filter(|r| futures::future::ready(r.as_ref().is_ok_and(|r| r.status().is_success())))
        .count()
        .await;
    assert_eq!(ok, n, "raw posts succeed");
}

/// CPU time of this process's main thread, where the single-threaded runtime runs every
/// task of the engine (ns precision, from the scheduler's own accounting).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/schedstat").expect("schedstat");
    let ns: f64 = stat
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("schedstat: cpu ns");
    ns / 1e9
}

/// CPU time (user + system, every thread) of process `pid` ("self": this one), at the
/// scheduler's tick resolution, which is fine for runs of seconds.
fn process_cpu_seconds(pid: impl std::fmt::Display) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name, which is in parentheses and may hold spaces: utime
    // and stime are the 12th and 13th of them, in clock ticks (100 a second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| -> f64 {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .expect("stat: cpu ticks")
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory of this process (VmHWM).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib / 1024.0
}

/// Starts `self --sink` and reads the port it listens on.
fn start_sink() -> (Child, u16) {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .arg("--sink")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sink");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("sink port");
    let port = line.trim().parse().expect("sink prints its port");
    (child, port)
}

/// The sink: 200 to every post, on all cores the machine gives it.
fn sink() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let app = axum::Router::new().route(
            "/{stage}/@connections/{id}",
            axum::routing::post(|_body: Bytes| async { axum::http::StatusCode::OK }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("addr").port());
        // The parent reads one line and kills this process when done; the timeout only
        // bounds an orphaned sink.
        tokio::time::timeout(Duration::from_secs(3600), axum::serve(listener, app))
            .await
            .ok();
    });
}

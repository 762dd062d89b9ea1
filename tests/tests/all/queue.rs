//! Large rooms across workers: the hand-off to the fan-out queue, in-process workers, the
//! SQS adapter against the DynamoDB/SQS-compatible server, and the fan-out worker handler.

use std::sync::Arc;

use hubbub_core::aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use hubbub_core::gateway::management::{GatewayOptions, ManagementGateway};
use hubbub_core::gateway::{ConnectionGateway, Endpoint};
use hubbub_core::presence::{LocalPresence, PRESENCE_DETAIL_LIMIT, PresenceChange, PresenceSink};
use hubbub_core::protocol::{
    ChatMessage, ClientMsgId, MessageBody, PresenceState, ServerFrame, UserRef,
};
use hubbub_core::queue::local::{LocalFanoutQueue, ROUND_INTERVAL};
use hubbub_core::queue::sqs::{SqsFanoutQueue, SqsPresenceSink};
use hubbub_core::queue::{CHUNK_SIZE, FanoutJob, FanoutQueue, LARGE_ROOM_THRESHOLD, deliver};
use hubbub_core::store::ConnectionStore;
use hubbub_core::store::memory::MemoryConnectionStore;
use hubbub_tests::Recorder;
use hubbub_tests::contract::{connection, room};

/// A memory store with `n` members in room `big`; returns their connection ids.
async fn big_room(store: &MemoryConnectionStore, n: usize) -> Vec<String> {
    let big = room("big");
    let mut ids = Vec::new();
    for i in 0..n {
        let c = connection(&format!("u{i}"));
        store.put_connection(&c).await.expect("put");
        store.join_room(&c, &big).await.expect("join");
        ids.push(c.id);
    }
    ids
}

fn posts_per_recipient(rec: &Recorder) -> std::collections::HashMap<String, usize> {
    let mut m = std::collections::HashMap::new();
    for (to, _) in rec.posts() {
        *m.entry(to).or_insert(0) += 1;
    }
    m
}

/// A room within one member page is posted inline: nothing reaches the queue.
#[tokio::test]
async fn small_rooms_are_posted_inline() {
    let rec = Recorder::start().await;
    let store = Arc::new(MemoryConnectionStore::new());
    let ids = big_room(&store, LARGE_ROOM_THRESHOLD).await;
    let gateway: Arc<dyn ConnectionGateway> = rec.gateway();
    let queue = LocalFanoutQueue::new(store.clone(), gateway.clone(), 4);
    let ep = Endpoint::for_request("x", "y", Some(&rec.endpoint()));
    let report = deliver(
        store.as_ref(),
        gateway.as_ref(),
        &queue,
        &ep,
        &room("big"),
        &ServerFrame::Pong,
        Some(&ids[0]),
    )
    .await
    .expect("deliver");
    assert_eq!((report.delivered, report.queued), (ids.len() - 1, 0));
    assert_eq!(queue.totals().delivered, 0, "no job ran");
}

/// A large room is split into jobs that workers run concurrently: every member but the
/// sender gets the frame exactly once, gone members are removed, and a member throttled
/// past the gateway's own retries is re-enqueued and still gets it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_rooms_are_chunked_across_workers_exactly_once() {
    let rec = Recorder::start().await;
    let store = Arc::new(MemoryConnectionStore::new());
    let n = LARGE_ROOM_THRESHOLD + CHUNK_SIZE as usize + 300;
    let ids = big_room(&store, n).await;
    let (sender, gone, throttled) = (ids[3].clone(), ids[500].clone(), ids[1400].clone());
    rec.make_gone(&gone);
    // Three 429s exhaust the gateway's attempts; the job-level retry then succeeds.
    rec.fail_next(&throttled, &[429, 429, 429]);
    // A patient gateway: on a loaded machine a post could outlast the default attempt
    // timeout, and an unknown outcome is (rightly) never retried, which this test is not about.
    let gateway: Arc<dyn ConnectionGateway> = ManagementGateway::with_options(
        &hubbub_tests::sdk_config(),
        GatewayOptions {
            attempt_timeout: std::time::Duration::from_secs(30),
            ..GatewayOptions::default()
        },
    );
    let queue = LocalFanoutQueue::new(store.clone(), gateway.clone(), 4);
    let ep = Endpoint::for_request("x", "y", Some(&rec.endpoint()));
    let report = deliver(
        store.as_ref(),
        gateway.as_ref(),
        &queue,
        &ep,
        &room("big"),
        &ServerFrame::Pong,
        Some(&sender),
    )
    .await
    .expect("deliver");
    assert_eq!(
        (report.delivered, report.queued),
        (0, n - 1),
        "all handed off"
    );
    queue.idle().await;

    let per = posts_per_recipient(&rec);
    assert_eq!(per.len(), n - 2, "everyone but the sender and the gone one");
    assert!(per.values().all(|&c| c == 1), "exactly once each");
    assert!(!per.contains_key(&sender) && !per.contains_key(&gone));
    assert_eq!(rec.attempts_to(&throttled), 4, "3 refused + 1 retried job");
    let totals = queue.totals();
    assert_eq!(
        (
            totals.delivered,
            totals.gone,
            totals.failed,
            totals.unknown,
            totals.queued
        ),
        (n - 2, 1, 0, 0, 0)
    );
    assert!(store.get_connection(&gone).await.expect("get").is_none());
    let stats = queue.stats();
    assert_eq!(
        stats.iter().map(|s| s.jobs).sum::<usize>(),
        4,
        "3 chunks (200, 1,000, 300) + 1 retry"
    );
}

/// A message frame of room `big` with `seq`, as `deliver` enqueues it.
fn message_frame(seq: i64) -> ServerFrame {
    ServerFrame::Message(ChatMessage::plain(
        room("big"),
        seq,
        UserRef {
            id: "s".into(),
            name: "s".into(),
        },
        MessageBody::parse(format!("message {seq}")).expect("body"),
        ClientMsgId::parse(format!("m{seq}")).expect("id"),
        time::OffsetDateTime::now_utc(),
    ))
}

/// The seqs a recorded frame carries (`message` or coalesced `messages`).
fn seqs_of(frame: &serde_json::Value) -> Vec<i64> {
    let seqs = hubbub_tests::local::message_seqs(frame);
    assert!(!seqs.is_empty(), "unexpected frame {frame}");
    seqs
}

/// Messages that reach a large room faster than its chunks are posted coalesce: jobs that
/// waited in a lane go out as one `messages` frame per recipient, every member still gets
/// every message exactly once and in seq order, and the posts are far fewer than one per
/// message per member.
#[tokio::test]
async fn a_busy_large_room_gets_coalesced_frames_exactly_once_in_order() {
    let rec = Recorder::start().await;
    let store = Arc::new(MemoryConnectionStore::new());
    let n = LARGE_ROOM_THRESHOLD + 100;
    let ids = big_room(&store, n).await;
    let gateway: Arc<dyn ConnectionGateway> = rec.gateway();
    let queue = LocalFanoutQueue::new(store.clone(), gateway.clone(), 2);
    let ep = Endpoint::for_request("x", "y", Some(&rec.endpoint()));
    let messages = 20;
    for seq in 1..=messages {
        // The sender (ids[0]) never gets its own message back.
        deliver(
            store.as_ref(),
            gateway.as_ref(),
            &queue,
            &ep,
            &room("big"),
            &message_frame(seq),
            Some(&ids[0]),
        )
        .await
        .expect("deliver");
    }
    queue.idle().await;

    let want: Vec<i64> = (1..=messages).collect();
    for id in &ids[1..] {
        let got: Vec<i64> = rec.frames_to(id).iter().flat_map(seqs_of).collect();
        assert_eq!(got, want, "{id}: every message once, in seq order");
    }
    assert!(
        rec.frames_to(&ids[0]).is_empty(),
        "nothing back to the sender"
    );
    let posts = rec.posts().len();
    let owed = (n - 1) * usize::try_from(messages).expect("small");
    assert!(
        posts * 4 < owed,
        "{posts} posts for {owed} deliveries: waiting jobs were coalesced"
    );
    let totals = queue.totals();
    assert_eq!(
        (totals.delivered, totals.failed, totals.unknown),
        (posts, 0, 0)
    );
}

/// A room that is busy but whose rounds finish before its next message arrives (100
/// messages a second, each chunk posted in a few ms) is still coalesced: a lane starts a
/// round at most every `ROUND_INTERVAL` (25 ms), so a recipient gets at most one frame per
/// interval instead of one per message, and still every message once, in order. (Chunks of
/// three members: rounds must be quick for the rule to matter.)
#[tokio::test]
async fn a_steady_busy_room_gets_at_most_one_frame_per_round_interval() {
    let rec = Recorder::start().await;
    let store = Arc::new(MemoryConnectionStore::new());
    let ids = big_room(&store, 3).await;
    let gateway: Arc<dyn ConnectionGateway> = rec.gateway();
    let queue = LocalFanoutQueue::new(store.clone(), gateway.clone(), 2);
    let ep = Endpoint::for_request("x", "y", Some(&rec.endpoint()));
    let messages = 20;
    let mut pace = tokio::time::interval(std::time::Duration::from_millis(10));
    let started = std::time::Instant::now();
    for seq in 1..=messages {
        pace.tick().await;
        let frame = serde_json::to_string(&message_frame(seq)).expect("frame");
        let job = FanoutJob::first(&ep, &room("big"), &frame, Some(seq), 0, ids.clone());
        queue.enqueue(vec![job]).await.expect("enqueue");
    }
    queue.idle().await;
    let elapsed = started.elapsed();

    let want: Vec<i64> = (1..=messages).collect();
    // One round may start at once and one more as the lane falls into its phase (at least
    // half an interval later), then at most one per interval until the queue is idle.
    let max_rounds =
        usize::try_from(elapsed.as_millis() / ROUND_INTERVAL.as_millis() + 2).expect("small");
    for id in &ids {
        let frames = rec.frames_to(id);
        let got: Vec<i64> = frames.iter().flat_map(seqs_of).collect();
        assert_eq!(got, want, "{id}: every message once, in seq order");
        assert!(
            frames.len() <= max_rounds,
            "{id}: {} frames for {messages} messages in {elapsed:?} (at most {max_rounds})",
            frames.len()
        );
    }
}

fn job(endpoint: &str, connections: Vec<String>) -> FanoutJob {
    FanoutJob {
        endpoint: endpoint.to_owned(),
        room: room("big"),
        frame: r#"{"type":"pong"}"#.to_owned(),
        connections,
        attempt: 1,
        seq: None,
        chunk: 0,
    }
}

async fn receive_all(queue_url: &str, want: usize) -> Vec<SqsMessage> {
    let client = hubbub_tests::sqs_client();
    let mut got = Vec::new();
    for _ in 0..50 {
        let out = client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            let mut msg = SqsMessage::default();
            msg.message_id = m.message_id().map(str::to_owned);
            msg.body = m.body().map(str::to_owned);
            got.push(msg);
        }
        if got.len() >= want {
            break;
        }
    }
    got
}

/// The SQS adapter sends jobs in batches of ten and they come back intact.
#[tokio::test]
async fn sqs_queue_round_trips_jobs() {
    let url = hubbub_tests::fresh_queue().await;
    let queue = SqsFanoutQueue::new(hubbub_tests::sqs_client(), &url);
    let jobs: Vec<FanoutJob> = (0..12)
        .map(|i| job("http://127.0.0.1:1/prod", vec![format!("c{i}=")]))
        .collect();
    queue.enqueue(jobs.clone()).await.expect("enqueue");
    let got = receive_all(&url, 12).await;
    let mut back: Vec<FanoutJob> = got
        .iter()
        .map(|m| FanoutJob::from_json(m.body.as_deref().expect("body")).expect("job"))
        .collect();
    back.sort_by(|a, b| a.connections.cmp(&b.connections));
    let mut want = jobs;
    want.sort_by(|a, b| a.connections.cmp(&b.connections));
    assert_eq!(back, want);
}

/// Jobs whose bodies together exceed what one `SendMessageBatch` may carry (a presence change
/// of a very large room is ten or more chunk jobs at once) go out in as many batches as it
/// takes, every job once.
#[tokio::test]
async fn sqs_batches_stay_within_the_batch_size_limit() {
    let url = hubbub_tests::fresh_queue().await;
    let queue = SqsFanoutQueue::new(hubbub_tests::sqs_client(), &url);
    // Ten jobs of ~120 KB: 1.2 MB in all, over any queue's batch limit.
    let jobs: Vec<FanoutJob> = (0..10)
        .map(|i| {
            let ids = (0..6_000)
                .map(|k| format!("L0SM9cOF{i:02}{k:05}="))
                .collect();
            job("http://127.0.0.1:1/prod", ids)
        })
        .collect();
    queue.enqueue(jobs.clone()).await.expect("enqueue");
    let got = receive_all(&url, 10).await;
    let mut back: Vec<FanoutJob> = got
        .iter()
        .map(|m| FanoutJob::from_json(m.body.as_deref().expect("body")).expect("job"))
        .collect();
    back.sort_by(|a, b| a.connections.cmp(&b.connections));
    assert_eq!(back, jobs, "every job once");
}

/// The worker posts each job's chunk, re-enqueues only certainly-failed recipients as a new
/// job (never the whole chunk), and reports only a malformed job as a batch item failure.
#[tokio::test]
async fn worker_posts_chunks_from_sqs_and_retries_only_failed_recipients() {
    let rec = Recorder::start().await;
    let url = hubbub_tests::fresh_queue().await;
    let store = Arc::new(MemoryConnectionStore::new());
    let deps = fanout_worker::WorkerDeps {
        connections: store.clone(),
        gateway: rec.gateway(),
        queue: Arc::new(SqsFanoutQueue::new(hubbub_tests::sqs_client(), &url)),
    };
    rec.fail_next("b=", &[503, 503, 503]);
    let mut good = SqsMessage::default();
    good.message_id = Some("m-1".into());
    good.body = Some(
        job(&rec.endpoint(), vec!["a=".into(), "b=".into(), "c=".into()])
            .to_json()
            .expect("json"),
    );
    let mut bad = SqsMessage::default();
    bad.message_id = Some("m-2".into());
    bad.body = Some(r#"{"endpoint": 7}"#.into());
    let mut ev = SqsEvent::default();
    ev.records = vec![good, bad];

    let resp = fanout_worker::handle(&deps, ev, None).await;
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m-2"], "only the malformed job");
    let per = posts_per_recipient(&rec);
    assert_eq!(
        (per.get("a="), per.get("b="), per.get("c=")),
        (Some(&1), None, Some(&1))
    );

    // The retry job carries only b=, as attempt 2, and delivers it once.
    let retry = receive_all(&url, 1).await;
    assert_eq!(retry.len(), 1);
    let retry_job = FanoutJob::from_json(retry[0].body.as_deref().expect("body")).expect("job");
    assert_eq!(
        (retry_job.connections.clone(), retry_job.attempt),
        (vec!["b=".to_owned()], 2)
    );
    let mut ev = SqsEvent::default();
    ev.records = retry;
    assert!(
        fanout_worker::handle(&deps, ev, None)
            .await
            .batch_item_failures
            .is_empty()
    );
    let per = posts_per_recipient(&rec);
    assert_eq!(
        (per.get("a="), per.get("b="), per.get("c=")),
        (Some(&1), Some(&1), Some(&1))
    );
}

fn presence_change(endpoint: &str, name: &str, state: PresenceState) -> PresenceChange {
    PresenceChange {
        endpoint: endpoint.to_owned(),
        room: room("big"),
        user: UserRef {
            id: format!("u-{name}"),
            name: name.to_owned(),
        },
        state,
    }
}

/// A window of joins becomes one presence frame per member, naming the joiners, with the
/// occupancy count: N joins cost N posts per window, not N²/2.
#[tokio::test]
async fn presence_is_coalesced_per_room_and_window() {
    let rec = Recorder::start().await;
    let store = Arc::new(MemoryConnectionStore::new());
    let ids = big_room(&store, 50).await;
    let presence = LocalPresence::start(
        store.clone(),
        rec.gateway(),
        None,
        std::time::Duration::from_millis(200),
    );
    for i in 0..50 {
        presence
            .publish(presence_change(
                &rec.endpoint(),
                &format!("u{i}"),
                PresenceState::Joined,
            ))
            .await
            .expect("publish");
    }
    // One who came and went within the window is not announced at all.
    for state in [PresenceState::Joined, PresenceState::Left] {
        presence
            .publish(presence_change(&rec.endpoint(), "fleeting", state))
            .await
            .expect("publish");
    }
    // Real time, not paused: the window's frames are posted over real sockets to the
    // recorder, which paused time would outrun (the SDK's timeouts would fire first). 700 ms
    // is the 200 ms window plus room for 50 posts on a loaded machine.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(rec.posts().len(), 50, "one frame per member");
    let frame = &rec.frames_to(&ids[7])[0];
    assert_eq!(
        (frame["type"].as_str(), frame["count"].as_u64()),
        (Some("presence"), Some(50))
    );
    assert_eq!(frame["joined"].as_array().map(Vec::len), Some(50));
    assert!(!frame.to_string().contains("fleeting"));
}

/// Above the detail limit a presence frame carries the occupancy only.
#[tokio::test]
async fn large_rooms_get_occupancy_counts_not_names() {
    let rec = Recorder::start().await;
    let store = Arc::new(MemoryConnectionStore::new());
    let ids = big_room(&store, PRESENCE_DETAIL_LIMIT + 1).await;
    hubbub_core::presence::flush_all(
        store.as_ref(),
        rec.gateway().as_ref(),
        None,
        vec![presence_change(
            &rec.endpoint(),
            "u1",
            PresenceState::Joined,
        )],
    )
    .await;
    let frame = &rec.frames_to(&ids[0])[0];
    assert_eq!(
        frame,
        &serde_json::json!({"type":"presence","room":"big","joined":[],"left":[],
            "count": PRESENCE_DETAIL_LIMIT + 1})
    );
}

/// Presence changes published to SQS reach the worker, which announces the batch once per
/// room.
#[tokio::test]
async fn worker_announces_a_batch_of_presence_changes_from_sqs_once_per_room() {
    let rec = Recorder::start().await;
    let url = hubbub_tests::fresh_queue().await;
    let store = Arc::new(MemoryConnectionStore::new());
    let ids = big_room(&store, 3).await;
    let sink = SqsPresenceSink::new(hubbub_tests::sqs_client(), &url);
    for name in ["ann", "bob"] {
        sink.publish(presence_change(
            &rec.endpoint(),
            name,
            PresenceState::Joined,
        ))
        .await
        .expect("publish");
    }
    let deps = fanout_worker::WorkerDeps {
        connections: store.clone(),
        gateway: rec.gateway(),
        queue: Arc::new(SqsFanoutQueue::new(hubbub_tests::sqs_client(), &url)),
    };
    let mut ev = SqsEvent::default();
    ev.records = receive_all(&url, 2).await;
    assert_eq!(ev.records.len(), 2);
    assert!(
        fanout_worker::handle(&deps, ev, None)
            .await
            .batch_item_failures
            .is_empty()
    );
    for id in &ids {
        let frames = rec.frames_to(id);
        assert_eq!(frames.len(), 1, "one frame for the batch");
        assert_eq!(
            frames[0]["joined"],
            serde_json::json!([{"id":"u-ann","name":"ann"},{"id":"u-bob","name":"bob"}])
        );
    }
}

/// A worker whose batch outlasts its invocation stops starting posts at its stop time and
/// passes the recipients it did not reach on as a new job, instead of running into the
/// timeout, after which the queue would redeliver the whole batch and every recipient
/// already posted to would get the frame twice. Simulated as Lambda does it: an invocation
/// cut off at its deadline is failed, and its batch runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_near_its_deadline_passes_unreached_recipients_on_never_twice() {
    use std::time::{Duration, Instant};
    let rec = Recorder::start().await;
    // 1,000 posts of 100 ms, 32 at a time: over 3 s of posting.
    rec.lock().post_delay = Duration::from_millis(100);
    let store = Arc::new(MemoryConnectionStore::new());
    let gateway: Arc<dyn ConnectionGateway> = rec.gateway();
    let queue = LocalFanoutQueue::new(store.clone(), gateway.clone(), 4);
    let deps = fanout_worker::WorkerDeps {
        connections: store.clone(),
        gateway,
        queue: Arc::new(queue.clone()),
    };
    let ids: Vec<String> = (0..1000).map(|i| format!("c{i}=")).collect();
    let mut record = SqsMessage::default();
    record.message_id = Some("m-1".into());
    record.body = Some(job(&rec.endpoint(), ids.clone()).to_json().expect("json"));
    let mut ev = SqsEvent::default();
    ev.records = vec![record];

    // The invocation may start posts for 300 ms; its deadline leaves 1.5 s more for the
    // posts under way (one round, 100 ms) and the hand-off.
    let stop = Instant::now() + Duration::from_millis(300);
    let deadline = stop + Duration::from_millis(1500);
    let first = tokio::time::timeout_at(
        deadline.into(),
        fanout_worker::handle(&deps, ev.clone(), Some(stop)),
    )
    .await;
    if first.is_err() {
        // Timed out: Lambda fails the batch and SQS delivers it again, whole.
        fanout_worker::handle(&deps, ev, None).await;
    }
    queue.idle().await;

    let per = posts_per_recipient(&rec);
    let twice = per.values().filter(|n| **n > 1).count();
    assert_eq!(twice, 0, "{twice} recipients got the frame twice");
    assert_eq!(per.len(), ids.len(), "every recipient got it");
    let first = first.expect("the invocation ended before its deadline");
    assert!(first.batch_item_failures.is_empty());
    let passed_on = queue.totals().delivered;
    assert!(
        passed_on > 0 && passed_on < ids.len(),
        "the rest went through the queue: {passed_on}"
    );
}

/// A queue whose enqueue of a chunk returns only once the next chunk's enqueue has begun (or
/// after a patience of 2 s, counted as a wait): whether a hand-off reads the next member page
/// and enqueues its job while earlier ones are still being enqueued.
struct WaitsForTheNext {
    last_chunk: u32,
    begun: tokio::sync::watch::Sender<Option<u32>>,
    waits: std::sync::atomic::AtomicUsize,
    jobs: std::sync::Mutex<Vec<FanoutJob>>,
}

#[async_trait::async_trait]
impl FanoutQueue for WaitsForTheNext {
    async fn enqueue(&self, jobs: Vec<FanoutJob>) -> Result<(), hubbub_core::queue::QueueError> {
        for job in jobs {
            let chunk = job.chunk;
            self.jobs.lock().expect("jobs").push(job);
            self.begun
                .send_modify(|m| *m = Some(m.map_or(chunk, |m| m.max(chunk))));
            if chunk < self.last_chunk {
                let mut rx = self.begun.subscribe();
                let next = rx.wait_for(|m| m.is_some_and(|m| m > chunk));
                if tokio::time::timeout(std::time::Duration::from_secs(2), next)
                    .await
                    .is_err()
                {
                    self.waits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
        Ok(())
    }

    async fn enqueue_delayed(
        &self,
        job: FanoutJob,
        _delay: std::time::Duration,
    ) -> Result<(), hubbub_core::queue::QueueError> {
        self.enqueue(vec![job]).await
    }
}

/// A large room's hand-off reads the next member page while the jobs of earlier pages are
/// still being enqueued: on AWS each is a round trip (DynamoDB, SQS), so the sending route
/// takes about as long as reading the pages, not reading plus enqueueing. Every member but
/// the sender is in exactly one job.
#[tokio::test]
async fn a_hand_off_reads_the_next_page_while_jobs_are_enqueued() {
    let store = Arc::new(MemoryConnectionStore::new());
    let n = LARGE_ROOM_THRESHOLD + 3 * CHUNK_SIZE as usize + 100;
    let ids = big_room(&store, n).await;
    let queue = WaitsForTheNext {
        last_chunk: 4,
        begun: tokio::sync::watch::Sender::new(None),
        waits: Default::default(),
        jobs: Default::default(),
    };
    let rec = Recorder::start().await;
    let gateway: Arc<dyn ConnectionGateway> = rec.gateway();
    let ep = Endpoint::for_request("x", "y", Some(&rec.endpoint()));
    let report = deliver(
        store.as_ref(),
        gateway.as_ref(),
        &queue,
        &ep,
        &room("big"),
        &ServerFrame::Pong,
        Some(&ids[7]),
    )
    .await
    .expect("deliver");
    assert_eq!(report.queued, n - 1);
    assert_eq!(
        queue.waits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "an enqueue waited for the next page to be read"
    );
    let jobs = queue.jobs.lock().expect("jobs");
    let chunks: Vec<u32> = jobs.iter().map(|j| j.chunk).collect();
    assert_eq!(chunks, [0, 1, 2, 3, 4]);
    let mut handed: Vec<&String> = jobs.iter().flat_map(|j| &j.connections).collect();
    handed.sort();
    let mut want: Vec<&String> = ids.iter().filter(|id| **id != ids[7]).collect();
    want.sort();
    assert_eq!(handed, want, "every member but the sender, once");
}

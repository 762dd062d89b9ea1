//! The coordinator of a run: opens the connections at the configured ramp, starts every sender
//! at once, waits for the acks and deliveries to settle, collects the records, runs the catch-up
//! for whatever is missing, asks the judge, and builds the [`Report`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Config, ConfigError};
use crate::conn::{CatchUp, Command, ConnTask, Counters, Event, FrameCounts, Shared, TaskReport};
use crate::frames::MsgIds;
use crate::judge::{self, ConnRecord, Delivery, SendOutcome};
use crate::net::{HANDSHAKE_TIMEOUT, NetError, Target};
use crate::report::{ClientCost, Connecting, Percentiles, Report, RunShape, Traffic};
use crate::{stored, sys};

/// Lead time between the start signal and the first send, so that every task has seen the
/// signal before its first message is due (a late task would burst to catch up).
const START_LEAD: Duration = Duration::from_millis(200);
/// How often the drain checks whether everything has arrived.
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// Longest wait for the records after the collect signal. Handing over a record is a channel
/// send; only a task stuck behind a blocked socket write takes longer.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Catch-ups in flight at once: each is a history query on the server (a PostgreSQL read on
/// AWS); 64 keeps the catch-up from becoming a load test of its own.
const CATCH_UP_CONCURRENCY: usize = 64;
/// Longest catch-up of one connection (all its pages): a history page is one indexed read, so
/// 30 s covers dozens of pages on a loaded server; a catch-up past it counts as failed.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest read of one room's whole stored history: one indexed page per 100 messages, so
/// 60 s covers thousands of messages on a loaded server; past it the room counts as unread.
const STORAGE_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections of a room tried in turn for the storage read (one may have lost its socket).
const STORAGE_READERS: usize = 3;
/// Longest wait for the tasks to end after `Close` (a close handshake each); the report is
/// already made, so stragglers are aborted rather than waited for.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Fewest live deliveries for which CPU per 100k deliveries is reported.
const MIN_DELIVERIES_FOR_CPU: u64 = 1_000;
/// How often progress is logged while a phase runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Why a run could not be carried out (a failed verdict is not an error: it is a report).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("target: {0}")]
    Target(#[from] NetError),
    #[error("cannot create the latency histograms: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
    #[error("cannot start the senders' runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// The runtime the sending connections run on, apart from everyone else's.
///
/// Why: one process stands in for many devices. In one scheduler, a sender's ack waits
/// behind every other simulated client's frames that became readable with it, up to a whole
/// fan-out round of the room (at 1,000 connections, ~1,000 frames and ~10 ms of this
/// client's CPU), and the ack latency then measures the client, not the server. On a runtime
/// of its own the sender's socket is read as soon as it is readable. The receivers stay
/// together on the caller's runtime: their delivery latency still includes the wait for the
/// frames ahead of theirs in the same burst, which a real device would not have.
struct SenderRuntime(Option<tokio::runtime::Runtime>);

impl SenderRuntime {
    fn start() -> Result<Self, LoadError> {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("hubbub-load-senders")
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
            .map_err(LoadError::Runtime)
    }

    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(tokio::runtime::Runtime::handle)
    }
}

impl Drop for SenderRuntime {
    fn drop(&mut self) {
        // A runtime cannot be dropped (which waits) from inside another runtime's task: its
        // tasks have all ended or been aborted by now, so nothing is left to wait for.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A short id for this run: 6 chars of `[a-z0-9]`, random per process and call.
fn run_id() -> String {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut x =
        std::collections::hash_map::RandomState::new().hash_one((nanos, std::process::id()));
    let mut id = String::with_capacity(6);
    for _ in 0..6 {
        let d = (x % 36) as u8;
        id.push(char::from(if d < 10 { b'0' + d } else { b'a' + d - 10 }));
        x /= 36;
    }
    id
}

/// Runs the load described by `cfg` and judges it.
pub async fn run(cfg: Config) -> Result<Report, LoadError> {
    cfg.validate()?;
    let nofile = match sys::raise_nofile_limit() {
        Ok(l) => l.soft,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            0
        }
    };
    let usage_start = sys::usage();
    let target = Target::resolve(&cfg.url, cfg.source_addrs, cfg.connections).await?;
    let id = run_id();
    let prefix = cfg
        .room_prefix
        .clone()
        .unwrap_or_else(|| format!("load-{id}-"));
    let room_names: Vec<String> = (0..cfg.rooms).map(|k| format!("{prefix}{k}")).collect();
    let source_addrs = target.sources().len();
    tracing::info!(run = %id, target = %target.addr(), source_addrs, connections = cfg.connections, rooms = cfg.rooms, "starting");
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        target,
        room_names,
        ids: MsgIds::new(&id),
        epoch: Instant::now(),
        counters: Counters::new(cfg.rooms),
    });
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let mut commands: Vec<Option<mpsc::Sender<Command>>> = Vec::with_capacity(cfg.connections);
    let mut tasks = JoinSet::new();
    let senders = SenderRuntime::start()?;
    let mut reports: Vec<Option<TaskReport>> = (0..cfg.connections).map(|_| None).collect();

    // Connect at the ramp, at most `connect_concurrency` handshakes in flight.
    let ramp_start = Instant::now();
    let handshakes = Arc::new(Semaphore::new(cfg.connect_concurrency));
    let mut ready = vec![false; cfg.connections];
    let mut settled = 0usize;
    let mut last_progress = Instant::now();
    for i in 0..cfg.connections {
        tokio::time::sleep_until(ramp_start + Duration::from_secs_f64(i as f64 / cfg.connect_rate))
            .await;
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            break;
        };
        // Room for every command a task gets (Start, Collect, a CatchUp, the storage read's
        // CatchUp, Close), so that the coordinator never waits on a slow task.
        let (cmd_tx, cmd_rx) = mpsc::channel(5);
        commands.push(Some(cmd_tx));
        let task = ConnTask {
            conn: i,
            token: cfg.tokens[i % cfg.tokens.len()].clone(),
            shared: shared.clone(),
            events: ev_tx.clone(),
            commands: cmd_rx,
        };
        match (cfg.sender_index(i), senders.handle()) {
            (Some(_), Some(rt)) => tasks.spawn_on(task.run(permit), rt),
            _ => tasks.spawn(task.run(permit)),
        };
        while let Ok(ev) = ev_rx.try_recv() {
            settle(ev, &mut ready, &mut reports, &mut settled);
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            tracing::info!(
                opened = i + 1,
                joined = ready.iter().filter(|r| **r).count(),
                "connecting"
            );
        }
    }
    drop(ev_tx);
    // Every task settles on its own: connect and join each have a timeout.
    let settle_deadline =
        Instant::now() + HANDSHAKE_TIMEOUT + cfg.join_timeout + Duration::from_secs(5);
    while settled < cfg.connections {
        match tokio::time::timeout_at(settle_deadline, ev_rx.recv()).await {
            Ok(Some(ev)) => settle(ev, &mut ready, &mut reports, &mut settled),
            Ok(None) | Err(_) => break,
        }
    }
    let ramp_secs = ramp_start.elapsed().as_secs_f64();
    let joined_per_room: Vec<u64> = (0..cfg.rooms)
        .map(|r| {
            (0..cfg.connections)
                .filter(|&i| ready[i] && cfg.room_of(i) == r)
                .count() as u64
        })
        .collect();
    let joined: u64 = joined_per_room.iter().sum();
    tracing::info!(
        joined,
        failed = cfg.connections as u64 - joined,
        secs = ramp_secs,
        "connected"
    );

    // Send.
    let usage_traffic = sys::usage();
    let start = Instant::now() + START_LEAD;
    tell(&commands, || Command::Start(start));
    if let Some(n) = &cfg.on_send_start {
        n.notify_one();
    }
    let send_end = start
        + (0..cfg.rooms)
            .flat_map(|r| (0..cfg.senders_per_room).map(move |j| (r, j)))
            .filter_map(|(r, j)| {
                let n = cfg.sends_of(j);
                (n > 0).then(|| cfg.send_offset(r, j, n - 1))
            })
            .max()
            .unwrap_or_default();
    let planned: u64 = (0..cfg.connections)
        .filter(|&i| ready[i])
        .filter_map(|i| cfg.sender_index(i))
        .map(|j| cfg.sends_of(j))
        .sum();
    let c = &shared.counters;
    let mut next_progress = Instant::now() + PROGRESS_EVERY;
    while Instant::now() < send_end {
        tokio::time::sleep_until(next_progress.min(send_end)).await;
        if Instant::now() >= next_progress {
            next_progress += PROGRESS_EVERY;
            tracing::info!(
                sent = c.sent.load(Ordering::Relaxed),
                acked = c.answered.load(Ordering::Relaxed),
                deliveries = c.deliveries.load(Ordering::Relaxed),
                "sending"
            );
        }
    }

    // Drain: until every send is answered and every owed delivery is in, or the drain ends.
    let drain_deadline = send_end + cfg.drain;
    loop {
        let answered = c.answered.load(Ordering::Relaxed);
        let owed: u64 = c
            .acked
            .iter()
            .zip(&joined_per_room)
            .map(|(a, &m)| a.load(Ordering::Relaxed) * m.saturating_sub(1))
            .sum();
        let arrived = c.deliveries.load(Ordering::Relaxed) + c.recovered.load(Ordering::Relaxed);
        if answered >= planned && arrived >= owed {
            break;
        }
        if Instant::now() >= drain_deadline {
            tracing::info!(
                answered,
                planned,
                owed,
                deliveries = c.deliveries.load(Ordering::Relaxed),
                "drain ended with traffic outstanding"
            );
            break;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let drain_secs = Instant::now()
        .saturating_duration_since(send_end)
        .as_secs_f64();
    let usage_after_traffic = sys::usage();

    // Collect.
    tell(&commands, || Command::Collect);
    let collect_deadline = Instant::now() + COLLECT_TIMEOUT;
    let mut to_collect = ready.iter().filter(|r| **r).count();
    while to_collect > 0 {
        match tokio::time::timeout_at(collect_deadline, ev_rx.recv()).await {
            Ok(Some(Event::Report(r))) => {
                let conn = r.conn;
                if ready.get(conn) == Some(&true) && reports[conn].is_none() {
                    to_collect -= 1;
                }
                reports[conn] = Some(*r);
            }
            Ok(Some(Event::Ready { .. })) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let mut records: Vec<ConnRecord> = (0..cfg.connections)
        .map(|i| match &mut reports[i] {
            Some(r) => std::mem::take(&mut r.record),
            None => ConnRecord {
                room: cfg.room_of(i) as u32,
                ..ConnRecord::default()
            },
        })
        .collect();

    // Catch up what is missing, as a client would.
    let mut traffic = Traffic::default();
    if cfg.catch_up {
        let plan = judge::catch_up_plan(&records, cfg.rooms);
        traffic.catch_up_connections = plan.len() as u64;
        if !plan.is_empty() {
            tracing::info!(connections = plan.len(), "catching up");
        }
        let until = room_max_seq(&records, cfg.rooms);
        let jobs = plan.into_iter().filter_map(|(conn, after)| {
            let tx = commands.get(conn)?.clone()?;
            let until = until[cfg.room_of(conn)];
            Some(async move { (conn, read_history(tx, after, until, CATCH_UP_TIMEOUT).await) })
        });
        let mut results = futures::stream::iter(jobs).buffer_unordered(CATCH_UP_CONCURRENCY);
        while let Some((conn, c)) = results.next().await {
            traffic.catch_up_pages += c.pages;
            if let Some(e) = &c.error {
                traffic.catch_up_failures += 1;
                tracing::debug!(conn, error = %e, "catch-up failed");
            }
            // Added to what a reconnect's resync read already recovered, never in its place.
            records[conn].recovered.extend(c.recovered);
        }
    }

    // Read each room's stored history back and compare it with the acks.
    let storage = if cfg.check_storage {
        let reads = (0..cfg.rooms).map(|room| {
            let readers: Vec<mpsc::Sender<Command>> = (room..cfg.connections)
                .step_by(cfg.rooms)
                .filter(|&i| ready[i])
                .filter_map(|i| commands.get(i).cloned().flatten())
                .take(STORAGE_READERS)
                .collect();
            async move {
                for tx in readers {
                    let read = read_history(tx, 0, i64::MAX, STORAGE_READ_TIMEOUT).await;
                    match read.error {
                        None => return Some(read.recovered),
                        Some(e) => tracing::info!(room, error = %e, "storage read failed"),
                    }
                }
                None
            }
        });
        let rooms: Vec<Option<Vec<Delivery>>> = futures::stream::iter(reads)
            .buffered(CATCH_UP_CONCURRENCY)
            .collect()
            .await;
        stored::check(&records, &rooms)
    } else {
        stored::Storage::default()
    };

    let judgement = judge::judge(&records, cfg.rooms)?;

    // Close.
    tell(&commands, || Command::Close);
    drop(commands);
    let closing = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(CLOSE_TIMEOUT, closing).await.is_err() {
        tasks.abort_all();
    }

    // Report.
    let usage_end = sys::usage();
    let mut connecting = Connecting {
        attempted: cfg.connections,
        ramp_secs,
        ..Connecting::default()
    };
    let mut connect_time = judge::latency_histogram()?;
    let mut frames = FrameCounts::default();
    let mut error_codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut max_lag_us = 0;
    let mut last_delivery = 0;
    for (i, r) in reports.iter().enumerate() {
        let Some(r) = r else {
            if ready[i] {
                *connecting
                    .closed_early
                    .entry("no report".into())
                    .or_default() += 1;
            }
            continue;
        };
        if let Some(us) = r.connect_us {
            connecting.connected += 1;
            connect_time.saturating_record(us.max(1));
        }
        if let Some(e) = &r.connect_error {
            *connecting.connect_errors.entry(e.clone()).or_default() += 1;
        }
        if let Some(e) = &r.join_error {
            *connecting.join_errors.entry(e.clone()).or_default() += 1;
        }
        if ready[i] {
            connecting.joined += 1;
        }
        if let Some(e) = &r.closed_early {
            *connecting.closed_early.entry(e.clone()).or_default() += 1;
        }
        for why in &r.reconnects {
            connecting.reconnects += 1;
            *connecting.reconnect_reasons.entry(why.clone()).or_default() += 1;
        }
        frames.add(&r.frames);
        for (code, n) in &r.error_codes {
            *error_codes.entry(code.clone()).or_default() += n;
        }
        max_lag_us = max_lag_us.max(r.max_send_lag_us);
        last_delivery = last_delivery.max(r.last_delivery_at);
    }
    connecting.connect_time = Percentiles::of_us(&connect_time);
    let live: u64 = records.iter().map(|r| r.live.len() as u64).sum();
    let start_us = start.saturating_duration_since(shared.epoch).as_micros() as u64;
    let last_ack = records
        .iter()
        .flat_map(|r| r.sends.iter())
        .filter_map(|s| match s.outcome {
            SendOutcome::Acked { at, .. } => Some(at),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let active_us = last_delivery.max(last_ack).saturating_sub(start_us).max(1);
    traffic.active_secs = active_us as f64 / 1e6;
    traffic.drain_secs = drain_secs;
    traffic.deliveries_per_sec = live as f64 / traffic.active_secs;
    traffic.max_send_lag_ms = max_lag_us as f64 / 1000.0;
    traffic.deliveries_after_collect = c.after_collect.load(Ordering::Relaxed);
    let cpu_traffic = usage_after_traffic.cpu.saturating_sub(usage_traffic.cpu);
    let client = ClientCost {
        cpu_secs_total: usage_end.cpu.saturating_sub(usage_start.cpu).as_secs_f64(),
        cpu_secs_traffic: cpu_traffic.as_secs_f64(),
        // Fixed costs (timers, the drain's polling) swamp the figure on a handful of deliveries.
        cpu_ms_per_100k_deliveries: (live >= MIN_DELIVERIES_FOR_CPU)
            .then(|| cpu_traffic.as_secs_f64() * 1000.0 * 100_000.0 / live as f64),
        peak_rss_mib: usage_end.max_rss_bytes as f64 / (1024.0 * 1024.0),
        nofile_limit: nofile,
    };
    let mut report = Report {
        run_id: id,
        shape: RunShape {
            url: cfg.url.clone(),
            connections: cfg.connections,
            rooms: cfg.rooms,
            senders_per_room: cfg.senders_per_room,
            rate_per_room: cfg.rate,
            duration_secs: cfg.duration.as_secs_f64(),
            body_bytes: cfg.body_bytes,
            auth: cfg.auth,
            room_prefix: prefix,
            source_addrs,
            thresholds: cfg.thresholds,
        },
        connecting,
        outcomes: judgement.outcomes,
        storage,
        ack_latency: Percentiles::of_us(&judgement.ack_latency),
        delivery_latency: Percentiles::of_us(&judgement.delivery_latency),
        traffic,
        frames,
        error_codes,
        client,
        verdict: Default::default(),
    };
    report.decide();
    Ok(report)
}

/// Asks a connection to read `history` after `after` until `until` (or the last page), within
/// `timeout`.
async fn read_history(
    tx: mpsc::Sender<Command>,
    after: i64,
    until: i64,
    timeout: Duration,
) -> CatchUp {
    let failed = |why: &str| CatchUp {
        error: Some(why.into()),
        ..CatchUp::default()
    };
    let (reply, rx) = oneshot::channel();
    if tx
        .send(Command::CatchUp {
            after,
            until,
            reply,
        })
        .await
        .is_err()
    {
        return failed("task ended");
    }
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(c)) => c,
        Ok(Err(_)) => failed("task ended"),
        Err(_) => failed("timeout"),
    }
}

/// Sends a command to every task still listening (ended tasks have dropped their receiver).
fn tell(commands: &[Option<mpsc::Sender<Command>>], cmd: impl Fn() -> Command) {
    for tx in commands.iter().flatten() {
        let _ = tx.try_send(cmd());
    }
}

/// Files one event of the connect phase.
fn settle(ev: Event, ready: &mut [bool], reports: &mut [Option<TaskReport>], settled: &mut usize) {
    match ev {
        Event::Ready { conn } => {
            ready[conn] = true;
            *settled += 1;
        }
        Event::Report(r) => {
            let conn = r.conn;
            reports[conn] = Some(*r);
            *settled += 1;
        }
    }
}

/// The highest acked `seq` of each room: where a catch-up may stop.
fn room_max_seq(records: &[ConnRecord], rooms: usize) -> Vec<i64> {
    let mut max = vec![0i64; rooms];
    for r in records {
        for s in &r.sends {
            if let SendOutcome::Acked { seq, .. } = s.outcome
                && let Some(m) = max.get_mut(r.room as usize)
            {
                *m = (*m).max(seq);
            }
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_short_room_safe_and_differ() {
        let a = run_id();
        let b = run_id();
        assert_eq!(a.len(), 6);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(a, b);
    }
}

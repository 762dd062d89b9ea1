//! One connection of a run, as one task: connect, join its room, report ready, send on its
//! schedule (if it is one of the room's senders) while recording every ack and delivery, hand
//! its record to the coordinator when told to collect, then serve the `history after` catch-up
//! (and the read-back of the stored history) the coordinator asks for, and close.
//!
//! When the socket closes or fails before the coordinator says `Close`, the task acts as a
//! client would ([`crate::reconnect`]): it reconnects with backoff, rejoins its room, resends
//! its unanswered sends under the same `clientMsgId`, and reads `history after` its highest
//! contiguous `seq` to fill the gap; what that read finds counts as recovered, not live.
//!
//! The hot path is a received frame: one borrowed parse ([`ServerFrame`]), one push onto the
//! record, one relaxed atomic add for the coordinator's drain check.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::config::Config;
use crate::frames::{self, HISTORY_LIMIT_MAX, MsgIds, ServerFrame, WireMessage};
use crate::judge::{ConnRecord, Delivery, Micros, NO_LATENCY, SendOutcome, SendRecord};
use crate::net::{Target, Ws};

/// What every connection task shares.
pub struct Shared {
    pub cfg: Config,
    pub target: Target,
    pub room_names: Vec<String>,
    pub ids: MsgIds,
    /// The run's epoch: every [`Micros`] counts from here.
    pub epoch: Instant,
    pub counters: Counters,
}

impl Shared {
    /// Microseconds since the epoch.
    pub fn now_us(&self) -> Micros {
        self.epoch.elapsed().as_micros() as Micros
    }
}

/// Running totals the coordinator reads to end the drain early. Relaxed: they are progress
/// figures, never used to order other memory.
#[derive(Default)]
pub struct Counters {
    pub sent: AtomicU64,
    /// Sends answered by an ack or an error.
    pub answered: AtomicU64,
    /// Acks per room.
    pub acked: Vec<AtomicU64>,
    /// Live deliveries of what the run owes the receiver ([`crate::judge::Delivery::owed_to`]).
    pub deliveries: AtomicU64,
    /// Live deliveries that arrived after the records were collected (not judged).
    pub after_collect: AtomicU64,
    /// Messages read by the catch-ups of reconnected connections during the run.
    pub recovered: AtomicU64,
}

impl Counters {
    /// Counters for `rooms` rooms.
    pub fn new(rooms: usize) -> Self {
        Self {
            acked: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
            ..Self::default()
        }
    }
}

/// What the coordinator tells a connection, in this order: `Start`, `Collect`, at most one
/// `CatchUp`, `Close`. One channel per task, so that waiting for the next command costs a
/// receive on an uncontended channel rather than a wait on shared state.
pub enum Command {
    /// Senders send on their schedule from this instant.
    Start(Instant),
    /// Hand over the record.
    Collect,
    /// Read `history` pages after `after` until `until` (or the last page) and reply.
    CatchUp {
        after: i64,
        until: i64,
        reply: oneshot::Sender<CatchUp>,
    },
    /// Close the connection.
    Close,
}

/// The result of a catch-up.
#[derive(Debug, Default)]
pub struct CatchUp {
    pub recovered: Vec<Delivery>,
    pub pages: u64,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
}

/// Counts of received frames by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameCounts {
    pub message: u64,
    /// Batched `messages` frames (each element is counted as a delivery).
    pub messages_batches: u64,
    pub ack: u64,
    pub joined: u64,
    pub history: u64,
    pub pong: u64,
    pub presence: u64,
    pub error: u64,
    /// Frames of a type this client does not know.
    pub unknown: u64,
    /// Text that is not a JSON object with a string `type`, or a binary frame.
    pub unparseable: u64,
    /// Message frames without a `seq`.
    pub without_seq: u64,
    /// Acks for another connection's message.
    pub misdirected_acks: u64,
    /// Acks that changed an earlier ack's `seq` for the same send.
    pub conflicting_acks: u64,
}

impl FrameCounts {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &FrameCounts) {
        self.message += o.message;
        self.messages_batches += o.messages_batches;
        self.ack += o.ack;
        self.joined += o.joined;
        self.history += o.history;
        self.pong += o.pong;
        self.presence += o.presence;
        self.error += o.error;
        self.unknown += o.unknown;
        self.unparseable += o.unparseable;
        self.without_seq += o.without_seq;
        self.misdirected_acks += o.misdirected_acks;
        self.conflicting_acks += o.conflicting_acks;
    }
}

/// Everything a connection task hands back.
#[derive(Debug, Default)]
pub struct TaskReport {
    pub conn: usize,
    pub record: ConnRecord,
    /// TCP connect plus handshake, when it succeeded.
    pub connect_us: Option<Micros>,
    /// Why connecting failed (a category).
    pub connect_error: Option<String>,
    /// Why joining failed.
    pub join_error: Option<String>,
    /// Why the connection ended before the run did (it lost its socket and could not
    /// reconnect within the window).
    pub closed_early: Option<String>,
    /// Why the socket was lost, once per loss that a reconnect repaired.
    pub reconnects: Vec<String>,
    pub frames: FrameCounts,
    /// `error` frames by code.
    pub error_codes: HashMap<String, u64>,
    /// Worst lateness of a send against its schedule: the client's own lag.
    pub max_send_lag_us: Micros,
    /// When the last live delivery arrived.
    pub last_delivery_at: Micros,
}

/// What a task tells the coordinator.
pub enum Event {
    /// Connected and joined.
    Ready { conn: usize },
    /// The task's report: at once when it could not connect or join, else when collected.
    Report(Box<TaskReport>),
}

/// One connection's task.
pub struct ConnTask {
    pub conn: usize,
    pub token: String,
    pub shared: Arc<Shared>,
    pub events: mpsc::UnboundedSender<Event>,
    pub commands: mpsc::Receiver<Command>,
}

/// A catch-up in progress.
struct Pending {
    until: i64,
    reply: oneshot::Sender<CatchUp>,
    result: CatchUp,
}

impl ConnTask {
    /// Runs the connection; `permit` is held until the handshake ends (the connect bound).
    pub async fn run(self, permit: OwnedSemaphorePermit) {
        let room = self.shared.cfg.room_of(self.conn);
        let mut rep = TaskReport {
            conn: self.conn,
            record: ConnRecord {
                room: room as u32,
                ..ConnRecord::default()
            },
            ..TaskReport::default()
        };
        let started = Instant::now();
        let connected = self
            .shared
            .target
            .connect(self.conn, &self.token, self.shared.cfg.auth)
            .await;
        drop(permit);
        let mut ws = match connected {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(conn = self.conn, error = %e, "connect failed");
                rep.connect_error = Some(e.category());
                let _ = self.events.send(Event::Report(Box::new(rep)));
                return;
            }
        };
        rep.connect_us = Some(started.elapsed().as_micros() as Micros);
        match tokio::time::timeout(self.shared.cfg.join_timeout, self.join(&mut ws, &mut rep)).await
        {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                rep.join_error = Some(why);
                let _ = self.events.send(Event::Report(Box::new(rep)));
                return;
            }
            Err(_) => {
                rep.join_error = Some("timeout".into());
                let _ = self.events.send(Event::Report(Box::new(rep)));
                return;
            }
        }
        let _ = self.events.send(Event::Ready { conn: self.conn });
        self.main_loop(ws, rep).await;
    }

    /// Sends `joinRoom` and reads until `joined` for the room.
    pub(crate) async fn join(&self, ws: &mut Ws, rep: &mut TaskReport) -> Result<(), String> {
        let room = &self.shared.room_names[rep.record.room as usize];
        ws.send(Message::Text(frames::join_room(room).into()))
            .await
            .map_err(|e| format!("send: {e}"))?;
        loop {
            let text = match ws.next().await {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(_))) | None => return Err("closed".into()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("read: {e}")),
            };
            let Some(f) = ServerFrame::parse(text.as_str()) else {
                rep.frames.unparseable += 1;
                continue;
            };
            match f.ty.as_str() {
                "joined" if f.room.as_ref().map(|r| r.as_str()) == Some(room.as_str()) => {
                    rep.frames.joined += 1;
                    // A rejoin after a reconnect keeps the first join: the connection is owed
                    // everything since then, through catch-up if not live.
                    rep.record.joined_at.get_or_insert(self.shared.now_us());
                    return Ok(());
                }
                "error" => {
                    let code = f.code.as_ref().map_or("?", |c| c.as_str()).to_owned();
                    rep.frames.error += 1;
                    *rep.error_codes.entry(code.clone()).or_default() += 1;
                    return Err(format!("error {code}"));
                }
                _ => self.frame(&f, rep),
            }
        }
    }

    async fn main_loop(mut self, mut ws: Ws, mut rep: TaskReport) {
        let shared = self.shared.clone();
        let cfg = &shared.cfg;
        let room = rep.record.room as usize;
        let sender = cfg.sender_index(self.conn);
        let total = sender.map_or(0, |j| cfg.sends_of(j));
        let mut start: Option<Instant> = None;
        let mut next_n: u64 = 0;
        let timer = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(timer);
        let mut collected = false;
        let mut open = true;
        let mut pending: Option<Pending> = None;
        // Why the socket was just lost: the task reconnects after this turn of the loop.
        let mut lost: Option<String> = None;
        // A reconnected connection's `history after` read is in progress.
        let mut resyncing = false;
        // A catch-up asked for while a resync read was still in progress: it starts when the
        // resync ends, so that a late resync page is never taken for one of its pages.
        let mut deferred: Option<(i64, i64, oneshot::Sender<CatchUp>)> = None;
        let (mut id_buf, mut body_buf) = (String::new(), String::new());
        loop {
            let sending = open && !collected && start.is_some() && next_n < total;
            tokio::select! {
                msg = ws.next(), if open => match msg {
                    Some(Ok(Message::Text(t))) => match ServerFrame::parse(t.as_str()) {
                        Some(f) if resyncing && f.ty.as_str() == "history" => {
                            resyncing = self.resync_page(&f, &mut rep, &mut ws).await;
                        }
                        // A refused resync read (no clientMsgId: not a send's answer) ends it.
                        Some(f) if resyncing && f.ty.as_str() == "error" && f.client_msg_id.is_none() => {
                            resyncing = false;
                            if !collected {
                                self.frame(&f, &mut rep);
                            }
                        }
                        Some(f) if collected => {
                            self.after_collect(&f, &mut rep, &mut pending, &mut ws).await;
                        }
                        Some(f) => self.frame(&f, &mut rep),
                        None => rep.frames.unparseable += 1,
                    },
                    Some(Ok(Message::Binary(_))) => rep.frames.unparseable += 1,
                    Some(Ok(Message::Close(f))) => {
                        open = false;
                        lost = Some(match f {
                            Some(f) => format!("closed by server: {}", u16::from(f.code)),
                            None => "closed by server".into(),
                        });
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        open = false;
                        lost = Some(crate::reconnect::read_error(&e));
                    }
                    None => {
                        open = false;
                        lost = Some("stream ended".into());
                    }
                },
                () = &mut timer, if sending => {
                    let (Some(s), Some(j)) = (start, sender) else { continue };
                    let now = Instant::now();
                    // Send every message that is due: a late task catches up rather than
                    // lowering the rate (the lag is reported).
                    while next_n < total {
                        let due = s + cfg.send_offset(room, j, next_n);
                        if due > now {
                            timer.as_mut().reset(due);
                            break;
                        }
                        let lag = now.saturating_duration_since(due).as_micros() as Micros;
                        rep.max_send_lag_us = rep.max_send_lag_us.max(lag);
                        let key = frames::MsgKey { conn: self.conn as u32, n: next_n as u32 };
                        shared.ids.write(key, &mut id_buf);
                        let sent_at = shared.now_us();
                        frames::write_body(sent_at, cfg.body_bytes, &mut body_buf);
                        let text = frames::send_message(&shared.room_names[room], &body_buf, &id_buf);
                        rep.record.sends.push(SendRecord { sent_at, outcome: SendOutcome::Pending });
                        shared.counters.sent.fetch_add(1, Ordering::Relaxed);
                        next_n += 1;
                        if let Err(e) = ws.send(Message::Text(text.into())).await {
                            open = false;
                            lost = Some(format!("send: {e}"));
                            break;
                        }
                    }
                }
                cmd = self.commands.recv(), if pending.is_none() && deferred.is_none() => match cmd {
                    Some(Command::Start(s)) => {
                        start = Some(s);
                        if let Some(j) = sender {
                            timer.as_mut().reset(s + cfg.send_offset(room, j, 0));
                        }
                    }
                    Some(Command::Collect) => {
                        collected = true;
                        let mut out = TaskReport {
                            conn: self.conn,
                            record: ConnRecord { room: rep.record.room, ..ConnRecord::default() },
                            ..TaskReport::default()
                        };
                        std::mem::swap(&mut out, &mut rep);
                        out.closed_early = rep.closed_early.clone();
                        let _ = self.events.send(Event::Report(Box::new(out)));
                    }
                    Some(Command::CatchUp { after, until, reply }) => {
                        deferred = Some((after, until, reply));
                    }
                    Some(Command::Close) | None => break,
                },
            }
            if open
                && !resyncing
                && let Some((after, until, reply)) = deferred.take()
            {
                let text =
                    frames::history_after(&shared.room_names[room], after, HISTORY_LIMIT_MAX);
                match ws.send(Message::Text(text.into())).await {
                    Ok(()) => {
                        pending = Some(Pending {
                            until,
                            reply,
                            result: CatchUp::default(),
                        });
                    }
                    Err(e) => {
                        let _ = reply.send(CatchUp {
                            error: Some(format!("send: {e}")),
                            ..CatchUp::default()
                        });
                        open = false;
                    }
                }
            }
            if !open && let Some((_, _, reply)) = deferred.take() {
                let _ = reply.send(CatchUp {
                    error: Some("connection closed".into()),
                    ..CatchUp::default()
                });
            }
            while let Some(why) = lost.take() {
                if let Some(p) = pending.take() {
                    let mut result = p.result;
                    result.error = Some(format!("connection lost: {why}"));
                    let _ = p.reply.send(result);
                }
                resyncing = false;
                tracing::debug!(conn = self.conn, why, "connection lost; reconnecting");
                match self.reconnect(&mut rep).await {
                    Some(mut fresh) => {
                        rep.reconnects.push(why);
                        // After collection the record is handed over: nothing to resend or
                        // fill, the connection only serves the coordinator's reads.
                        if !collected {
                            if let Err(e) = self.resume(&mut fresh, &mut rep, start.is_some()).await
                            {
                                lost = Some(e);
                                continue;
                            }
                            resyncing = true;
                        }
                        ws = fresh;
                        open = true;
                    }
                    None => {
                        rep.closed_early.get_or_insert(why);
                    }
                }
            }
            if collected && !open {
                if let Some(p) = pending.take() {
                    let mut result = p.result;
                    result.error = Some("connection closed".into());
                    let _ = p.reply.send(result);
                }
                // Nothing more can be done on this connection but answer commands.
                while let Some(cmd) = self.commands.recv().await {
                    match cmd {
                        Command::CatchUp { reply, .. } => {
                            let _ = reply.send(CatchUp {
                                error: Some("connection closed".into()),
                                ..CatchUp::default()
                            });
                        }
                        Command::Close => break,
                        Command::Start(_) | Command::Collect => {}
                    }
                }
                return;
            }
        }
        // Best effort: the server runs its disconnect either way.
        let _ = ws.close(None).await;
    }

    /// A frame after the records were collected: only catch-up pages matter.
    async fn after_collect(
        &self,
        f: &ServerFrame<'_>,
        rep: &mut TaskReport,
        pending: &mut Option<Pending>,
        ws: &mut Ws,
    ) {
        match f.ty.as_str() {
            "history" => {
                let Some(mut p) = pending.take() else { return };
                p.result.pages += 1;
                let mut last: Option<i64> = None;
                for m in f.messages.iter().flatten() {
                    let d = self.delivery(m, f, NO_LATENCY);
                    last = Some(last.map_or(d.seq, |l: i64| l.max(d.seq)));
                    p.result.recovered.push(d);
                }
                match last {
                    Some(l) if f.has_more == Some(true) && l < p.until => {
                        let room = &self.shared.room_names[rep.record.room as usize];
                        let text = frames::history_after(room, l, HISTORY_LIMIT_MAX);
                        match ws.send(Message::Text(text.into())).await {
                            Ok(()) => *pending = Some(p),
                            Err(e) => {
                                p.result.error = Some(format!("send: {e}"));
                                let _ = p.reply.send(p.result);
                            }
                        }
                    }
                    _ => {
                        let _ = p.reply.send(p.result);
                    }
                }
            }
            "error" => {
                if let Some(p) = pending.take() {
                    let code = f.code.as_ref().map_or("?", |c| c.as_str());
                    let mut result = p.result;
                    result.error = Some(format!("history: error {code}"));
                    let _ = p.reply.send(result);
                }
            }
            "message" | "messages" => {
                self.shared
                    .counters
                    .after_collect
                    .fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Records one frame received before collection.
    fn frame(&self, f: &ServerFrame<'_>, rep: &mut TaskReport) {
        match f.ty.as_str() {
            "message" => {
                rep.frames.message += 1;
                let m = f.as_message();
                self.record_live(&m, f, rep);
            }
            "messages" => {
                rep.frames.messages_batches += 1;
                for m in f.messages.iter().flatten() {
                    self.record_live(m, f, rep);
                }
            }
            "ack" => self.record_ack(f, rep),
            "joined" => rep.frames.joined += 1,
            "history" => rep.frames.history += 1,
            "pong" => rep.frames.pong += 1,
            "error" => {
                rep.frames.error += 1;
                let code = f.code.as_ref().map_or("?", |c| c.as_str());
                match rep.error_codes.get_mut(code) {
                    Some(n) => *n += 1,
                    None => {
                        rep.error_codes.insert(code.to_owned(), 1);
                    }
                }
                let key = f
                    .client_msg_id
                    .as_ref()
                    .and_then(|id| self.shared.ids.parse(id.as_str()));
                if let Some(key) = key
                    && key.conn as usize == self.conn
                    && let Some(s) = rep.record.sends.get_mut(key.n as usize)
                    && s.outcome == SendOutcome::Pending
                {
                    s.outcome = SendOutcome::Failed;
                    self.shared
                        .counters
                        .answered
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            t if t.starts_with("presence") => rep.frames.presence += 1,
            _ => rep.frames.unknown += 1,
        }
    }

    pub(crate) fn delivery(
        &self,
        m: &WireMessage<'_>,
        f: &ServerFrame<'_>,
        latency_us: u32,
    ) -> Delivery {
        let room = m.room.as_ref().or(f.room.as_ref()).map(|r| r.as_str());
        let mine = self.shared.room_names[self.shared.cfg.room_of(self.conn)].as_str();
        Delivery {
            seq: m.seq.unwrap_or(-1),
            key: m
                .client_msg_id
                .as_ref()
                .and_then(|id| self.shared.ids.parse(id.as_str())),
            room_ok: room == Some(mine),
            latency_us,
        }
    }

    fn record_live(&self, m: &WireMessage<'_>, f: &ServerFrame<'_>, rep: &mut TaskReport) {
        if m.seq.is_none() {
            rep.frames.without_seq += 1;
            return;
        }
        let now = self.shared.now_us();
        let latency = m
            .body
            .as_ref()
            .and_then(|b| frames::body_sent_us(b.as_str()))
            .map_or(NO_LATENCY, |sent| {
                u32::try_from(now.saturating_sub(sent)).unwrap_or(NO_LATENCY - 1)
            });
        let d = self.delivery(m, f, latency);
        rep.record.live.push(d);
        rep.last_delivery_at = now;
        if d.owed_to(self.conn) {
            self.shared
                .counters
                .deliveries
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn record_ack(&self, f: &ServerFrame<'_>, rep: &mut TaskReport) {
        rep.frames.ack += 1;
        let key = f
            .client_msg_id
            .as_ref()
            .and_then(|id| self.shared.ids.parse(id.as_str()));
        let (Some(key), Some(seq)) = (key, f.seq) else {
            rep.frames.misdirected_acks += 1;
            return;
        };
        if key.conn as usize != self.conn {
            rep.frames.misdirected_acks += 1;
            return;
        }
        let Some(s) = rep.record.sends.get_mut(key.n as usize) else {
            rep.frames.misdirected_acks += 1;
            return;
        };
        let room = rep.record.room as usize;
        let room_ok =
            f.room.as_ref().map(|r| r.as_str()) == Some(self.shared.room_names[room].as_str());
        match s.outcome {
            SendOutcome::Pending | SendOutcome::Failed => {
                if s.outcome == SendOutcome::Pending {
                    self.shared
                        .counters
                        .answered
                        .fetch_add(1, Ordering::Relaxed);
                }
                s.outcome = SendOutcome::Acked {
                    seq,
                    at: self.shared.now_us(),
                    room_ok,
                };
                if let Some(c) = self.shared.counters.acked.get(room) {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
            SendOutcome::Acked { seq: first, .. } => {
                if first != seq {
                    rep.frames.conflicting_acks += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task for connection 1 of a two-connection, one-room run named `run1`.
    async fn task() -> ConnTask {
        let cfg = Config::new("ws://127.0.0.1:9/", vec!["t".into()]);
        let target = Target::resolve(&cfg.url, 1, 2).await.expect("target");
        let shared = Arc::new(Shared {
            cfg,
            target,
            room_names: vec!["room-0".into()],
            ids: MsgIds::new("run1"),
            epoch: Instant::now(),
            counters: Counters::new(1),
        });
        let (events, _) = mpsc::unbounded_channel();
        let (_, commands) = mpsc::channel(1);
        ConnTask {
            conn: 1,
            token: "t".into(),
            shared,
            events,
            commands,
        }
    }

    fn message(seq: i64, client_msg_id: &str) -> String {
        serde_json::json!({
            "type": "message", "room": "room-0", "seq": seq,
            "clientMsgId": client_msg_id, "body": "x",
        })
        .to_string()
    }

    /// The drain waits for what the run owes: a message from outside the run, or one of the
    /// connection's own, must not count as an arrival, or the drain ends with deliveries
    /// still in flight (they then land after collection and are judged recovered).
    #[tokio::test]
    async fn only_owed_live_deliveries_count_toward_the_drain() {
        let t = task().await;
        let mut rep = TaskReport::default();
        let mut id = String::new();
        t.shared
            .ids
            .write(frames::MsgKey { conn: 0, n: 0 }, &mut id);
        let mut own = String::new();
        t.shared
            .ids
            .write(frames::MsgKey { conn: 1, n: 0 }, &mut own);
        for (seq, text) in [
            (1, message(1, "fill-0")),
            (2, message(2, &own)),
            (3, message(3, &id)),
        ] {
            let f = ServerFrame::parse(&text).expect("frame");
            t.frame(&f, &mut rep);
            assert_eq!(
                rep.record.live.len(),
                seq as usize,
                "every copy is recorded"
            );
        }
        assert_eq!(t.shared.counters.deliveries.load(Ordering::Relaxed), 1);
    }
}

//! The delivery judge: from what every connection recorded (its room, when it joined, what it
//! sent and what was acked, what it received live and what catch-up recovered), decide for each
//! acked message and each connection that should have received it whether it arrived once,
//! arrived twice, arrived by catch-up only, or never; and find deliveries that must not happen
//! (to the sender, to another room, under another `seq` than the ack's).
//!
//! The judge is pure: it reads [`ConnRecord`]s and returns a [`Judgement`], so every rule is unit
//! tested on hand-built records. The connection tasks only record, cheaply, on the hot path.

use std::collections::HashMap;

use hdrhistogram::{CreationError, Histogram};
use serde::Serialize;

use crate::frames::MsgKey;

/// Microseconds since the run's epoch (one `Instant` taken at start).
pub type Micros = u64;

/// A latency that could not be measured (the body carried no send time).
pub const NO_LATENCY: u32 = u32::MAX;

/// Everything one connection saw, in the order it saw it.
#[derive(Debug, Clone, Default)]
pub struct ConnRecord {
    /// Index of its room (connection `i` is in room `i % rooms`).
    pub room: u32,
    /// When its `joined` arrived; `None` if it never joined (then it is owed nothing).
    pub joined_at: Option<Micros>,
    /// Its sends, indexed by message number `n`.
    pub sends: Vec<SendRecord>,
    /// Messages received live (`message` frames and elements of `messages` frames).
    pub live: Vec<Delivery>,
    /// Messages read by the `history after` catch-up at the end.
    pub recovered: Vec<Delivery>,
}

/// One `sendMessage` and what became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendRecord {
    pub sent_at: Micros,
    pub outcome: SendOutcome,
}

/// The answer to a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// No `ack` and no `error` (yet).
    Pending,
    /// Acked with `seq`; `room_ok` says whether the ack named the sender's room.
    Acked { seq: i64, at: Micros, room_ok: bool },
    /// An `error` frame named this send's `clientMsgId`.
    Failed,
}

/// One received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The `seq` the frame carried.
    pub seq: i64,
    /// Whose message it was; `None` for a message of someone else than this run.
    pub key: Option<MsgKey>,
    /// Whether the frame's `room` was the receiver's room.
    pub room_ok: bool,
    /// Receive time minus the send time stamped in the body, in µs ([`NO_LATENCY`] if unknown).
    pub latency_us: u32,
}

impl Delivery {
    /// Whether this copy is one the run owes `receiver`: another connection's message of this
    /// run. The drain counts only these, so that messages from outside the run (another client
    /// in the same room) or echoes of its own cannot end it before what is owed has arrived.
    pub fn owed_to(&self, receiver: usize) -> bool {
        self.key.is_some_and(|k| k.conn as usize != receiver)
    }
}

/// Counts per acked message, and per (message, connection that should receive it) pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcomes {
    /// `sendMessage` frames sent.
    pub sent: u64,
    /// Sends that got an `ack`.
    pub acked: u64,
    /// Sends that got neither an `ack` nor an `error`.
    pub unacked: u64,
    /// Sends answered by an `error` frame.
    pub send_errors: u64,
    /// Acked messages that reached every connection owed them live, exactly once.
    pub msgs_delivered_live: u64,
    /// Acked messages that at least one connection got only through catch-up (none lost).
    pub msgs_recovered: u64,
    /// Acked messages that at least one owed connection never got.
    pub msgs_lost: u64,
    /// Acked messages that at least one connection got more than once.
    pub msgs_duplicated: u64,
    /// (message, connection) pairs owed a delivery: every other connection of the room that
    /// had joined before the send.
    pub expected_deliveries: u64,
    /// Owed pairs delivered live (at least once).
    pub delivered_live: u64,
    /// Owed pairs that arrived only through catch-up.
    pub recovered: u64,
    /// Owed pairs that never arrived.
    pub lost: u64,
    /// Extra copies beyond the first, live.
    pub duplicated: u64,
    /// Live deliveries of a message to the connection that sent it.
    pub to_sender: u64,
    /// Live deliveries of a message of another room (by `room` field or by sender).
    pub wrong_room: u64,
    /// Deliveries whose `seq` differs from the ack's, plus acks that disagree with each other.
    pub seq_mismatch: u64,
    /// Acks that named another room than the send.
    pub ack_wrong_room: u64,
    /// Live deliveries to connections that joined after the send (allowed, not owed).
    pub late_joiner_deliveries: u64,
    /// Live deliveries of this run's messages that were never acked.
    pub unacked_deliveries: u64,
    /// Live deliveries of messages not sent by this run.
    pub foreign_deliveries: u64,
    /// Connections whose `seq`s (received, recovered and own) still have a hole at the end.
    pub receivers_with_gaps: u64,
    /// Missing `seq`s over all those connections.
    pub gap_seqs: u64,
}

/// The judge's result: the counts and the latency histograms (µs).
#[derive(Debug, Clone)]
pub struct Judgement {
    pub outcomes: Outcomes,
    /// Send to ack, per acked send.
    pub ack_latency: Histogram<u64>,
    /// Send to live delivery, per owed pair's first live copy.
    pub delivery_latency: Histogram<u64>,
}

/// Highest latency the histograms hold (an hour, in µs); longer values are clamped to it.
const HIST_MAX_US: u64 = 3_600_000_000;

/// An empty latency histogram, 1 µs .. 1 h at 3 significant digits (0.1 % resolution).
pub fn latency_histogram() -> Result<Histogram<u64>, CreationError> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3)
}

/// One acked message of the run.
struct Msg {
    room: u32,
    seq: i64,
    key: MsgKey,
    sent_at: Micros,
    /// Index among its room's messages.
    local: usize,
}

/// The acked messages, indexed by key and by (room, seq).
struct Table {
    msgs: Vec<Msg>,
    by_key: HashMap<MsgKey, usize>,
    by_room: Vec<Vec<usize>>,
}

impl Table {
    fn build(conns: &[ConnRecord], rooms: usize, out: &mut Outcomes) -> Self {
        let mut t = Table {
            msgs: Vec::new(),
            by_key: HashMap::new(),
            by_room: vec![Vec::new(); rooms],
        };
        let mut by_seq: HashMap<(u32, i64), MsgKey> = HashMap::new();
        for (c, rec) in conns.iter().enumerate() {
            for (n, s) in rec.sends.iter().enumerate() {
                out.sent += 1;
                match s.outcome {
                    SendOutcome::Pending => out.unacked += 1,
                    SendOutcome::Failed => out.send_errors += 1,
                    SendOutcome::Acked { seq, room_ok, .. } => {
                        out.acked += 1;
                        if !room_ok {
                            out.ack_wrong_room += 1;
                        }
                        let key = MsgKey {
                            conn: c as u32,
                            n: n as u32,
                        };
                        // Two messages acked with one seq in one room: the seq is not theirs.
                        if let Some(other) = by_seq.insert((rec.room, seq), key)
                            && other != key
                        {
                            out.seq_mismatch += 1;
                        }
                        let room = rec.room;
                        let Some(list) = t.by_room.get_mut(room as usize) else {
                            continue;
                        };
                        t.by_key.insert(key, t.msgs.len());
                        list.push(t.msgs.len());
                        t.msgs.push(Msg {
                            room,
                            seq,
                            key,
                            sent_at: s.sent_at,
                            local: list.len() - 1,
                        });
                    }
                }
            }
        }
        t
    }
}

/// Per-message flags, gathered over all receivers.
const F_LOST: u8 = 1;
const F_RECOVERED: u8 = 2;
const F_DUPLICATED: u8 = 4;

/// Judges a run of `rooms` rooms. Fails only if the histograms cannot be created.
pub fn judge(conns: &[ConnRecord], rooms: usize) -> Result<Judgement, CreationError> {
    let mut out = Outcomes::default();
    let table = Table::build(conns, rooms, &mut out);
    let mut ack_latency = latency_histogram()?;
    let mut delivery_latency = latency_histogram()?;
    for rec in conns {
        for s in &rec.sends {
            if let SendOutcome::Acked { at, .. } = s.outcome {
                ack_latency.saturating_record(at.saturating_sub(s.sent_at).max(1));
            }
        }
    }
    let mut flags = vec![0u8; table.msgs.len()];
    // Per receiver: live copies and first live latency of each of its room's messages.
    let mut live: Vec<u8> = Vec::new();
    let mut first_latency: Vec<u32> = Vec::new();
    let mut rec_seen: Vec<bool> = Vec::new();
    for (c, rec) in conns.iter().enumerate() {
        let room_msgs: &[usize] = table
            .by_room
            .get(rec.room as usize)
            .map_or(&[], Vec::as_slice);
        live.clear();
        live.resize(room_msgs.len(), 0);
        first_latency.clear();
        first_latency.resize(room_msgs.len(), NO_LATENCY);
        rec_seen.clear();
        rec_seen.resize(room_msgs.len(), false);
        for d in &rec.live {
            let Some(key) = d.key else {
                out.foreign_deliveries += 1;
                continue;
            };
            if key.conn as usize == c {
                out.to_sender += 1;
                continue;
            }
            let sender_room = conns.get(key.conn as usize).map(|s| s.room);
            if !d.room_ok || sender_room != Some(rec.room) {
                out.wrong_room += 1;
                continue;
            }
            let Some(&m) = table.by_key.get(&key) else {
                out.unacked_deliveries += 1;
                continue;
            };
            let msg = &table.msgs[m];
            if d.seq != msg.seq {
                out.seq_mismatch += 1;
            }
            let slot = &mut live[msg.local];
            *slot = slot.saturating_add(1);
            if *slot == 1 {
                first_latency[msg.local] = d.latency_us;
            }
        }
        for d in &rec.recovered {
            let Some(&m) = d.key.as_ref().and_then(|k| table.by_key.get(k)) else {
                continue;
            };
            let msg = &table.msgs[m];
            if msg.room != rec.room {
                continue;
            }
            if d.seq != msg.seq {
                out.seq_mismatch += 1;
            }
            rec_seen[msg.local] = true;
        }
        for (local, &m) in room_msgs.iter().enumerate() {
            let msg = &table.msgs[m];
            let copies = live[local];
            if copies > 1 {
                out.duplicated += u64::from(copies - 1);
                flags[m] |= F_DUPLICATED;
            }
            let owed =
                msg.key.conn as usize != c && rec.joined_at.is_some_and(|j| j <= msg.sent_at);
            if !owed {
                if copies > 0 && msg.key.conn as usize != c {
                    out.late_joiner_deliveries += 1;
                }
                continue;
            }
            out.expected_deliveries += 1;
            if copies > 0 {
                out.delivered_live += 1;
                if first_latency[local] != NO_LATENCY {
                    delivery_latency.saturating_record(u64::from(first_latency[local]).max(1));
                }
            } else if rec_seen[local] {
                out.recovered += 1;
                flags[m] |= F_RECOVERED;
            } else {
                out.lost += 1;
                flags[m] |= F_LOST;
            }
        }
        let gaps = gap_count(rec);
        if gaps > 0 {
            out.receivers_with_gaps += 1;
            out.gap_seqs += gaps;
        }
    }
    for f in flags {
        if f & F_LOST != 0 {
            out.msgs_lost += 1;
        } else if f & F_RECOVERED != 0 {
            out.msgs_recovered += 1;
        } else if f & F_DUPLICATED == 0 {
            out.msgs_delivered_live += 1;
        }
        if f & F_DUPLICATED != 0 {
            out.msgs_duplicated += 1;
        }
    }
    Ok(Judgement {
        outcomes: out,
        ack_latency,
        delivery_latency,
    })
}

/// The `seq`s a connection knows of in its room: received live, recovered, and its own acks.
fn known_seqs(rec: &ConnRecord) -> Vec<i64> {
    let mut seqs: Vec<i64> = rec
        .live
        .iter()
        .chain(rec.recovered.iter())
        .filter(|d| d.room_ok)
        .map(|d| d.seq)
        .chain(rec.sends.iter().filter_map(|s| match s.outcome {
            SendOutcome::Acked {
                seq, room_ok: true, ..
            } => Some(seq),
            _ => None,
        }))
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    seqs
}

/// Missing `seq`s between the lowest and highest this connection knows of.
fn gap_count(rec: &ConnRecord) -> u64 {
    let seqs = known_seqs(rec);
    seqs.windows(2)
        .map(|w| (w[1] - w[0] - 1).max(0) as u64)
        .sum()
}

/// Where a connection that just reconnected asks `history after`, as a client does: its highest
/// contiguous `seq`, counted from the lowest it knows of (0 when it knows none). A hole below
/// the lowest known `seq` is left to the end's catch-up plan, which sees what was owed.
pub fn resync_after(rec: &ConnRecord) -> i64 {
    let seqs = known_seqs(rec);
    let Some(&first) = seqs.first() else {
        return 0;
    };
    let mut last = first;
    for &s in &seqs[1..] {
        if s != last + 1 {
            break;
        }
        last = s;
    }
    last
}

/// Where each connection's `history after` catch-up must start, as a client would decide: after
/// its highest contiguous `seq`, when it has a hole or is missing an acked message of its room
/// that it was owed. Connections with nothing missing are left out.
pub fn catch_up_plan(conns: &[ConnRecord], rooms: usize) -> Vec<(usize, i64)> {
    let mut scratch = Outcomes::default();
    let table = Table::build(conns, rooms, &mut scratch);
    let mut plan = Vec::new();
    for (c, rec) in conns.iter().enumerate() {
        let seqs = known_seqs(rec);
        let mut first_missing: Option<i64> =
            seqs.windows(2).find(|w| w[1] - w[0] > 1).map(|w| w[0] + 1);
        let room_msgs = table
            .by_room
            .get(rec.room as usize)
            .map_or(&[][..], Vec::as_slice);
        for &m in room_msgs {
            let msg = &table.msgs[m];
            let owed =
                msg.key.conn as usize != c && rec.joined_at.is_some_and(|j| j <= msg.sent_at);
            if owed && seqs.binary_search(&msg.seq).is_err() {
                first_missing = Some(first_missing.map_or(msg.seq, |f| f.min(msg.seq)));
            }
        }
        if let Some(f) = first_missing {
            plan.push((c, (f - 1).max(0)));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Room 0: connections 0, 1, 2; room 1: connection 3. All joined at t=0; connection 0
    /// sent one message at t=10, acked with seq 1.
    fn base() -> Vec<ConnRecord> {
        let mut conns = vec![
            ConnRecord {
                room: 0,
                joined_at: Some(0),
                ..Default::default()
            };
            4
        ];
        conns[3].room = 1;
        conns[0].sends.push(SendRecord {
            sent_at: 10,
            outcome: SendOutcome::Acked {
                seq: 1,
                at: 30,
                room_ok: true,
            },
        });
        conns
    }

    #[test]
    fn only_other_connections_messages_of_the_run_are_owed() {
        assert!(delivery(1, 0, 0).owed_to(1));
        assert!(!delivery(1, 0, 0).owed_to(0), "its own message");
        let foreign = Delivery {
            key: None,
            ..delivery(1, 0, 0)
        };
        assert!(!foreign.owed_to(1), "a message from outside the run");
    }

    fn delivery(seq: i64, conn: u32, n: u32) -> Delivery {
        Delivery {
            seq,
            key: Some(MsgKey { conn, n }),
            room_ok: true,
            latency_us: 50,
        }
    }

    fn clean() -> Vec<ConnRecord> {
        let mut conns = base();
        conns[1].live.push(delivery(1, 0, 0));
        conns[2].live.push(delivery(1, 0, 0));
        conns
    }

    fn outcomes(conns: &[ConnRecord]) -> Outcomes {
        judge(conns, 2).expect("histograms").outcomes
    }

    #[test]
    fn a_clean_run_is_all_live_once() {
        let j = judge(&clean(), 2).expect("histograms");
        let o = &j.outcomes;
        assert_eq!((o.sent, o.acked, o.unacked), (1, 1, 0));
        assert_eq!((o.expected_deliveries, o.delivered_live), (2, 2));
        assert_eq!(o.msgs_delivered_live, 1);
        assert_eq!(
            (
                o.lost,
                o.duplicated,
                o.to_sender,
                o.wrong_room,
                o.seq_mismatch
            ),
            (0, 0, 0, 0, 0)
        );
        assert_eq!(o.receivers_with_gaps, 0);
        assert_eq!(j.ack_latency.len(), 1);
        assert_eq!(j.ack_latency.max(), 20);
        assert_eq!(j.delivery_latency.len(), 2);
        assert!(catch_up_plan(&clean(), 2).is_empty());
    }

    #[test]
    fn duplicates_are_detected() {
        let mut conns = clean();
        conns[2].live.push(delivery(1, 0, 0));
        let o = outcomes(&conns);
        assert_eq!(o.duplicated, 1);
        assert_eq!(o.msgs_duplicated, 1);
        assert_eq!(o.msgs_delivered_live, 0);
        assert_eq!(o.delivered_live, 2);
    }

    #[test]
    fn delivery_to_the_sender_is_detected() {
        let mut conns = clean();
        conns[0].live.push(delivery(1, 0, 0));
        assert_eq!(outcomes(&conns).to_sender, 1);
    }

    #[test]
    fn delivery_to_another_room_is_detected() {
        let mut conns = clean();
        // Connection 3 is in room 1; the frame claims its room, the sender is in room 0.
        conns[3].live.push(delivery(1, 0, 0));
        assert_eq!(outcomes(&conns).wrong_room, 1);
        // A frame naming another room than the receiver's.
        let mut conns = base();
        conns[1].live.push(Delivery {
            room_ok: false,
            ..delivery(1, 0, 0)
        });
        conns[2].live.push(delivery(1, 0, 0));
        let o = outcomes(&conns);
        assert_eq!(o.wrong_room, 1);
        assert_eq!(o.lost, 1);
    }

    #[test]
    fn seq_mismatch_is_detected() {
        let mut conns = base();
        conns[1].live.push(delivery(2, 0, 0));
        conns[2].live.push(delivery(1, 0, 0));
        assert_eq!(outcomes(&conns).seq_mismatch, 1);
        // Two messages acked with the same seq.
        let mut conns = clean();
        conns[1].sends.push(SendRecord {
            sent_at: 11,
            outcome: SendOutcome::Acked {
                seq: 1,
                at: 40,
                room_ok: true,
            },
        });
        assert!(outcomes(&conns).seq_mismatch >= 1);
    }

    #[test]
    fn lost_deliveries_are_detected_and_planned_for_catch_up() {
        let mut conns = base();
        conns[1].live.push(delivery(1, 0, 0));
        let o = outcomes(&conns);
        assert_eq!((o.expected_deliveries, o.delivered_live, o.lost), (2, 1, 1));
        assert_eq!(o.msgs_lost, 1);
        assert_eq!(catch_up_plan(&conns, 2), vec![(2, 0)]);
    }

    #[test]
    fn catch_up_recovery_is_counted_apart_from_live() {
        let mut conns = base();
        conns[1].live.push(delivery(1, 0, 0));
        conns[2].recovered.push(delivery(1, 0, 0));
        let o = outcomes(&conns);
        assert_eq!((o.delivered_live, o.recovered, o.lost), (1, 1, 0));
        assert_eq!(
            (o.msgs_recovered, o.msgs_lost, o.msgs_delivered_live),
            (1, 0, 0)
        );
        // A recovered copy under another seq than the ack's is a mismatch too.
        conns[2].recovered[0].seq = 5;
        assert_eq!(outcomes(&conns).seq_mismatch, 1);
    }

    #[test]
    fn late_joiners_are_not_owed_earlier_messages() {
        let mut conns = base();
        conns[1].live.push(delivery(1, 0, 0));
        conns[2].joined_at = Some(20);
        let o = outcomes(&conns);
        assert_eq!((o.expected_deliveries, o.lost), (1, 0));
        conns[2].live.push(delivery(1, 0, 0));
        assert_eq!(outcomes(&conns).late_joiner_deliveries, 1);
        conns[2].joined_at = None;
        conns[2].live.clear();
        assert!(catch_up_plan(&conns, 2).is_empty());
    }

    #[test]
    fn unacked_and_failed_sends_are_counted() {
        let mut conns = clean();
        conns[1].sends.push(SendRecord {
            sent_at: 12,
            outcome: SendOutcome::Pending,
        });
        conns[2].sends.push(SendRecord {
            sent_at: 12,
            outcome: SendOutcome::Failed,
        });
        conns[0].live.push(delivery(2, 1, 0));
        let o = outcomes(&conns);
        assert_eq!((o.sent, o.acked, o.unacked, o.send_errors), (3, 1, 1, 1));
        assert_eq!(o.unacked_deliveries, 1);
    }

    #[test]
    fn holes_in_a_receivers_seqs_are_gaps_until_caught_up() {
        let mut conns = clean();
        // Connection 1 sees seqs 1 and 4 from someone else than this run.
        conns[1].live.push(Delivery {
            key: None,
            ..delivery(4, 0, 0)
        });
        let o = outcomes(&conns);
        assert_eq!((o.receivers_with_gaps, o.gap_seqs), (1, 2));
        assert_eq!(o.foreign_deliveries, 1);
        assert_eq!(catch_up_plan(&conns, 2), vec![(1, 1)]);
        for seq in [2, 3] {
            conns[1].recovered.push(Delivery {
                key: None,
                ..delivery(seq, 0, 0)
            });
        }
        assert_eq!(outcomes(&conns).receivers_with_gaps, 0);
    }

    #[test]
    fn a_reconnected_connection_resyncs_after_its_highest_contiguous_seq() {
        let mut conns = clean();
        assert_eq!(resync_after(&conns[3]), 0, "knows nothing");
        assert_eq!(resync_after(&conns[1]), 1);
        conns[1].live.push(delivery(2, 2, 0));
        conns[1].live.push(delivery(5, 2, 1));
        conns[1].recovered.push(delivery(3, 2, 2));
        assert_eq!(
            resync_after(&conns[1]),
            3,
            "the hole at 4 is where it resumes"
        );
        // Its own acks count as known.
        conns[1].sends.push(SendRecord {
            sent_at: 40,
            outcome: SendOutcome::Acked {
                seq: 4,
                at: 45,
                room_ok: true,
            },
        });
        assert_eq!(resync_after(&conns[1]), 5);
    }

    #[test]
    fn a_senders_own_acks_fill_its_sequence() {
        let mut conns = clean();
        conns[1].sends.push(SendRecord {
            sent_at: 20,
            outcome: SendOutcome::Acked {
                seq: 2,
                at: 25,
                room_ok: true,
            },
        });
        conns[0].live.push(delivery(2, 1, 0));
        conns[2].live.push(delivery(2, 1, 0));
        conns[1].live.push(delivery(3, 2, 7));
        let o = outcomes(&conns);
        assert_eq!(o.receivers_with_gaps, 0);
        assert_eq!((o.expected_deliveries, o.delivered_live), (4, 4));
    }
}

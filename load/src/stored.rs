//! The storage check: after the run, each room's stored history is read back (`history`
//! `after 0`, page by page) and compared with what was acked. hubbub promises that an acked
//! message is stored exactly once, under the `seq` of its ack, and that a room's `seq`s have
//! no holes; this module counts every way that promise can break. Like the delivery judge it
//! is pure: it reads the connections' records and the pages read, and returns counts.

use std::collections::HashMap;

use serde::Serialize;

use crate::frames::MsgKey;
use crate::judge::{ConnRecord, Delivery, SendOutcome};

/// What the stored history says about this run's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    /// Whether the check ran at all (`--no-storage-check` skips it).
    pub checked: bool,
    /// Rooms whose whole history was read.
    pub rooms_read: u64,
    /// Rooms whose history could not be read (their messages are not judged here).
    pub rooms_unread: u64,
    /// Messages read back, this run's and others'.
    pub messages_read: u64,
    /// Acked messages stored exactly once, under the ack's `seq`.
    pub stored_once: u64,
    /// Acked messages not in the stored history at all.
    pub missing: u64,
    /// Extra stored copies of one `clientMsgId` beyond the first.
    pub duplicates: u64,
    /// Stored copies of an acked message under another `seq` than its ack's.
    pub seq_mismatch: u64,
    /// `seq`s stored more than once in a room (beyond the first).
    pub seq_repeats: u64,
    /// `seq`s missing between the lowest and highest stored in a room.
    pub seq_gaps: u64,
    /// This run's messages that are stored but were never acked: a send whose answer was lost
    /// (the connection dropped) or refused after it was stored. Allowed: the outcome was
    /// unknown to the sender, and the message is in history for everyone.
    pub unacked_stored: u64,
}

/// Compares what was acked (in `conns`) with each room's stored history (`rooms[k]`, `None`
/// when room `k` could not be read).
pub fn check(conns: &[ConnRecord], rooms: &[Option<Vec<Delivery>>]) -> Storage {
    let mut out = Storage {
        checked: true,
        ..Storage::default()
    };
    // Per room: where each of this run's messages is stored (its seqs).
    let mut stored: Vec<Option<HashMap<MsgKey, Vec<i64>>>> = Vec::with_capacity(rooms.len());
    for room in rooms {
        let Some(msgs) = room else {
            out.rooms_unread += 1;
            stored.push(None);
            continue;
        };
        out.rooms_read += 1;
        out.messages_read += msgs.len() as u64;
        let mut seqs: Vec<i64> = msgs.iter().map(|d| d.seq).collect();
        seqs.sort_unstable();
        let all = seqs.len() as u64;
        seqs.dedup();
        out.seq_repeats += all - seqs.len() as u64;
        out.seq_gaps += seqs
            .windows(2)
            .map(|w| (w[1] - w[0] - 1).max(0) as u64)
            .sum::<u64>();
        let mut by_key: HashMap<MsgKey, Vec<i64>> = HashMap::new();
        for d in msgs {
            if let Some(k) = d.key {
                by_key.entry(k).or_default().push(d.seq);
            }
        }
        stored.push(Some(by_key));
    }
    for (c, rec) in conns.iter().enumerate() {
        let Some(Some(by_key)) = stored.get(rec.room as usize) else {
            continue;
        };
        for (n, s) in rec.sends.iter().enumerate() {
            let key = MsgKey {
                conn: c as u32,
                n: n as u32,
            };
            let copies = by_key.get(&key).map_or(&[][..], Vec::as_slice);
            match s.outcome {
                SendOutcome::Acked { seq, .. } => {
                    if copies.is_empty() {
                        out.missing += 1;
                        continue;
                    }
                    out.duplicates += copies.len() as u64 - 1;
                    let mismatched = copies.iter().filter(|&&q| q != seq).count() as u64;
                    out.seq_mismatch += mismatched;
                    if copies.len() == 1 && mismatched == 0 {
                        out.stored_once += 1;
                    }
                }
                SendOutcome::Pending | SendOutcome::Failed => {
                    if !copies.is_empty() {
                        out.unacked_stored += 1;
                        out.duplicates += copies.len() as u64 - 1;
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::SendRecord;

    fn acked(seq: i64) -> SendRecord {
        SendRecord {
            sent_at: 1,
            outcome: SendOutcome::Acked {
                seq,
                at: 2,
                room_ok: true,
            },
        }
    }

    fn row(seq: i64, conn: u32, n: u32) -> Delivery {
        Delivery {
            seq,
            key: Some(MsgKey { conn, n }),
            room_ok: true,
            latency_us: crate::judge::NO_LATENCY,
        }
    }

    /// Room 0: connection 0 sent seqs 1 and 2, connection 1 sent seq 3; room 1: connection 2
    /// sent nothing.
    fn conns() -> Vec<ConnRecord> {
        let mut c = vec![ConnRecord::default(); 3];
        c[2].room = 1;
        c[0].sends = vec![acked(1), acked(2)];
        c[1].sends = vec![acked(3)];
        c
    }

    fn clean_rooms() -> Vec<Option<Vec<Delivery>>> {
        vec![
            Some(vec![row(1, 0, 0), row(2, 0, 1), row(3, 1, 0)]),
            Some(vec![]),
        ]
    }

    #[test]
    fn every_acked_message_stored_once_is_clean() {
        let s = check(&conns(), &clean_rooms());
        assert_eq!((s.rooms_read, s.messages_read, s.stored_once), (2, 3, 3));
        assert_eq!(
            (
                s.missing,
                s.duplicates,
                s.seq_mismatch,
                s.seq_gaps,
                s.seq_repeats
            ),
            (0, 0, 0, 0, 0)
        );
    }

    #[test]
    fn a_missing_message_and_the_hole_it_leaves_are_counted() {
        let mut rooms = clean_rooms();
        rooms[0] = Some(vec![row(1, 0, 0), row(3, 1, 0)]);
        let s = check(&conns(), &rooms);
        assert_eq!((s.stored_once, s.missing, s.seq_gaps), (2, 1, 1));
    }

    #[test]
    fn a_message_stored_twice_is_a_duplicate() {
        let mut rooms = clean_rooms();
        if let Some(r) = rooms[0].as_mut() {
            r.push(row(4, 0, 1));
        }
        let s = check(&conns(), &rooms);
        assert_eq!((s.stored_once, s.duplicates, s.seq_mismatch), (2, 1, 1));
    }

    #[test]
    fn a_seq_stored_twice_or_under_another_seq_is_counted() {
        let mut rooms = clean_rooms();
        rooms[0] = Some(vec![row(1, 0, 0), row(2, 0, 1), row(2, 1, 0)]);
        let s = check(&conns(), &rooms);
        assert_eq!((s.seq_repeats, s.seq_mismatch, s.stored_once), (1, 1, 2));
    }

    #[test]
    fn unacked_but_stored_messages_are_allowed_and_counted() {
        let mut c = conns();
        c[1].sends.push(SendRecord {
            sent_at: 1,
            outcome: SendOutcome::Pending,
        });
        c[1].sends.push(SendRecord {
            sent_at: 1,
            outcome: SendOutcome::Failed,
        });
        let mut rooms = clean_rooms();
        if let Some(r) = rooms[0].as_mut() {
            r.push(row(4, 1, 1));
        }
        let s = check(&c, &rooms);
        assert_eq!((s.unacked_stored, s.stored_once, s.duplicates), (1, 3, 0));
    }

    #[test]
    fn an_unread_room_is_not_judged() {
        let mut rooms = clean_rooms();
        rooms[0] = None;
        let s = check(&conns(), &rooms);
        assert_eq!((s.rooms_read, s.rooms_unread, s.missing), (1, 1, 0));
    }
}

//! Coalesced delivery for busy rooms: fan-out jobs of one room that are waiting together
//! become one frame per recipient.
//!
//! Every post costs the same whatever it carries, and all of an account's posts share one
//! API Gateway quota. When a room's messages arrive faster than its chunks can be posted,
//! jobs queue up (in a lane of the in-process workers, or in an SQS batch); instead of one
//! post per message per recipient, each recipient then gets one `messages` frame carrying
//! every queued message it is owed, in `seq` order. Posts per delivered message fall below
//! one exactly when the room is busy. This module only merges jobs that are already waiting
//! together; when they wait is the queue's rule (`local::ROUND_INTERVAL`: a lane posts at most
//! every 25 ms, and a room's first message after a quiet spell does not wait).
//!
//! Only message jobs ([`FanoutJob::seq`] set) merge; other frames (presence) are delivered
//! as they are. Each recipient gets exactly the messages whose jobs named it, so the
//! sender of a message still does not get it back.

use std::collections::{BTreeMap, HashMap};

use crate::protocol::{ChatMessage, RoomId, ServerFrame};

use super::FanoutJob;

/// The largest coalesced frame, in bytes of its messages. API Gateway delivers a post of up
/// to 128 KB, but as 32 KB WebSocket frames; staying within one frame keeps every client
/// library happy, and 32 KB is already dozens of typical messages per post.
pub const MAX_COALESCED_BYTES: usize = 32 * 1024;

/// The most messages in one coalesced frame: bounds a client's work per frame (and its
/// render batch) even for tiny messages.
pub const MAX_COALESCED_MESSAGES: usize = 100;

/// How many of `jobs` (in order) one coalesced round should take: the longest prefix whose
/// frames fit [`MAX_COALESCED_BYTES`] and [`MAX_COALESCED_MESSAGES`], at least one.
pub fn round_len<'a>(jobs: impl IntoIterator<Item = &'a FanoutJob>) -> usize {
    let mut bytes = 0;
    let mut taken = 0;
    for job in jobs {
        bytes += job.frame.len();
        if taken > 0 && (bytes > MAX_COALESCED_BYTES || taken >= MAX_COALESCED_MESSAGES) {
            break;
        }
        taken += 1;
    }
    taken
}

/// Merges waiting jobs: per (endpoint, room), the message jobs become one job per distinct
/// set of messages owed, each recipient in exactly one of them; other jobs pass unchanged.
///
/// The result's jobs for one room have disjoint recipients, so they can run in any order
/// or at once. A message job whose frame does not parse passes unchanged (it is still
/// deliverable as it is). Merged jobs have no `seq` (they do not merge again) and the
/// highest `attempt` of their parts.
pub fn coalesce(jobs: Vec<FanoutJob>) -> Vec<FanoutJob> {
    let mut out = Vec::new();
    let mut groups: HashMap<(String, RoomId), Vec<(ChatMessage, FanoutJob)>> = HashMap::new();
    for job in jobs {
        let parsed = job
            .seq
            .and_then(|_| serde_json::from_str::<ChatMessage>(&job.frame).ok());
        match parsed {
            Some(message) => groups
                .entry((job.endpoint.clone(), job.room.clone()))
                .or_default()
                .push((message, job)),
            None => out.push(job),
        }
    }
    for ((endpoint, room), group) in groups {
        if group.len() == 1 {
            out.extend(group.into_iter().map(|(_, job)| job));
            continue;
        }
        out.extend(merge(&endpoint, &room, group));
    }
    out
}

/// One room's message jobs merged: recipients grouped by the messages they are owed.
fn merge(endpoint: &str, room: &RoomId, group: Vec<(ChatMessage, FanoutJob)>) -> Vec<FanoutJob> {
    // One entry per message (the chunks of one message may both be in the batch), in seq
    // order; each recipient's list of owed messages, as indices into it.
    let mut by_seq: BTreeMap<i64, (ChatMessage, String, u32)> = BTreeMap::new();
    let mut owed: HashMap<String, Vec<i64>> = HashMap::new();
    for (message, job) in group {
        let seq = message.seq;
        for id in job.connections {
            owed.entry(id).or_default().push(seq);
        }
        let entry = by_seq
            .entry(seq)
            .or_insert_with(|| (message, job.frame, job.attempt));
        entry.2 = entry.2.max(job.attempt);
    }
    let mut sets: HashMap<Vec<i64>, Vec<String>> = HashMap::new();
    for (id, mut seqs) in owed {
        seqs.sort_unstable();
        seqs.dedup();
        sets.entry(seqs).or_default().push(id);
    }
    sets.into_iter()
        .map(|(seqs, mut connections)| {
            connections.sort_unstable();
            let attempt = seqs
                .iter()
                .filter_map(|s| by_seq.get(s).map(|e| e.2))
                .max()
                .unwrap_or(1);
            let frame = match seqs.as_slice() {
                [only] => by_seq.get(only).map(|e| e.1.clone()).unwrap_or_default(),
                _ => ServerFrame::Messages {
                    room: room.clone(),
                    messages: seqs
                        .iter()
                        .filter_map(|s| by_seq.get(s).map(|e| e.0.clone()))
                        .collect(),
                }
                .to_json(),
            };
            FanoutJob {
                endpoint: endpoint.to_owned(),
                room: room.clone(),
                frame,
                connections,
                attempt,
                seq: None,
                chunk: 0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ClientMsgId, MessageBody, UserRef};

    fn message(seq: i64) -> ChatMessage {
        let mut m = ChatMessage::plain(
            RoomId::parse("r").expect("room"),
            seq,
            UserRef {
                id: "u".into(),
                name: "u".into(),
            },
            MessageBody::parse(format!("m{seq}")).expect("body"),
            ClientMsgId::parse(format!("c{seq}")).expect("id"),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        m.id = uuid::Uuid::nil();
        m
    }

    fn job(seq: i64, to: &[&str]) -> FanoutJob {
        let m = message(seq);
        FanoutJob {
            endpoint: "http://e/s".into(),
            room: m.room.clone(),
            frame: ServerFrame::Message(m).to_json(),
            connections: to.iter().map(|s| (*s).to_owned()).collect(),
            attempt: 1,
            seq: Some(seq),
            chunk: 0,
        }
    }

    /// Recipient -> the seqs its frame carries.
    fn delivered(jobs: &[FanoutJob]) -> BTreeMap<String, Vec<i64>> {
        let mut out = BTreeMap::new();
        for j in jobs {
            let v: serde_json::Value = serde_json::from_str(&j.frame).expect("json");
            let seqs: Vec<i64> = match v["type"].as_str() {
                Some("message") => vec![v["seq"].as_i64().expect("seq")],
                Some("messages") => v["messages"]
                    .as_array()
                    .expect("array")
                    .iter()
                    .map(|m| m["seq"].as_i64().expect("seq"))
                    .collect(),
                other => panic!("unexpected frame {other:?}"),
            };
            for c in &j.connections {
                assert!(
                    out.insert(c.clone(), seqs.clone()).is_none(),
                    "{c} gets one frame"
                );
            }
        }
        out
    }

    #[test]
    fn waiting_messages_become_one_frame_per_recipient_in_seq_order() {
        // Sender a sent 2, sender b sent 1 and 3: neither gets its own back.
        let jobs = vec![
            job(2, &["b", "c", "d"]),
            job(1, &["a", "c", "d"]),
            job(3, &["a", "c", "d"]),
        ];
        let merged = coalesce(jobs);
        assert!(merged.iter().all(|j| j.seq.is_none()));
        let got = delivered(&merged);
        assert_eq!(got["a"], vec![1, 3]);
        assert_eq!(got["b"], vec![2]);
        assert_eq!(got["c"], vec![1, 2, 3]);
        assert_eq!(got["d"], vec![1, 2, 3]);
        // c and d share one frame: three frames for four recipients.
        assert_eq!(merged.len(), 3);
    }

    #[test]
    fn a_lone_job_and_frames_that_are_not_messages_pass_unchanged() {
        let lone = job(7, &["a", "b"]);
        assert_eq!(coalesce(vec![lone.clone()]), vec![lone]);
        let mut presence = job(1, &["a"]);
        presence.seq = None;
        presence.frame = r#"{"type":"presence","room":"r","joined":[],"left":[],"count":1}"#.into();
        let merged = coalesce(vec![presence.clone(), job(2, &["a"]), job(3, &["a"])]);
        assert!(merged.contains(&presence));
        assert_eq!(delivered(&merged[1..])["a"], vec![2, 3]);
    }

    #[test]
    fn two_chunks_of_one_message_do_not_double_it() {
        let merged = coalesce(vec![job(5, &["a"]), job(5, &["b"]), job(6, &["a", "b"])]);
        let got = delivered(&merged);
        assert_eq!(got["a"], vec![5, 6]);
        assert_eq!(got["b"], vec![5, 6]);
    }

    #[test]
    fn rooms_do_not_mix_and_attempts_carry_over() {
        let mut other = job(1, &["a"]);
        other.room = RoomId::parse("other").expect("room");
        let mut retried = job(2, &["a"]);
        retried.attempt = 2;
        let merged = coalesce(vec![other.clone(), job(1, &["a"]), retried]);
        assert!(merged.contains(&other));
        let mine: Vec<_> = merged
            .into_iter()
            .filter(|j| j.room != other.room)
            .collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].attempt, 2);
    }

    #[test]
    fn a_round_stops_at_the_byte_and_message_caps() {
        let small: Vec<FanoutJob> = (1..=300).map(|s| job(s, &["a"])).collect();
        assert_eq!(round_len(&small), MAX_COALESCED_MESSAGES);
        let mut big = job(1, &["a"]);
        big.frame = "x".repeat(MAX_COALESCED_BYTES);
        let jobs = vec![big.clone(), job(2, &["a"])];
        assert_eq!(round_len(&jobs), 1, "one oversized job still makes a round");
        assert_eq!(round_len(&jobs[1..]), 1);
        assert_eq!(round_len(std::iter::empty()), 0);
    }
}

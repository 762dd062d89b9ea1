//! The run's report: what was asked, what the connections did, the judge's counts, latency
//! percentiles, the client's own cost, and the verdict with its reasons. Printed as a text
//! table or as JSON (the same data); the text always ends with exactly one `VERDICT:` line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::config::{AuthMode, Thresholds};
use crate::conn::FrameCounts;
use crate::judge::Outcomes;
use crate::stored::Storage;

/// p50/p90/p99/max of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn of_us(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// What was asked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunShape {
    pub url: String,
    pub connections: usize,
    pub rooms: usize,
    pub senders_per_room: usize,
    pub rate_per_room: f64,
    pub duration_secs: f64,
    pub body_bytes: usize,
    pub auth: AuthMode,
    pub room_prefix: String,
    pub source_addrs: usize,
    pub thresholds: Thresholds,
}

/// How connecting and joining went.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connecting {
    pub attempted: usize,
    pub connected: usize,
    pub joined: usize,
    /// Connect failures by category (`http 401`, `timeout`, ...).
    pub connect_errors: BTreeMap<String, u64>,
    /// Join failures by reason.
    pub join_errors: BTreeMap<String, u64>,
    /// Connections that ended before the run did (and could not reconnect), by reason.
    pub closed_early: BTreeMap<String, u64>,
    /// Sockets lost mid-run and repaired by a reconnect.
    pub reconnects: u64,
    /// Why those sockets were lost.
    pub reconnect_reasons: BTreeMap<String, u64>,
    /// TCP connect plus handshake, per connection.
    pub connect_time: Percentiles,
    /// From the first connect to the last join.
    pub ramp_secs: f64,
}

/// The traffic phase.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    /// From the first scheduled send to the last live delivery.
    pub active_secs: f64,
    /// Time spent waiting for outstanding acks and deliveries after the last send.
    pub drain_secs: f64,
    /// Live deliveries per second over `active_secs`.
    pub deliveries_per_sec: f64,
    /// Worst lateness of a send against its schedule (the client's own lag).
    pub max_send_lag_ms: f64,
    /// Deliveries that arrived after the records were collected (not judged).
    pub deliveries_after_collect: u64,
    /// Connections that ran a `history after` catch-up, pages read, catch-ups that failed.
    pub catch_up_connections: u64,
    pub catch_up_pages: u64,
    pub catch_up_failures: u64,
}

/// The load client's own cost.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCost {
    /// Process CPU (user + system) over the whole run.
    pub cpu_secs_total: f64,
    /// Process CPU during the send and drain phases.
    pub cpu_secs_traffic: f64,
    /// Traffic-phase CPU per 100,000 live deliveries, in ms (none below 1,000 deliveries).
    pub cpu_ms_per_100k_deliveries: Option<f64>,
    pub peak_rss_mib: f64,
    /// The open-file soft limit the run had (after raising it to the hard limit).
    pub nofile_limit: u64,
}

/// The verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub ok: bool,
    pub reasons: Vec<String>,
}

/// Everything about a run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub run_id: String,
    pub shape: RunShape,
    pub connecting: Connecting,
    pub outcomes: Outcomes,
    /// The stored history read back and compared with the acks.
    pub storage: Storage,
    pub ack_latency: Percentiles,
    pub delivery_latency: Percentiles,
    pub traffic: Traffic,
    pub frames: FrameCounts,
    /// `error` frames by code.
    pub error_codes: BTreeMap<String, u64>,
    pub client: ClientCost,
    pub verdict: Verdict,
}

/// The error codes a fault makes hubbub answer, allowed in a run with faults: `unavailable`
/// (a store failed, nothing was stored) and `rate_limited` (a send held up by the fault is
/// checked against its connection's bucket late, or a client flushing its outbox after a
/// reconnect contends for the bucket). Both mean "not stored, retry"; neither acks anything.
const FAULT_ERRORS: [&str; 2] = ["unavailable", "rate_limited"];

/// Joins `counts` as `key: n, key: n`.
fn listing(counts: &BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    /// Decides the verdict from the counts and thresholds, and stores it.
    pub fn decide(&mut self) {
        let mut reasons = Vec::new();
        let c = &self.connecting;
        if c.connected < c.attempted {
            reasons.push(format!(
                "{} of {} connections failed ({})",
                c.attempted - c.connected,
                c.attempted,
                listing(&c.connect_errors)
            ));
        }
        if c.joined < c.connected {
            reasons.push(format!(
                "{} joins failed ({})",
                c.connected - c.joined,
                listing(&c.join_errors)
            ));
        }
        let closed: u64 = c.closed_early.values().sum();
        if closed > 0 {
            reasons.push(format!(
                "{closed} connections ended early ({})",
                listing(&c.closed_early)
            ));
        }
        let faults = self.shape.thresholds.allow_faults;
        if c.reconnects > 0 && !faults {
            reasons.push(format!(
                "{} connections lost their socket and reconnected ({})",
                c.reconnects,
                listing(&c.reconnect_reasons)
            ));
        }
        let o = &self.outcomes;
        if o.sent == 0 {
            reasons.push("nothing was sent".into());
        }
        let pairs = [
            (o.unacked, "sends never acked"),
            (o.lost, "owed deliveries lost"),
            (o.duplicated, "duplicate deliveries"),
            (o.to_sender, "deliveries to the sending connection"),
            (o.wrong_room, "deliveries to another room"),
            (o.seq_mismatch, "seq mismatches"),
            (o.ack_wrong_room, "acks naming another room"),
            (
                self.frames.misdirected_acks,
                "acks for another connection's message",
            ),
            (
                self.frames.conflicting_acks,
                "acks contradicting an earlier ack",
            ),
        ];
        for (n, what) in pairs {
            if n > 0 {
                reasons.push(format!("{n} {what}"));
            }
        }
        if o.gap_seqs > 0 {
            reasons.push(format!(
                "{} connections left with seq gaps ({} seqs)",
                o.receivers_with_gaps, o.gap_seqs
            ));
        }
        let st = &self.storage;
        let storage = [
            (
                st.rooms_unread,
                "rooms whose stored history could not be read",
            ),
            (st.missing, "acked messages missing from storage"),
            (st.duplicates, "duplicate copies in storage"),
            (st.seq_mismatch, "stored under another seq than the ack's"),
            (st.seq_repeats, "seqs stored twice"),
            (st.seq_gaps, "seqs missing from storage"),
        ];
        for (n, what) in storage {
            if n > 0 {
                reasons.push(format!("{n} {what}"));
            }
        }
        // Refusals a fault causes ("nothing was stored, retry"): expected in a run with
        // faults, an error in any other.
        let errors: BTreeMap<String, u64> = self
            .error_codes
            .iter()
            .filter(|(code, _)| !(faults && FAULT_ERRORS.contains(&code.as_str())))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let n_errors: u64 = errors.values().sum();
        if n_errors > 0 {
            reasons.push(format!("{n_errors} error frames ({})", listing(&errors)));
        }
        let t = &self.shape.thresholds;
        if o.recovered > t.max_recovered && !faults {
            reasons.push(format!(
                "{} owed deliveries came only through catch-up (allowed {})",
                o.recovered, t.max_recovered
            ));
        }
        if let Some(max) = t.max_ack_p99_ms
            && self.ack_latency.p99_ms > max
        {
            reasons.push(format!(
                "ack p99 {:.1} ms > {max} ms",
                self.ack_latency.p99_ms
            ));
        }
        if let Some(max) = t.max_delivery_p99_ms
            && self.delivery_latency.p99_ms > max
        {
            reasons.push(format!(
                "delivery p99 {:.1} ms > {max} ms",
                self.delivery_latency.p99_ms
            ));
        }
        self.verdict = Verdict {
            ok: reasons.is_empty(),
            reasons,
        };
    }

    /// The one `VERDICT:` line.
    pub fn verdict_line(&self) -> String {
        if self.verdict.ok {
            "VERDICT: ok".into()
        } else {
            format!("VERDICT: FAIL ({})", self.verdict.reasons.join("; "))
        }
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        // The report holds only strings, numbers, maps with string keys and booleans, which
        // serde_json always encodes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The report as a text table ending with the verdict line.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_text(&mut s);
        s
    }

    fn write_text(&self, s: &mut String) -> std::fmt::Result {
        let sh = &self.shape;
        writeln!(
            s,
            "hubbub-load run {}: {} connections, {} rooms, {} senders/room, {} msg/s/room for {:.1} s, {} B bodies, token in {}",
            self.run_id,
            sh.connections,
            sh.rooms,
            sh.senders_per_room,
            sh.rate_per_room,
            sh.duration_secs,
            sh.body_bytes,
            match sh.auth {
                AuthMode::QueryToken => "query",
                AuthMode::Subprotocol => "subprotocol",
            }
        )?;
        writeln!(s, "target {}  rooms {}*", sh.url, sh.room_prefix)?;
        let c = &self.connecting;
        writeln!(s)?;
        writeln!(
            s,
            "connections   {} attempted, {} connected, {} joined in {:.2} s",
            c.attempted, c.connected, c.joined, c.ramp_secs
        )?;
        for (label, m) in [
            ("connect errors", &c.connect_errors),
            ("join errors", &c.join_errors),
            ("ended early", &c.closed_early),
            ("reconnects", &c.reconnect_reasons),
        ] {
            if !m.is_empty() {
                writeln!(s, "{label:<16}{}", listing(m))?;
            }
        }
        let o = &self.outcomes;
        writeln!(s)?;
        writeln!(
            s,
            "messages      {} sent, {} acked, {} never acked, {} refused by error",
            o.sent, o.acked, o.unacked, o.send_errors
        )?;
        writeln!(
            s,
            "  per message {} delivered live, {} recovered by catch-up, {} lost, {} duplicated",
            o.msgs_delivered_live, o.msgs_recovered, o.msgs_lost, o.msgs_duplicated
        )?;
        let st = &self.storage;
        if st.checked {
            writeln!(
                s,
                "storage       {} rooms read ({} unread), {} messages: {} acked stored once, {} missing, {} duplicate copies, {} seq mismatches, {} seqs repeated, {} seq gaps, {} unacked stored",
                st.rooms_read,
                st.rooms_unread,
                st.messages_read,
                st.stored_once,
                st.missing,
                st.duplicates,
                st.seq_mismatch,
                st.seq_repeats,
                st.seq_gaps,
                st.unacked_stored
            )?;
        } else {
            writeln!(s, "storage       not checked")?;
        }
        writeln!(
            s,
            "deliveries    {} owed: {} live, {} recovered by catch-up, {} lost; {} duplicate copies",
            o.expected_deliveries, o.delivered_live, o.recovered, o.lost, o.duplicated
        )?;
        writeln!(
            s,
            "  violations  {} to sender, {} to another room, {} seq mismatches, {} acks naming another room",
            o.to_sender, o.wrong_room, o.seq_mismatch, o.ack_wrong_room
        )?;
        writeln!(
            s,
            "  also        {} to late joiners, {} of unacked sends, {} foreign, {} after collection; gaps: {} connections, {} seqs",
            o.late_joiner_deliveries,
            o.unacked_deliveries,
            o.foreign_deliveries,
            self.traffic.deliveries_after_collect,
            o.receivers_with_gaps,
            o.gap_seqs
        )?;
        writeln!(s)?;
        writeln!(
            s,
            "latency (ms)  {:>8} {:>9} {:>9} {:>9} {:>9}",
            "count", "p50", "p90", "p99", "max"
        )?;
        lat_row(s, "connect", &c.connect_time)?;
        lat_row(s, "ack", &self.ack_latency)?;
        lat_row(s, "delivery", &self.delivery_latency)?;
        let t = &self.traffic;
        writeln!(s)?;
        writeln!(
            s,
            "throughput    {:.0} deliveries/s over {:.2} s; drain {:.2} s; worst send lag {:.1} ms",
            t.deliveries_per_sec, t.active_secs, t.drain_secs, t.max_send_lag_ms
        )?;
        if t.catch_up_connections > 0 {
            writeln!(
                s,
                "catch-up      {} connections, {} history pages, {} failed",
                t.catch_up_connections, t.catch_up_pages, t.catch_up_failures
            )?;
        }
        let f = &self.frames;
        writeln!(
            s,
            "frames        {} message, {} messages batches, {} ack, {} presence, {} pong, {} error, {} unknown, {} unparseable",
            f.message,
            f.messages_batches,
            f.ack,
            f.presence,
            f.pong,
            f.error,
            f.unknown,
            f.unparseable
        )?;
        if !self.error_codes.is_empty() {
            writeln!(s, "error codes   {}", listing(&self.error_codes))?;
        }
        let k = &self.client;
        writeln!(
            s,
            "client        CPU {:.2} s total, {:.2} s in traffic = {} per 100k deliveries; peak RSS {:.0} MiB; nofile {}",
            k.cpu_secs_total,
            k.cpu_secs_traffic,
            k.cpu_ms_per_100k_deliveries
                .map_or_else(|| "n/a".to_owned(), |ms| format!("{ms:.0} ms")),
            k.peak_rss_mib,
            k.nofile_limit
        )?;
        writeln!(s)?;
        writeln!(s, "{}", self.verdict_line())
    }
}

fn lat_row(s: &mut String, label: &str, p: &Percentiles) -> std::fmt::Result {
    writeln!(
        s,
        "{label:<14}{:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        p.count, p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            run_id: "abc".into(),
            shape: RunShape {
                url: "ws://127.0.0.1:3001/".into(),
                connections: 2,
                rooms: 1,
                senders_per_room: 1,
                rate_per_room: 1.0,
                duration_secs: 1.0,
                body_bytes: 64,
                auth: AuthMode::QueryToken,
                room_prefix: "load-abc-".into(),
                source_addrs: 0,
                thresholds: Thresholds::default(),
            },
            connecting: Connecting {
                attempted: 2,
                connected: 2,
                joined: 2,
                ..Connecting::default()
            },
            outcomes: Outcomes {
                sent: 1,
                acked: 1,
                expected_deliveries: 1,
                delivered_live: 1,
                msgs_delivered_live: 1,
                ..Outcomes::default()
            },
            ack_latency: Percentiles {
                count: 1,
                p99_ms: 5.0,
                ..Percentiles::default()
            },
            delivery_latency: Percentiles {
                count: 1,
                p99_ms: 7.0,
                ..Percentiles::default()
            },
            storage: Storage {
                checked: true,
                rooms_read: 1,
                messages_read: 1,
                stored_once: 1,
                ..Storage::default()
            },
            traffic: Traffic::default(),
            frames: FrameCounts::default(),
            error_codes: BTreeMap::new(),
            client: ClientCost::default(),
            verdict: Verdict::default(),
        }
    }

    #[test]
    fn a_clean_run_is_ok_and_the_text_ends_with_one_verdict_line() {
        let mut r = report();
        r.decide();
        assert!(r.verdict.ok, "{:?}", r.verdict);
        let text = r.to_text();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("VERDICT:")).count(),
            1
        );
        assert_eq!(text.lines().last(), Some("VERDICT: ok"));
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["verdict"]["ok"], true);
        assert_eq!(v["outcomes"]["deliveredLive"], 1);
    }

    #[test]
    fn every_failure_is_a_reason() {
        let mut r = report();
        r.outcomes.lost = 3;
        r.outcomes.duplicated = 1;
        r.outcomes.to_sender = 1;
        r.outcomes.wrong_room = 2;
        r.outcomes.seq_mismatch = 1;
        r.outcomes.unacked = 4;
        r.outcomes.recovered = 1;
        r.error_codes.insert("rate_limited".into(), 2);
        r.connecting.connected = 1;
        r.connecting.connect_errors.insert("http 401".into(), 1);
        r.decide();
        assert!(!r.verdict.ok);
        let line = r.verdict_line();
        for needle in [
            "3 owed deliveries lost",
            "1 duplicate deliveries",
            "1 deliveries to the sending connection",
            "2 deliveries to another room",
            "1 seq mismatches",
            "4 sends never acked",
            "came only through catch-up",
            "rate_limited: 2",
            "http 401: 1",
        ] {
            assert!(line.contains(needle), "{needle} missing from {line}");
        }
        assert!(line.starts_with("VERDICT: FAIL ("));
    }

    #[test]
    fn thresholds_fail_the_verdict() {
        let mut r = report();
        r.shape.thresholds.max_ack_p99_ms = Some(10.0);
        r.shape.thresholds.max_delivery_p99_ms = Some(10.0);
        r.decide();
        assert!(r.verdict.ok);
        r.shape.thresholds.max_delivery_p99_ms = Some(6.0);
        r.decide();
        assert_eq!(r.verdict.reasons, vec!["delivery p99 7.0 ms > 6 ms"]);
        r.shape.thresholds.max_recovered = 5;
        r.outcomes.recovered = 5;
        r.shape.thresholds.max_delivery_p99_ms = None;
        r.decide();
        assert!(r.verdict.ok);
    }

    /// A run with faults: reconnects, `unavailable` answers and catch-up recoveries are
    /// reported but allowed; anything else fails it as before.
    fn faulty() -> Report {
        let mut r = report();
        r.connecting.reconnects = 2;
        r.connecting
            .reconnect_reasons
            .insert("closed by server: 1001".into(), 2);
        r.error_codes.insert("unavailable".into(), 3);
        r.outcomes.send_errors = 3;
        r.outcomes.recovered = 4;
        r
    }

    #[test]
    fn reconnects_unavailable_and_recoveries_fail_only_a_run_without_faults() {
        let mut r = faulty();
        r.decide();
        let line = r.verdict_line();
        for needle in [
            "2 connections lost their socket and reconnected (closed by server: 1001: 2)",
            "3 error frames (unavailable: 3)",
            "4 owed deliveries came only through catch-up",
        ] {
            assert!(line.contains(needle), "{needle} missing from {line}");
        }
        r.shape.thresholds.allow_faults = true;
        r.decide();
        assert!(r.verdict.ok, "{:?}", r.verdict);
        r.error_codes.insert("internal".into(), 1);
        r.decide();
        assert_eq!(r.verdict.reasons, vec!["1 error frames (internal: 1)"]);
    }

    #[test]
    fn lost_messages_and_storage_faults_fail_even_a_run_with_faults() {
        for (set, needle) in [
            (
                (|r: &mut Report| r.outcomes.lost = 1) as fn(&mut Report),
                "1 owed deliveries lost",
            ),
            (
                |r| r.storage.duplicates = 2,
                "2 duplicate copies in storage",
            ),
            (
                |r| r.storage.missing = 1,
                "1 acked messages missing from storage",
            ),
            (|r| r.storage.seq_gaps = 3, "3 seqs missing from storage"),
            (|r| r.storage.seq_repeats = 1, "1 seqs stored twice"),
            (|r| r.storage.seq_mismatch = 1, "1 stored under another seq"),
            (
                |r| r.storage.rooms_unread = 1,
                "1 rooms whose stored history",
            ),
            (
                |r| {
                    r.connecting.closed_early.insert("read: reset".into(), 1);
                },
                "1 connections ended early",
            ),
        ] {
            let mut r = faulty();
            r.shape.thresholds.allow_faults = true;
            set(&mut r);
            r.decide();
            assert!(!r.verdict.ok, "{needle}");
            assert!(r.verdict_line().contains(needle), "{}", r.verdict_line());
        }
    }

    #[test]
    fn the_storage_figures_are_in_the_text_and_the_json() {
        let mut r = report();
        r.storage.duplicates = 1;
        r.decide();
        let text = r.to_text();
        assert!(
            text.contains("storage       1 rooms read (0 unread), 1 messages: 1 acked stored once, 0 missing, 1 duplicate copies"),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["storage"]["duplicates"], 1);
        assert_eq!(v["storage"]["storedOnce"], 1);
        assert_eq!(v["connecting"]["reconnects"], 0);
    }
}

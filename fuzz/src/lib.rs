//! The bodies of hubbub's fuzz targets: each module's `run` takes the fuzzer's bytes, feeds
//! them to the public parsing entry points the handlers use, and panics when a property
//! fails. A parser may refuse any input; it must never panic, and its refusal must never
//! echo what the client sent (docs/protocol.md, "errors never echo client input").
//!
//! The libFuzzer targets (`fuzz_targets/`, built by `cargo +nightly fuzz` with the
//! `libfuzzer` feature, see scripts/fuzz) call these functions, and so does the stable
//! replay test ([`replay`]), which runs the checked-in corpus (`fuzz/seeds/<target>/`) and
//! every crash input ever found (`fuzz/regressions/<target>/`) on every `cargo test`.

pub mod authorizer;
pub mod echo;
pub mod frame;
pub mod http_request;
pub mod ws_event;

#[cfg(test)]
mod replay;

/// A target's body: the fuzzer's bytes in, a panic when a property fails.
pub type Body = fn(&[u8]);

/// The targets, by the name of their `fuzz_targets/` binary and corpus directory.
pub const TARGETS: [(&str, Body); 4] = [
    ("frame", frame::run),
    ("http_request", http_request::run),
    ("ws_event", ws_event::run),
    ("authorizer", authorizer::run),
];

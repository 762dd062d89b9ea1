//! The "errors never echo client input" property, shared by every target.
//!
//! A refusal may name a field or a rule; it must not contain a client-supplied string. Short
//! strings are left out: `room`, `1..=64` or `action` may well be both input and a field
//! name, so only strings longer than [`ECHO_MIN`] characters count. A long input string found
//! in a message may still be a coincidence (the fuzzer learns the messages' own words from
//! the comparisons it watches): it is an echo only when replacing it in the input by another
//! string of the same length puts that string into the message.

use serde_json::Value;

/// Input strings of at most this many characters may appear in a message by coincidence.
pub const ECHO_MIN: usize = 16;

/// Every string of `raw` (the whole text, and, when it is JSON, every string value and key at
/// any depth) long enough to count as an echo.
pub fn candidates(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    push(&mut out, raw);
    if let Ok(v) = serde_json::from_str::<Value>(raw) {
        strings(&v, &mut out);
    }
    out
}

/// Adds `s` to `out` when it is long enough to count.
pub fn push(out: &mut Vec<String>, s: &str) {
    if s.chars().count() > ECHO_MIN {
        out.push(s.to_owned());
    }
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => push(out, s),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => {
            for (k, v) in map {
                push(out, k);
                strings(v, out);
            }
        }
        _ => {}
    }
}

/// A string of `s`'s length in characters that differs from it at every position.
fn stand_in(s: &str) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            let pick = if i % 2 == 0 { 'q' } else { 'x' };
            if c == pick { 'k' } else { pick }
        })
        .collect()
}

/// Panics when the refusal messages of `raw` (`messages_of`) echo one of `inputs` (strings
/// of `raw`, see [`candidates`]).
pub fn assert_no_echo(
    raw: &str,
    inputs: &[String],
    messages_of: impl Fn(&str) -> String,
    what: &str,
) {
    let message = messages_of(raw);
    for input in inputs {
        if !message.contains(input.as_str()) {
            continue;
        }
        let other = stand_in(input);
        let again = messages_of(&raw.replace(input.as_str(), &other));
        assert!(
            !again.contains(&other),
            "{what} echoes client input: {message:?} contains {input:?}, and {again:?} its stand-in {other:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_is_caught_and_a_coincidence_is_not() {
        let echoing = |raw: &str| format!("bad value {raw}");
        let fixed = |_: &str| "the frame is not valid JSON".to_owned();
        let raw = " is not valid JSON and more";
        assert_no_echo(raw, &candidates(raw), fixed, "fixed");
        let caught = std::panic::catch_unwind(|| {
            assert_no_echo(raw, &candidates(raw), echoing, "echoing");
        });
        assert!(caught.is_err());
    }
}

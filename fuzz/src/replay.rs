//! Runs every checked-in corpus input (`fuzz/seeds/<target>/`) and every crash input ever
//! found (`fuzz/regressions/<target>/`) through its target's body, on stable: the fuzzers'
//! properties hold in every `cargo test`, without nightly or libFuzzer.

use std::path::Path;

fn replay(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut count = 0;
    for (target, run) in crate::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries
            .map(|e| e.expect("a readable entry").path())
            .collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).expect("a readable corpus file");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{target} fails on {}", path.display());
            count += 1;
        }
    }
    count
}

#[test]
fn seeds_hold_every_property() {
    let n = replay("seeds");
    // Every target has seeds: an empty replay would pass whatever the bodies do.
    assert!(n >= crate::TARGETS.len() * 5, "only {n} seed inputs");
}

#[test]
fn crash_inputs_stay_fixed() {
    replay("regressions");
}

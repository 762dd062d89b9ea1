//! libFuzzer entry point of [`hubbub_fuzz::frame`]: the body lives in the library so the
//! stable corpus replay (`cargo test -p hubbub-fuzz`) runs the same checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hubbub_fuzz::frame::run(data));

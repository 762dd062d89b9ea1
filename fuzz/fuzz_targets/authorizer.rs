//! libFuzzer entry point of [`hubbub_fuzz::authorizer`]: the body lives in the library so the
//! stable corpus replay (`cargo test -p hubbub-fuzz`) runs the same checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hubbub_fuzz::authorizer::run(data));

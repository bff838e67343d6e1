//! A signed checkpoint (signed-note format) checked with the log's verifier key
//! (`tlog::verify_checkpoint`), and the verifier key parser.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = silta_proto::tlog::verify_checkpoint(text, silta_fuzz::log_verifier());
    let _ = silta_proto::tlog::parse_verifier_key(text);
});

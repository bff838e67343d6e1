//! An evidence file checked offline (`audit::check_evidence`): JSON, checkpoint, inclusion
//! proofs, events, and acknowledgements against bundles and CRLs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = silta_client::audit::check_evidence(
        text,
        silta_fuzz::log_verifier(),
        None,
        Some(silta_fuzz::CA_PEM),
    );
});

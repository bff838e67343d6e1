//! Inclusion and consistency proofs (`tlog::verify_inclusion`, `tlog::verify_consistency`), in
//! the framing of `silta_fuzz::ProofInput`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = silta_fuzz::ProofInput::parse(data);
    if p.consistency {
        let _ = silta_proto::tlog::verify_consistency(p.a, p.b, &p.proof, &p.h1, &p.h2);
    } else {
        let _ = silta_proto::tlog::verify_inclusion(p.a, p.b, &p.h1, &p.proof, &p.h2);
    }
});

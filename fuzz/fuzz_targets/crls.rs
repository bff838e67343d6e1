//! A client's handling of the CRLs the relay hands out (`bundle::TrustStore::freshest_crls`):
//! parsing, the signature check against the CA, ranking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use silta_proto::pb;

fuzz_target!(|data: &[u8]| {
    let Ok(resp) = pb::GetKeysResponse::decode(data) else {
        return;
    };
    let trust =
        silta_client::bundle::TrustStore::from_pem(silta_fuzz::CA_PEM, silta_fuzz::TRUST_DOMAIN)
            .expect("fixture CA");
    let kept = trust.freshest_crls(resp.crls.clone());
    // Only CRLs it was given come out, never more than it was given.
    assert!(kept.len() <= resp.crls.len());
    for k in &kept {
        assert!(resp.crls.iter().any(|c| c == k.der()));
    }
});

//! A client's verification of another device's key bundle against the CA
//! (`bundle::TrustStore::verify`), with the bundles and CRLs of a directory answer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use silta_proto::pb;

fuzz_target!(|data: &[u8]| {
    let Ok(resp) = pb::GetKeysResponse::decode(data) else {
        return;
    };
    let trust = trust();
    for b in resp.active.iter().chain(&resp.history) {
        if let Some(bundle) = &b.bundle {
            let _ = trust.verify(bundle, &resp.crls, silta_fuzz::now());
        }
    }
});

fn trust() -> &'static silta_client::bundle::TrustStore {
    static T: std::sync::OnceLock<silta_client::bundle::TrustStore> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        silta_client::bundle::TrustStore::from_pem(silta_fuzz::CA_PEM, silta_fuzz::TRUST_DOMAIN)
            .expect("fixture CA")
    })
}

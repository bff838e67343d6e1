//! The relay's checks on a published key bundle (`directory::check_bundle`). The caller is the
//! seeds' sender, authenticated with the bundle's own first certificate (the case that reaches
//! every check).
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use silta_proto::pb;

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = pb::KeyBundle::decode(data) else {
        return;
    };
    let principal: silta_certs::Principal = silta_fuzz::SENDER.parse().expect("principal");
    let caller: [u8; 32] = bundle
        .certificate_chain
        .first()
        .map(|c| {
            ring::digest::digest(&ring::digest::SHA256, c)
                .as_ref()
                .try_into()
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let _ =
        silta_relay::directory::check_bundle(&bundle, &caller, &principal, silta_fuzz::now_unix());
    // A caller with another certificate is never let through.
    assert!(
        silta_relay::directory::check_bundle(
            &bundle,
            &[0xa5; 32],
            &principal,
            silta_fuzz::now_unix()
        )
        .is_err()
    );
});

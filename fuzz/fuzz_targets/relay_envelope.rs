//! The relay's checks on an envelope a sender hands it (`mailbox::check_envelope`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use silta_proto::pb;

fuzz_target!(|data: &[u8]| {
    let Ok(env) = pb::Envelope::decode(data) else {
        return;
    };
    let sender: silta_certs::Principal = silta_fuzz::SENDER.parse().expect("principal");
    let limits = silta_relay::config::LimitsConfig::default();
    if let Ok(checked) = silta_relay::mailbox::check_envelope(&env, &limits, &sender) {
        assert!(!checked.recipients.is_empty());
        assert!(!checked.recipients.contains(&sender));
        assert!(env.ciphertext.len() as u64 <= limits.max_ciphertext_bytes);
    }
});

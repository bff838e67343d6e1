//! Opening a delivered message as the receiving device (`seal::open`): age header and payload,
//! sealed message, signature, envelope binding, payload rules. The digest is set to match the
//! ciphertext (the relay refuses any other), so mutations reach the age parser.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use silta_proto::pb;

fuzz_target!(|data: &[u8]| {
    let Ok(mut delivered) = pb::DeliveredEnvelope::decode(data) else {
        return;
    };
    if let Some(env) = delivered.envelope.as_mut() {
        env.ciphertext_sha256 = silta_client::seal::sha256(&env.ciphertext).to_vec();
    }
    let me = delivered
        .envelope
        .as_ref()
        .and_then(|e| e.recipients.first())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| silta_fuzz::ME.parse().expect("principal"));
    let _ = silta_client::seal::open(&delivered, &me, silta_fuzz::recipient_keys(), |p, d| {
        silta_fuzz::sender_bundle(p, d)
    });
});

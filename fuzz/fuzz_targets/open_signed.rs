//! Opening a message whose signed payload is the input: the target signs it with the sending
//! device's key, seals it to the receiving device and delivers it in an envelope that agrees
//! with what it says, so every check after the signature (`seal::open`: version, sender,
//! recipients, envelope binding, `payload::validate_on`) sees fuzzed content.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use silta_proto::pb::{
    self,
    payload::{SealedMessage, SignedPayload},
};

fuzz_target!(|data: &[u8]| {
    let signed = SignedPayload::decode(data).unwrap_or_default();
    let keys = silta_fuzz::sender_keys();
    // Signed as the sender of the version it decodes to would (format 2: SHA-256, else SHA-512).
    let (algorithm, context) = if signed.version == 2 {
        (
            &ring::digest::SHA256,
            silta_proto::context::SIGNED_PAYLOAD_SHA256,
        )
    } else {
        (&ring::digest::SHA512, silta_proto::context::SIGNED_PAYLOAD)
    };
    let digest = ring::digest::digest(algorithm, data);
    let signature = keys.sign(context, digest.as_ref());
    let sealed = SealedMessage {
        signed_payload: data.to_vec(),
        signature: signature.to_vec(),
    }
    .encode_to_vec();
    let to: age::x25519::Recipient = silta_fuzz::recipient_keys()
        .age_recipient()
        .parse()
        .expect("recipient");
    let Ok(ciphertext) = silta_client::seal::encrypt(&[to], &sealed) else {
        return;
    };
    let envelope = pb::Envelope {
        message_id: signed.message_id.clone(),
        case_ref: signed.case_ref.clone(),
        kind: signed.kind,
        urgency: signed.urgency,
        legal_basis: signed.legal_basis,
        recipients: signed.recipients.clone(),
        created_at: signed.created_at,
        ciphertext_sha256: silta_client::seal::sha256(&ciphertext).to_vec(),
        ciphertext: ciphertext.into(),
        in_reply_to: signed.in_reply_to.clone(),
        attachment_sha256: Vec::new(),
        resend_of: Vec::new(),
    };
    let delivered = pb::DeliveredEnvelope {
        envelope: Some(envelope),
        sender: signed.sender.clone(),
        ..Default::default()
    };
    let me = signed
        .recipients
        .first()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| silta_fuzz::ME.parse().expect("principal"));
    let _ = silta_client::seal::open(&delivered, &me, silta_fuzz::recipient_keys(), |p, d| {
        silta_fuzz::sender_bundle(p, d)
    });
});

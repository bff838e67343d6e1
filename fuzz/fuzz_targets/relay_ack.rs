//! The relay's checks on an acknowledgement or rejection (`mailbox::check_ack`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use silta_proto::pb;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = pb::AckRequest::decode(data) else {
        return;
    };
    if silta_relay::mailbox::check_ack(&req).is_ok()
        && let Some(pb::ack_request::Target::Reject(r)) = &req.target
    {
        assert!(r.detail.len() <= silta_relay::mailbox::MAX_DETAIL_LEN);
        assert!(!r.detail.chars().any(char::is_control));
    }
});

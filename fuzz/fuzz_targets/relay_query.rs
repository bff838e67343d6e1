//! The relay's checks on an audit query: the stated purpose and the filter
//! (`audit::Purpose::check`, `audit::check_filter`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use silta_proto::pb;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = pb::QueryRequest::decode(data) else {
        return;
    };
    let _ = silta_relay::audit::Purpose::check(req.purpose_code, &req.purpose);
    let _ = silta_relay::audit::check_filter(&req.filter.unwrap_or_default());
});

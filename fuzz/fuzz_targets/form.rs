//! The daemon's reader of form files in its outbox (`form::read_envelope_form`), as TOML and as
//! JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = silta_client::form::read_envelope_form(text, false);
    let _ = silta_client::form::read_envelope_form(text, true);
});

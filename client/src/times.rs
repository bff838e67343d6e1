//! Times as text and numbers: RFC 3339 (UTC, whole seconds), the one formatter of the crate and
//! of the `silta` program, and Unix milliseconds for stored deadlines.

use std::time::SystemTime;

/// A protobuf timestamp as RFC 3339 (UTC, whole seconds), or empty.
pub fn rfc3339(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Seconds since the Unix epoch as RFC 3339 (UTC), or empty if out of range.
pub fn rfc3339_unix(seconds: i64) -> String {
    rfc3339(Some(&prost_types::Timestamp { seconds, nanos: 0 }))
}

/// Now, as RFC 3339 (UTC, whole seconds).
pub fn now_rfc3339() -> String {
    rfc3339(Some(&prost_types::Timestamp::from(SystemTime::now())))
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_whole_seconds_in_utc() {
        assert_eq!(rfc3339_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(Some(&prost_types::Timestamp {
                seconds: 1_780_000_000,
                nanos: 999_999_999
            })),
            "2026-05-28T20:26:40Z"
        );
        assert_eq!(rfc3339(None), "");
        assert_eq!(rfc3339_unix(i64::MAX), "");
        let now = now_rfc3339();
        assert!(now.ends_with('Z') && !now.contains('.'), "{now}");
    }

    #[test]
    fn unix_ms_is_zero_before_the_epoch() {
        let before = SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(1);
        assert_eq!(unix_ms(before), 0);
        let after = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1234);
        assert_eq!(unix_ms(after), 1234);
    }
}

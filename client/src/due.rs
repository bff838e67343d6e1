//! What is due, from the messages themselves (`silta inbox due`, the daemon's notifications).
//!
//! - an information request's `deadline`, until an information response replying to it is kept
//!   here (sent or received);
//! - the written referral after an emergency referral confirmation
//!   (`written_referral_deadline`), until a referral in that case is kept here;
//! - the review date of the latest agreed service agreement of each case;
//! - confirmed meetings (the slot's start), until they are over or cancelled;
//! - urgent and emergency messages received and not acknowledged, due `urgent_unacked` after
//!   they were received.
//!
//! Content-free where possible: an item names the kind, the case, the message and the time; the
//! only text from a message is its own deadline field.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::record::{MessageRecord, RecordState};

/// One thing that is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DueItem {
    /// What is due: `information-response`, `written-referral`, `agreement-review`, `meeting`,
    /// `acknowledgement`.
    pub what: &'static str,
    /// The kind of the message it comes from.
    pub kind: String,
    /// The case (32 hex digits), or empty.
    pub case: String,
    /// The message it comes from.
    pub message_id: String,
    /// Urgency of that message.
    pub urgency: String,
    /// When: a date (`YYYY-MM-DD`, due by the end of that day, UTC) or a time (RFC 3339).
    pub due: String,
    /// Unix seconds it is overdue from (for sorting).
    #[serde(skip)]
    pub due_at: i64,
    /// Past its time.
    pub overdue: bool,
}

/// The items due among `records` as of `now`, soonest first. `urgent_unacked`: how long an
/// urgent or emergency message received may wait for an acknowledgement (none: not counted).
pub fn due_items(
    records: &[MessageRecord],
    now: SystemTime,
    urgent_unacked: Option<Duration>,
) -> Vec<DueItem> {
    let now_s = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let answered = |id: &crate::ids::MessageId, kind: &str| {
        records
            .iter()
            .any(|r| r.kind == kind && r.in_reply_to.as_ref() == Some(id))
    };
    let mut out = Vec::new();
    let mut item = |what: &'static str, r: &MessageRecord, due: String, due_at: i64| {
        out.push(DueItem {
            what,
            kind: r.kind.clone(),
            case: if r.case.is_none() {
                String::new()
            } else {
                hex::encode(r.case.0)
            },
            message_id: r.message_id.to_string(),
            urgency: r.urgency.clone(),
            due,
            due_at,
            overdue: now_s >= due_at,
        });
    };
    // The latest agreed version of each case's service agreement.
    let mut agreed: std::collections::BTreeMap<[u8; 16], (u64, &MessageRecord)> =
        Default::default();
    for r in records {
        let body = &r.payload;
        match r.kind.as_str() {
            "information-request" => {
                let deadline = text(&body["information_request"]["deadline"]);
                if let Some(at) = end_of_day(deadline)
                    && !answered(&r.message_id, "information-response")
                {
                    item("information-response", r, deadline.to_owned(), at);
                }
            }
            "emergency-referral-confirmation" => {
                let deadline =
                    text(&body["emergency_referral_confirmation"]["written_referral_deadline"]);
                let referred = records
                    .iter()
                    .any(|o| o.kind == "referral" && !r.case.is_none() && o.case == r.case);
                if let Some(at) = end_of_day(deadline)
                    && !referred
                {
                    item("written-referral", r, deadline.to_owned(), at);
                }
            }
            "service-agreement" => {
                let a = &body["service_agreement"];
                if text(&a["status"]) == "AGREEMENT_STATUS_AGREED" {
                    let v = a["version"].as_u64().unwrap_or(0);
                    let e = agreed.entry(r.case.0).or_insert((v, r));
                    if v >= e.0 {
                        *e = (v, r);
                    }
                }
            }
            "meeting-confirmation" => {
                let slot = &body["meeting_confirmation"]["slot"];
                let start = text(&slot["start"]);
                let minutes = slot["duration_minutes"].as_i64().unwrap_or(60);
                // A cancellation that answers this confirmation (or the proposal it confirms)
                // cancels it; one that answers nothing cancels the case's confirmations before
                // it in the relay's log (never by message id: a UUIDv7 carries the sender's
                // clock). One answering another message cancels that one, not this.
                let cancelled = records.iter().any(|o| {
                    o.kind == "meeting-cancellation"
                        && !r.case.is_none()
                        && o.case == r.case
                        && match o.in_reply_to {
                            Some(x) => x == r.message_id || Some(x) == r.in_reply_to,
                            None => r.log_index > 0 && o.log_index > r.log_index,
                        }
                });
                if let Ok(t) = time::OffsetDateTime::parse(
                    start,
                    &time::format_description::well_known::Rfc3339,
                ) {
                    let at = t.unix_timestamp();
                    if !cancelled && at + minutes * 60 > now_s {
                        item("meeting", r, start.to_owned(), at);
                    }
                }
            }
            _ => {}
        }
        if let Some(wait) = urgent_unacked
            && r.is_received()
            && r.state == Some(RecordState::New)
            && matches!(r.urgency.as_str(), "urgent" | "emergency")
            && let Some(received) = r.received_at.as_deref().and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
        {
            let at = received.unix_timestamp() + wait.as_secs() as i64;
            item("acknowledgement", r, crate::times::rfc3339_unix(at), at);
        }
    }
    for (_, r) in agreed.into_values() {
        let review = text(&r.payload["service_agreement"]["review_date"]);
        if let Some(at) = end_of_day(review) {
            item("agreement-review", r, review.to_owned(), at);
        }
    }
    out.sort_by(|a, b| (a.due_at, &a.message_id).cmp(&(b.due_at, &b.message_id)));
    out
}

fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The end of day `date` (UTC), as Unix seconds: a date-only deadline is met through that day.
fn end_of_day(date: &str) -> Option<i64> {
    let d = crate::payload::parse_date(date).ok()?;
    Some(d.midnight().assume_utc().unix_timestamp() + 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: serde_json::Value) -> MessageRecord {
        serde_json::from_value(json).unwrap()
    }

    fn base(id: &str, kind: &str, payload: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "accepted_at": "2026-11-20T09:00:01Z", "case": "00112233445566778899aabbccddeeff",
            "created_at": "2026-11-20T09:00:00Z", "direction": "received",
            "from": "assistance/nas", "kind": kind, "legal_basis": "consent", "log_index": 1, "in_reply_to": "",
            "message_id": id, "payload": payload, "received_at": "2026-11-20T09:00:02Z",
            "state": "new", "to": ["centre/a"], "urgency": "normal",
        })
    }

    #[test]
    fn a_request_is_due_until_answered_and_urgent_ones_wait_for_acknowledgement() {
        let req = "0190c1d2-0000-7000-8000-000000000001";
        let mut recs = vec![record(base(
            req,
            "information-request",
            serde_json::json!({"information_request": {"deadline": "2026-11-25"}}),
        ))];
        let mut urgent = base(
            "0190c1d2-0000-7000-8000-000000000002",
            "referral",
            serde_json::json!({}),
        );
        urgent["urgency"] = "urgent".into();
        recs.push(record(urgent));
        let at = |s: &str| {
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .unwrap()
                        .unix_timestamp() as u64,
                )
        };
        let wait = Some(Duration::from_secs(30 * 60));
        let items = due_items(&recs, at("2026-11-20T09:10:00Z"), wait);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].what, "acknowledgement");
        assert!(!items[0].overdue);
        assert_eq!(items[1].due, "2026-11-25");
        let items = due_items(&recs, at("2026-11-26T00:00:00Z"), wait);
        assert!(items.iter().all(|i| i.overdue));
        // The 25th is still on time that day.
        let items = due_items(&recs, at("2026-11-25T23:00:00Z"), None);
        assert_eq!(items.len(), 1);
        assert!(!items[0].overdue);
        let mut answer = base(
            "0190c1d2-0000-7000-8000-000000000003",
            "information-response",
            serde_json::json!({}),
        );
        answer["in_reply_to"] = req.into();
        answer["direction"] = "sent".into();
        recs.push(record(answer));
        assert!(due_items(&recs, at("2026-11-20T09:10:00Z"), None).is_empty());
    }

    #[test]
    fn a_meeting_is_cancelled_by_what_answers_it_or_comes_after_it_in_the_log() {
        let slot = serde_json::json!({"meeting_confirmation": {"slot": {"start": "2026-12-01T10:00:00Z", "duration_minutes": 60}}});
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000); // 2025-11-24
        // The confirmation's id sorts AFTER the cancellation's (a slow clock at the sender).
        let conf = "0190c1d2-0000-7000-8000-0000000000f0";
        let mut c = base(conf, "meeting-confirmation", slot.clone());
        c["log_index"] = 10.into();
        let cancel = |id: &str, log_index: u64, in_reply_to: &str| {
            let mut x = base(id, "meeting-cancellation", serde_json::json!({}));
            x["log_index"] = log_index.into();
            x["in_reply_to"] = in_reply_to.into();
            record(x)
        };
        let early_id = "0190c1d2-0000-7000-8000-000000000001";
        assert_eq!(due_items(&[record(c.clone())], now, None).len(), 1);
        // Answering it: cancelled, whatever the ids.
        let recs = [record(c.clone()), cancel(early_id, 11, conf)];
        assert!(due_items(&recs, now, None).is_empty());
        // Answering nothing, later in the log: cancelled (the old rule compared ids: kept).
        let recs = [record(c.clone()), cancel(early_id, 11, "")];
        assert!(due_items(&recs, now, None).is_empty());
        // Earlier in the log (cancelled an earlier meeting), or answering another message: kept.
        let recs = [
            record(c.clone()),
            cancel("0190c1d2-0000-7000-8000-0000000000ff", 9, ""),
        ];
        assert_eq!(due_items(&recs, now, None).len(), 1);
        let other = "0190c1d2-0000-7000-8000-0000000000aa";
        let recs = [
            record(c),
            cancel("0190c1d2-0000-7000-8000-0000000000ff", 11, other),
        ];
        assert_eq!(due_items(&recs, now, None).len(), 1);
    }
}

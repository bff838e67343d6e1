//! Cases at the relay: who takes part in a case, learned from the envelopes it accepts.
//!
//! Metadata only: the relay never decodes a payload. What it uses is what every envelope shows
//! and the delivery log already records for ever: the case reference, the kind, the legal basis,
//! the sender (from its certificate) and the recipients. The record of a case
//! ([`CaseRecord`], tree `caseref_case`) is written in the same transaction as the ACCEPTED
//! event of the message that changed it, so the two are never apart.
//!
//! # Rules (checked by [`decide`] on `Mailbox.Send` with a non-zero case reference)
//! 1. A case the relay does not know: the sender and the recipients become its participants.
//! 2. A known case: the sender must take part in it now, and so must every recipient
//!    (`PERMISSION_DENIED` otherwise; a principal that left is told it left by a CaseTransfer).
//! 3. A `CaseTransfer` from the case's Assistance System participant brings in the recipients not
//!    yet taking part (at least one, else `FAILED_PRECONDITION`): after it they are the case's
//!    centres, and every centre that took part before has left. A centre that left and is named
//!    again by a later transfer takes part again.
//! 4. A `ConsentWithdrawal` marks the case's consent withdrawn; a later `ConsentRecord` (fresh
//!    consent) clears it. While it is withdrawn every message on legal basis `consent` is
//!    refused (`FAILED_PRECONDITION`), except a consent record (which restores it) and a further
//!    consent withdrawal (a scope change). Bases that need no consent (statutory information
//!    right, child-welfare duty, acute danger) stay allowed.
//!
//! After a transfer, [`withdraw`] reports what still waits for the centres that left as
//! UNDELIVERABLE (CASE_MOVED), in batches right after the transfer's transaction, resumable
//! ([`CaseRecord::withdrawing`]); until then [`CaseRecord::withheld_from`] keeps it from them.
//!
//! A zero case reference binds nothing; only the kinds that come before a case may carry one
//! (`silta_proto::policy::needs_case`: the anonymous consultation, its reply, a first written
//! referral and its consent record). A refused send stores no message; it is one SEND_REFUSED
//! event, at most one per sender and case per [`REFUSAL_EVENT_INTERVAL_S`] ([`note_refusal`])
//! and `limits.refusal_events_per_hour` per sender, so a participant cannot grow the
//! never-erased log without limit. DESIGN.md, "Cases at the relay", says why this metadata is
//! acceptable at the relay and how long it is kept.

use prost_types::Timestamp;
use silta_certs::{Principal, Role};
use silta_proto::pb;

use crate::{
    error::RelayError,
    store::{Store, StoreError},
};

/// At most one SEND_REFUSED event per sender and case in this many seconds.
pub const REFUSAL_EVENT_INTERVAL_S: i64 = 60;

/// What the relay knows about a case.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CaseRecord {
    /// Every principal that ever took part, in the order they first joined.
    #[prost(message, repeated, tag = "1")]
    pub members: Vec<Member>,
    /// A consent withdrawal was sent in the case and no consent record since.
    #[prost(bool, tag = "2")]
    pub consent_withdrawn: bool,
    /// When the consent state last changed (a withdrawal, or the consent record after one).
    #[prost(message, optional, tag = "3")]
    pub consent_changed_at: Option<Timestamp>,
    /// The first message in the case.
    #[prost(message, optional, tag = "4")]
    pub created_at: Option<Timestamp>,
    /// The last change of this record.
    #[prost(message, optional, tag = "5")]
    pub updated_at: Option<Timestamp>,
    /// Per sender, when its last SEND_REFUSED event in this case was written.
    #[prost(message, repeated, tag = "6")]
    pub refusals: Vec<RefusalMark>,
    /// Centres that left by a CaseTransfer whose waiting copies of the case's messages are not
    /// all reported UNDELIVERABLE (CASE_MOVED) yet: set with the move, cleared by [`withdraw`]
    /// in the transaction of its last batch (so a crash in between resumes at the next start).
    #[prost(string, repeated, tag = "7")]
    pub withdrawing: Vec<String>,
}

/// One principal of a case.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Member {
    /// `<role>/<id>`.
    #[prost(string, tag = "1")]
    pub principal: String,
    /// When it (last) joined.
    #[prost(message, optional, tag = "2")]
    pub joined_at: Option<Timestamp>,
    /// When a CaseTransfer moved the case away from it; absent while it takes part.
    #[prost(message, optional, tag = "3")]
    pub left_at: Option<Timestamp>,
}

/// When a sender's last SEND_REFUSED event in a case was written.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RefusalMark {
    /// The refused sender.
    #[prost(string, tag = "1")]
    pub principal: String,
    /// Unix seconds.
    #[prost(int64, tag = "2")]
    pub at: i64,
}

impl CaseRecord {
    fn member(&self, principal: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.principal == principal)
    }

    /// The principals taking part now.
    pub fn current(&self) -> impl Iterator<Item = &str> {
        self.members
            .iter()
            .filter(|m| m.left_at.is_none())
            .map(|m| m.principal.as_str())
    }

    /// The principals that left the case.
    pub fn left(&self) -> impl Iterator<Item = &str> {
        self.members
            .iter()
            .filter(|m| m.left_at.is_some())
            .map(|m| m.principal.as_str())
    }

    /// Is a message of `kind` in this case withheld from `principal`? Yes if the principal left
    /// the case by a CaseTransfer, except a CaseTransfer itself: that is the Assistance System's
    /// notice to the centres it names, the one leaving included.
    pub fn withheld_from(&self, principal: &str, kind: i32) -> bool {
        kind != pb::MessageKind::CaseTransfer as i32
            && self.member(principal).is_some_and(|m| m.left_at.is_some())
    }
}

/// A send in a case, as the relay sees it.
#[derive(Debug, Clone, Copy)]
pub struct CaseSend<'a> {
    /// The case reference (16 bytes, not zero).
    pub case_ref: &'a [u8],
    /// The sender, from its certificate.
    pub sender: &'a Principal,
    /// The envelope's kind.
    pub kind: pb::MessageKind,
    /// The envelope's legal basis.
    pub basis: pb::LegalBasis,
    /// The envelope's recipients.
    pub recipients: &'a [Principal],
}

/// What an accepted send changes in its case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// The case is new.
    pub created: bool,
    /// Principals that join (all of them for a new case; the receiving centres of a transfer).
    pub joined: Vec<String>,
    /// Centres that leave (a transfer).
    pub left: Vec<String>,
    /// `Some(true)`: consent withdrawn; `Some(false)`: consent given again.
    pub consent_withdrawn: Option<bool>,
}

impl Change {
    /// A CaseTransfer moved the case (a CASE_MOVED event is due).
    pub fn moved(&self) -> bool {
        !self.left.is_empty() || (!self.created && !self.joined.is_empty())
    }
}

/// Why a send in a case is refused.
#[derive(Debug)]
pub struct Refusal {
    /// The answer to the sender.
    pub error: RelayError,
    /// The rule, for the SEND_REFUSED event's detail (short, content-free).
    pub rule: &'static str,
}

fn case_str(case_ref: &[u8]) -> String {
    hex::encode(case_ref)
}

fn kind_str(kind: pb::MessageKind) -> String {
    kind.as_str_name()
        .trim_start_matches("MESSAGE_KIND_")
        .to_ascii_lowercase()
        .replace('_', "-")
}

fn consent_effect(kind: pb::MessageKind) -> Option<bool> {
    match kind {
        pb::MessageKind::ConsentWithdrawal => Some(true),
        pb::MessageKind::ConsentRecord => Some(false),
        _ => None,
    }
}

/// Decides a send in a case the relay knows as `record` (`None`: not yet). Pure: the caller
/// writes the change ([`apply`]) with the ACCEPTED event, or the refusal as a SEND_REFUSED event.
pub fn decide(record: Option<&CaseRecord>, send: &CaseSend<'_>) -> Result<Change, Refusal> {
    let case = case_str(send.case_ref);
    let Some(record) = record else {
        let mut joined = vec![send.sender.to_string()];
        joined.extend(send.recipients.iter().map(|r| r.to_string()));
        return Ok(Change {
            created: true,
            joined,
            left: Vec::new(),
            consent_withdrawn: consent_effect(send.kind),
        });
    };
    let sender = send.sender.to_string();
    match record.member(&sender) {
        None => {
            return Err(Refusal {
                error: RelayError::PermissionDenied(format!(
                    "{sender} does not take part in case {case}: only the case's participants send in it (a centre joins a case by the Assistance System's CaseTransfer)"
                )),
                rule: "sender does not take part in the case",
            });
        }
        Some(m) if m.left_at.is_some() => {
            return Err(Refusal {
                error: RelayError::PermissionDenied(format!(
                    "{sender} left case {case} by a CaseTransfer: it no longer sends or receives in this case"
                )),
                rule: "sender left the case by a CaseTransfer",
            });
        }
        Some(_) => {}
    }
    let transfer =
        send.kind == pb::MessageKind::CaseTransfer && send.sender.role() == Role::Assistance;
    let mut joined = Vec::new();
    for r in send.recipients {
        let name = r.to_string();
        match record.member(&name) {
            Some(m) if m.left_at.is_none() => {}
            _ if transfer => joined.push(name),
            Some(_) => {
                return Err(Refusal {
                    error: RelayError::PermissionDenied(format!(
                        "{name} left case {case} by a CaseTransfer: it no longer receives the case's messages"
                    )),
                    rule: "recipient left the case by a CaseTransfer",
                });
            }
            None => {
                return Err(Refusal {
                    error: RelayError::PermissionDenied(format!(
                        "{name} does not take part in case {case}: send only to the case's participants (a centre joins a case by the Assistance System's CaseTransfer)"
                    )),
                    rule: "recipient does not take part in the case",
                });
            }
        }
    }
    let mut left = Vec::new();
    if transfer {
        if joined.is_empty() {
            return Err(Refusal {
                error: RelayError::FailedPrecondition(format!(
                    "a case-transfer must name at least one centre not yet in case {case} (the receiving centre); every recipient already takes part in it"
                )),
                rule: "case-transfer without a new centre",
            });
        }
        left = record
            .current()
            .filter(|p| p.starts_with("centre/") && !joined.iter().any(|j| j == p))
            .map(str::to_owned)
            .collect();
    }
    if record.consent_withdrawn
        && send.basis == pb::LegalBasis::Consent
        && consent_effect(send.kind).is_none()
    {
        return Err(Refusal {
            error: RelayError::FailedPrecondition(format!(
                "consent was withdrawn in case {case}: a {} on legal basis consent is refused until a new consent-record is sent in the case (or use a basis that needs no consent, where the law gives one)",
                kind_str(send.kind)
            )),
            rule: "consent withdrawn in the case",
        });
    }
    Ok(Change {
        created: false,
        joined,
        left,
        consent_withdrawn: consent_effect(send.kind),
    })
}

/// The record after `change`, at `now`.
pub fn apply(record: Option<CaseRecord>, change: &Change, now: Timestamp) -> CaseRecord {
    let mut record = record.unwrap_or_else(|| CaseRecord {
        created_at: Some(now),
        ..Default::default()
    });
    for p in &change.left {
        if let Some(m) = record.members.iter_mut().find(|m| &m.principal == p) {
            m.left_at = Some(now);
            if !record.withdrawing.contains(p) {
                record.withdrawing.push(p.clone());
            }
        }
    }
    for p in &change.joined {
        // Back in the case: what still waits for it is its own again.
        record.withdrawing.retain(|w| w != p);
        match record.members.iter_mut().find(|m| &m.principal == p) {
            Some(m) => {
                m.joined_at = Some(now);
                m.left_at = None;
            }
            None => record.members.push(Member {
                principal: p.clone(),
                joined_at: Some(now),
                left_at: None,
            }),
        }
    }
    if let Some(withdrawn) = change.consent_withdrawn
        && withdrawn != record.consent_withdrawn
    {
        record.consent_withdrawn = withdrawn;
        record.consent_changed_at = Some(now);
    }
    record.updated_at = Some(now);
    record
}

/// Notes a refusal of `sender` at `now` (unix seconds) in `record`: true if a SEND_REFUSED event
/// is due (none for this sender in the last [`REFUSAL_EVENT_INTERVAL_S`]), and then remembers it.
pub fn note_refusal(record: &mut CaseRecord, sender: &str, now: i64) -> bool {
    match record.refusals.iter_mut().find(|m| m.principal == sender) {
        Some(mark) if now.saturating_sub(mark.at) < REFUSAL_EVENT_INTERVAL_S => false,
        Some(mark) => {
            mark.at = now;
            true
        }
        None => {
            record.refusals.push(RefusalMark {
                principal: sender.to_owned(),
                at: now,
            });
            true
        }
    }
}

/// The SEND_REFUSED event for a refused send (metadata only).
pub fn refused_event(send: &CaseSend<'_>, rule: &str, time: Timestamp) -> pb::Event {
    pb::Event {
        r#type: pb::EventType::SendRefused.into(),
        time: Some(time),
        actor: send.sender.to_string(),
        case_ref: send.case_ref.to_vec(),
        kind: send.kind.into(),
        sender: send.sender.to_string(),
        recipients: send.recipients.iter().map(|r| r.to_string()).collect(),
        legal_basis: send.basis.into(),
        detail: rule.to_owned(),
        ..Default::default()
    }
}

/// The CASE_MOVED event for an accepted CaseTransfer `message_id` that made `change`.
pub fn moved_event(
    send: &CaseSend<'_>,
    message_id: &[u8],
    record: &CaseRecord,
    change: &Change,
    time: Timestamp,
) -> pb::Event {
    let left = if change.left.is_empty() {
        "none".to_owned()
    } else {
        change.left.join(", ")
    };
    pb::Event {
        r#type: pb::EventType::CaseMoved.into(),
        time: Some(time),
        actor: send.sender.to_string(),
        message_id: message_id.to_vec(),
        case_ref: send.case_ref.to_vec(),
        kind: send.kind.into(),
        sender: send.sender.to_string(),
        recipients: record
            .current()
            .filter(|p| p.starts_with("centre/"))
            .map(str::to_owned)
            .collect(),
        detail: format!("left the case: {left}"),
        ..Default::default()
    }
}

/// The case records the delivery log's ACCEPTED `events` (in log order) give, by the same rules
/// as [`decide`] and [`apply`]: for a database written before case records existed. A send the
/// rules would refuse now (there were none then) changes nothing: a centre that left by a
/// CaseTransfer and wrote in the case afterwards does not come back by it.
pub fn replay<E>(
    events: impl Iterator<Item = Result<pb::Event, E>>,
) -> Result<std::collections::BTreeMap<Vec<u8>, CaseRecord>, E> {
    let mut cases: std::collections::BTreeMap<Vec<u8>, CaseRecord> = Default::default();
    for event in events {
        let event = event?;
        if event.r#type != pb::EventType::Accepted as i32
            || event.case_ref.len() != 16
            || event.case_ref.iter().all(|b| *b == 0)
        {
            continue;
        }
        let (Ok(sender), Ok(recipients)) = (
            event.sender.parse::<Principal>(),
            event
                .recipients
                .iter()
                .map(|r| r.parse::<Principal>())
                .collect::<Result<Vec<_>, _>>(),
        ) else {
            continue;
        };
        let send = CaseSend {
            case_ref: &event.case_ref,
            sender: &sender,
            kind: pb::MessageKind::try_from(event.kind).unwrap_or_default(),
            basis: pb::LegalBasis::try_from(event.legal_basis).unwrap_or_default(),
            recipients: &recipients,
        };
        let record = cases.get(&event.case_ref);
        if let Ok(change) = decide(record, &send) {
            let updated = apply(record.cloned(), &change, event.time.unwrap_or_default());
            cases.insert(event.case_ref.clone(), updated);
        }
    }
    Ok(cases)
}

/// The messages in case `case_ref` waiting for `principal` (PENDING or DELIVERED, not yet
/// acknowledged or rejected), oldest first: what a CaseTransfer leaves in the mailbox of a centre
/// that left. The hook for reporting them UNDELIVERABLE with reason CASE_MOVED.
pub fn pending_in_case(
    store: &Store,
    case_ref: &[u8],
    principal: &Principal,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let name = principal.to_string();
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let items = store.mailbox_items(principal, after, u64::MAX - 1, 256)?;
        let Some((last, _)) = items.last() else {
            break;
        };
        after = *last;
        for (_, item) in items {
            if item.message_id.is_empty() {
                continue;
            }
            let Some(meta) = store.message(&item.message_id)? else {
                continue;
            };
            if meta.envelope.as_ref().map(|e| e.case_ref.as_slice()) != Some(case_ref) {
                continue;
            }
            let waiting = store
                .recipient_states(&item.message_id)?
                .into_iter()
                .any(|(r, s)| {
                    r == name
                        && matches!(
                            pb::DeliveryState::try_from(s.state),
                            Ok(pb::DeliveryState::Pending | pb::DeliveryState::Delivered)
                        )
                });
            if waiting {
                out.push(item.message_id);
            }
        }
    }
    Ok(out)
}

/// Copies reported UNDELIVERABLE per transaction by [`withdraw`].
pub const WITHDRAW_BATCH: usize = 64;

/// Finishes what a CaseTransfer started in case `case_ref`: for every centre in
/// [`CaseRecord::withdrawing`], each of its waiting copies of the case's messages (PENDING or
/// DELIVERED, not a CaseTransfer) becomes UNDELIVERABLE with reason CASE_MOVED through
/// [`make_undeliverable`](crate::retention::make_undeliverable) (event, status item to the
/// sender, out of the mailbox, counters, purge scheduled), at most [`WITHDRAW_BATCH`] per
/// transaction. The transaction of a centre's last batch takes it off `withdrawing`, so a crash
/// half-way leaves the mark and the next call (at start, or after the next send in the case)
/// finishes; copies already final are skipped. A centre that joined the case again meanwhile is
/// left alone. Returns the status items pushed, `(sender, seq)`, to wake their subscriptions.
pub(crate) async fn withdraw(
    store: &Store,
    case_ref: &[u8],
    retention: &crate::config::RetentionConfig,
) -> Result<Vec<(String, u64)>, RelayError> {
    let Some(record) = store.case(case_ref)? else {
        return Ok(Vec::new());
    };
    let mut pushed = Vec::new();
    for name in &record.withdrawing {
        let mut ids = Vec::new();
        if let Ok(principal) = name.parse::<Principal>() {
            for id in pending_in_case(store, case_ref, &principal)? {
                let kind = store
                    .message(&id)?
                    .and_then(|m| m.envelope)
                    .map_or(0, |e| e.kind);
                if record.withheld_from(name, kind) {
                    ids.push(id);
                }
            }
        }
        let mut batches: Vec<Vec<Vec<u8>>> =
            ids.chunks(WITHDRAW_BATCH).map(<[_]>::to_vec).collect();
        if batches.is_empty() {
            // Nothing waits: one transaction still clears the mark.
            batches.push(Vec::new());
        }
        let last = batches.len() - 1;
        let mut reported = 0usize;
        for (i, batch) in batches.into_iter().enumerate() {
            let (case_ref, name, retention) = (case_ref.to_vec(), name.clone(), retention.clone());
            let done = store
                .write(move |trees| {
                    trees.transaction(|tx| {
                        let Some(mut case) = tx.case(&case_ref)? else {
                            return Ok(None);
                        };
                        if !case.withdrawing.contains(&name) {
                            return Ok(None);
                        }
                        let mut pushed = Vec::new();
                        for id in &batch {
                            pushed.extend(crate::retention::make_undeliverable(
                                tx,
                                id,
                                &name,
                                pb::UndeliverableReason::CaseMoved,
                                "",
                                &retention,
                            )?);
                        }
                        if i == last {
                            case.withdrawing.retain(|w| w != &name);
                            tx.put_case(&case_ref, &case)?;
                            if case.withdrawing.is_empty() {
                                tx.withdrawal_done(&case_ref)?;
                            }
                        }
                        Ok(Some(pushed))
                    })
                })
                .await?;
            let Some(done) = done else {
                break;
            };
            reported += done.len();
            pushed.extend(done);
        }
        if reported > 0 {
            tracing::info!(principal = %name, messages = reported, "case moved: waiting messages reported undeliverable to their senders (CASE_MOVED)");
        }
    }
    Ok(pushed)
}

/// The case references whose [`CaseRecord::withdrawing`] is not empty (a withdrawal cut short):
/// the cases marked in the store's withdrawal index whose record still says so.
pub fn unfinished_withdrawals(store: &Store) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut out = Vec::new();
    for case_ref in store.withdrawals_marked()? {
        // One record that does not decode must not keep the relay from starting: it is
        // skipped (and said); its withdrawal, if any, is finished at the next send in the case.
        let record = match store.case(&case_ref) {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            Err(StoreError::Corrupt { tree, detail }) => {
                tracing::error!(tree, detail, "a case record does not decode; skipped");
                continue;
            }
            Err(e) => return Err(e),
        };
        if !record.withdrawing.is_empty() {
            out.push(case_ref);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::{LegalBasis as B, MessageKind as K};

    const CASE: [u8; 16] = [7; 16];

    fn p(s: &str) -> Principal {
        s.parse().unwrap()
    }

    fn t(s: i64) -> Timestamp {
        Timestamp {
            seconds: s,
            nanos: 0,
        }
    }

    fn send(
        record: Option<&CaseRecord>,
        sender: &str,
        kind: K,
        basis: B,
        to: &[&str],
    ) -> Result<Change, Refusal> {
        let sender = p(sender);
        let recipients: Vec<Principal> = to.iter().map(|r| p(r)).collect();
        decide(
            record,
            &CaseSend {
                case_ref: &CASE,
                sender: &sender,
                kind,
                basis,
                recipients: &recipients,
            },
        )
    }

    /// Sends and applies; panics if refused.
    fn ok(record: Option<CaseRecord>, sender: &str, kind: K, to: &[&str], now: i64) -> CaseRecord {
        let change = send(record.as_ref(), sender, kind, B::Consent, to)
            .unwrap_or_else(|r| panic!("refused: {}", r.error));
        apply(record, &change, t(now))
    }

    fn code(r: Result<Change, Refusal>) -> tonic::Code {
        tonic::Status::from(r.unwrap_err().error).code()
    }

    #[test]
    fn a_new_case_takes_its_first_sender_and_recipients() {
        let rec = ok(None, "centre/a", K::Referral, &["assistance/nas"], 10);
        assert_eq!(
            rec.current().collect::<Vec<_>>(),
            ["centre/a", "assistance/nas"]
        );
        assert_eq!(rec.created_at, Some(t(10)));
        // Both may write in it.
        let rec = ok(
            Some(rec),
            "assistance/nas",
            K::InformationRequest,
            &["centre/a"],
            11,
        );
        assert_eq!(rec.updated_at, Some(t(11)));
        // Others may not, nor be written to.
        let outsider = send(
            Some(&rec),
            "centre/b",
            K::StatusUpdate,
            B::Consent,
            &["assistance/nas"],
        );
        assert_eq!(code(outsider), tonic::Code::PermissionDenied);
        let to_outsider = send(
            Some(&rec),
            "assistance/nas",
            K::StatusUpdate,
            B::Consent,
            &["centre/b"],
        );
        assert_eq!(code(to_outsider), tonic::Code::PermissionDenied);
    }

    #[test]
    fn a_transfer_moves_the_case_to_the_new_centre() {
        let rec = ok(None, "centre/a", K::Referral, &["assistance/nas"], 10);
        let change = send(
            Some(&rec),
            "assistance/nas",
            K::CaseTransfer,
            B::Consent,
            &["centre/a", "centre/b"],
        )
        .unwrap();
        assert_eq!(change.joined, ["centre/b"]);
        assert_eq!(change.left, ["centre/a"]);
        assert!(change.moved());
        let rec = apply(Some(rec), &change, t(20));
        assert_eq!(
            rec.current().collect::<Vec<_>>(),
            ["assistance/nas", "centre/b"]
        );
        assert_eq!(rec.left().collect::<Vec<_>>(), ["centre/a"]);
        let old = send(
            Some(&rec),
            "centre/a",
            K::StatusUpdate,
            B::Consent,
            &["assistance/nas"],
        );
        let e = old.unwrap_err();
        assert_eq!(e.rule, "sender left the case by a CaseTransfer");
        assert!(e.error.to_string().contains("left case"), "{}", e.error);
        let to_old = send(
            Some(&rec),
            "assistance/nas",
            K::StatusUpdate,
            B::Consent,
            &["centre/a"],
        );
        assert_eq!(code(to_old), tonic::Code::PermissionDenied);
        let rec = ok(
            Some(rec),
            "centre/b",
            K::StatusUpdate,
            &["assistance/nas"],
            21,
        );
        // A transfer back brings the old centre in again, and the other one leaves.
        let rec = ok(
            Some(rec),
            "assistance/nas",
            K::CaseTransfer,
            &["centre/a"],
            30,
        );
        assert_eq!(
            rec.current().collect::<Vec<_>>(),
            ["centre/a", "assistance/nas"]
        );
        assert_eq!(rec.left().collect::<Vec<_>>(), ["centre/b"]);
    }

    #[test]
    fn a_transfer_needs_a_new_centre() {
        let rec = ok(None, "centre/a", K::Referral, &["assistance/nas"], 10);
        let r = send(
            Some(&rec),
            "assistance/nas",
            K::CaseTransfer,
            B::Consent,
            &["centre/a"],
        );
        assert_eq!(code(r), tonic::Code::FailedPrecondition);
    }

    #[test]
    fn consent_withdrawn_stops_consent_based_sends_until_a_new_consent_record() {
        let rec = ok(None, "centre/a", K::Referral, &["assistance/nas"], 10);
        let rec = ok(
            Some(rec),
            "centre/a",
            K::ConsentWithdrawal,
            &["assistance/nas"],
            20,
        );
        assert!(rec.consent_withdrawn);
        assert_eq!(rec.consent_changed_at, Some(t(20)));
        for kind in [K::Referral, K::InformationResponse, K::StatusUpdate] {
            let r = send(
                Some(&rec),
                "centre/a",
                kind,
                B::Consent,
                &["assistance/nas"],
            );
            assert_eq!(code(r), tonic::Code::FailedPrecondition, "{kind:?}");
        }
        let r = send(
            Some(&rec),
            "assistance/nas",
            K::MeetingProposal,
            B::Consent,
            &["centre/a"],
        );
        assert_eq!(code(r), tonic::Code::FailedPrecondition);
        // Bases that need no consent stay allowed.
        for basis in [B::ChildWelfareDuty, B::AcuteDanger] {
            send(
                Some(&rec),
                "centre/a",
                K::Referral,
                basis,
                &["assistance/nas"],
            )
            .unwrap();
        }
        send(
            Some(&rec),
            "assistance/nas",
            K::InformationRequest,
            B::StatutoryInformationRight,
            &["centre/a"],
        )
        .unwrap();
        // A further withdrawal (a scope change) is allowed; a consent record restores.
        let rec = ok(
            Some(rec),
            "centre/a",
            K::ConsentWithdrawal,
            &["assistance/nas"],
            25,
        );
        assert_eq!(rec.consent_changed_at, Some(t(20)), "already withdrawn");
        let rec = ok(
            Some(rec),
            "centre/a",
            K::ConsentRecord,
            &["assistance/nas"],
            30,
        );
        assert!(!rec.consent_withdrawn);
        assert_eq!(rec.consent_changed_at, Some(t(30)));
        ok(Some(rec), "centre/a", K::Referral, &["assistance/nas"], 31);
    }

    #[test]
    fn the_log_of_an_older_database_gives_the_same_records() {
        let accepted = |sender: &str, kind: K, to: &[&str], s: i64| pb::Event {
            r#type: pb::EventType::Accepted.into(),
            time: Some(t(s)),
            case_ref: CASE.to_vec(),
            kind: kind.into(),
            legal_basis: B::Consent.into(),
            sender: sender.into(),
            recipients: to.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        };
        let events = [
            accepted("centre/a", K::Referral, &["assistance/nas"], 1),
            pb::Event {
                r#type: pb::EventType::Delivered.into(),
                case_ref: CASE.to_vec(),
                ..Default::default()
            },
            accepted(
                "assistance/nas",
                K::CaseTransfer,
                &["centre/a", "centre/b"],
                2,
            ),
            // Accepted before the rules existed: changes nothing now.
            accepted("centre/a", K::StatusUpdate, &["assistance/nas"], 3),
            accepted("centre/b", K::ConsentWithdrawal, &["assistance/nas"], 4),
            pb::Event {
                case_ref: vec![0; 16],
                ..accepted("centre/c", K::AnonymousConsultation, &["assistance/nas"], 5)
            },
        ];
        let cases = replay(events.into_iter().map(Ok::<_, ()>)).unwrap();
        assert_eq!(cases.len(), 1);
        let rec = &cases[CASE.as_slice()];
        assert_eq!(
            rec.current().collect::<Vec<_>>(),
            ["assistance/nas", "centre/b"]
        );
        assert_eq!(rec.left().collect::<Vec<_>>(), ["centre/a"]);
        assert!(rec.consent_withdrawn);
        assert_eq!(rec.created_at, Some(t(1)));
        assert_eq!(rec.updated_at, Some(t(4)));
    }

    #[test]
    fn refusal_events_are_bounded_per_sender_and_minute() {
        let mut rec = CaseRecord::default();
        assert!(note_refusal(&mut rec, "centre/a", 100));
        assert!(!note_refusal(&mut rec, "centre/a", 159));
        assert!(note_refusal(&mut rec, "centre/b", 159));
        assert!(note_refusal(&mut rec, "centre/a", 160));
        assert_eq!(rec.refusals.len(), 2);
    }
}

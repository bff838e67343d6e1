//! Retention on the client: closing cases, and deleting this installation's copies of messages
//! once they are no longer needed here.
//!
//! Silta's copies are transit copies: the case system of record (the centre's case management,
//! the Assistance System's register) keeps what the law says. What this installation holds in
//! plaintext, or can open, is deleted by the rules of `[retention]`
//! ([`crate::config::RetentionConfig`]):
//!
//! - a case closed here (`silta case close`) loses its messages `closed_case_days` after the
//!   close, or after the message arrived if that was later (a late message of a closed case is
//!   kept for a whole period too). The case's messages are those under its reference and the
//!   messages without a case that they answer (a referral made before the case existed). A
//!   message without a case answered in several cases goes only once every one of them is
//!   closed and its period has passed (counted from the last close);
//! - a message without a case that no cased message answers goes `uncased_max_days` after it
//!   arrived (or was sent). One that a case's message answers never goes by this rule: an open
//!   case keeps it.
//!
//! A period of 0 days means at the first sweep once the message may go (see below).
//!
//! Where: the inbox store (state tree `msgid_record`), kept sealed copies (the outbox's tree
//! `outbox_key_record`), and for a centre running the daemon its `inbox/` and `sent/` files and
//! its queue's job records. Never deleted: a received message no person acknowledged yet (one
//! the relay expired before a person acknowledged it is final: [`RecordState::ExpiredAtRelay`]),
//! and a message still being sent (nothing acknowledged is ever lost: closing a case does not
//! cancel a send). A message sent from here is kept until every recipient's copy is final
//! (acknowledged, rejected or expired), so the sender still learns whether to send it again, or
//! at most [`UNFINISHED_SENT_MAX_DAYS`] after it was sent.
//!
//! Every deletion is written to the access log first ([`Action::Purged`]: the case, the message
//! ids, the rule and the places; never content), so a deletion is never unlogged: a crash after
//! the entry and before the deletion logs it again at the next sweep. The closed cases are kept
//! in a small file (`STATE_DIR/closed-cases.json`), not in the state database, so that a case can
//! be closed while the daemon holds that database.
//!
//! Time decisions take `now` from the caller (the client's clock), so tests let days pass at
//! once.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::SystemTime,
};

use prost::Message as _;
use serde::{Deserialize, Serialize};
use silta_proto::pb;

use crate::{
    access::{Access, AccessLog, Action},
    config::{ClientConfig, Folders, RetentionConfig},
    ids::CaseRef,
    outbox::{Outgoing, OutgoingState, REUSE_FOR},
    record::{Direction, MessageRecord, RecordState},
    state::{State, StateError},
};

/// The file holding the cases closed here.
pub const CLOSED_CASES_FILE: &str = "closed-cases.json";

const DAY_MS: u64 = 24 * 3600 * 1000;

/// A retention failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    /// The local state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The access log could not record it: nothing was changed or deleted.
    #[error("the access log could not record it, so nothing was changed: {0}")]
    Access(String),
    /// A file or folder could not be read, written or removed.
    #[error("{0}")]
    File(String),
    /// The daemon's queue database failed.
    #[error("daemon queue: {0}")]
    Queue(String),
}

/// A case closed here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedCase {
    /// When (RFC 3339, the client's clock).
    pub closed_at: String,
    /// When, in unix milliseconds (what the sweep counts from).
    pub closed_at_ms: u64,
    /// Who closed it.
    pub closed_by: String,
}

/// The cases closed here (`STATE_DIR/closed-cases.json`), by case (32 hex digits).
#[derive(Debug, Clone)]
pub struct ClosedCases {
    path: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ClosedFile {
    cases: BTreeMap<String, ClosedCase>,
}

impl ClosedCases {
    /// The closed cases of the installation whose state folder is `state_dir`.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        ClosedCases {
            path: state_dir.join(CLOSED_CASES_FILE),
        }
    }

    /// Every closed case. A missing file: none.
    pub fn load(&self) -> Result<BTreeMap<String, ClosedCase>, RetentionError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice::<ClosedFile>(&bytes)
                .map(|f| f.cases)
                .map_err(|e| RetentionError::File(format!("{}: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(RetentionError::File(format!(
                "{}: {e}",
                self.path.display()
            ))),
        }
    }

    /// Changes the file under an exclusive lock (two commands at once do not lose a change).
    fn update<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, ClosedCase>) -> T,
    ) -> Result<T, RetentionError> {
        let file_err = |e: String| RetentionError::File(e);
        let dir = self.path.parent().unwrap_or(Path::new("."));
        crate::fsutil::ensure_private_dir(dir).map_err(file_err)?;
        let lock_path = dir.join(".closed-cases.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| file_err(format!("{}: {e}", lock_path.display())))?;
        lock.lock()
            .map_err(|e| file_err(format!("{}: {e}", lock_path.display())))?;
        let mut cases = self.load()?;
        let out = f(&mut cases);
        let text = serde_json::to_vec_pretty(&ClosedFile { cases }).expect("json");
        crate::fsutil::write_atomic(&self.path, &text).map_err(file_err)?;
        Ok(out)
    }
}

/// Who does something (for the access log).
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The person or process.
    pub who: &'a str,
    /// The installation's principal.
    pub principal: &'a str,
}

/// Closes `case` here: written to the access log ([`Action::Closed`]), then recorded, so its
/// messages go after the retention period. Closing a closed case again changes nothing and
/// logs nothing; the earlier close is returned with `false`.
pub fn close_case(
    state_dir: &Path,
    actor: Actor<'_>,
    case: CaseRef,
    purpose: &str,
    now: SystemTime,
) -> Result<(ClosedCase, bool), RetentionError> {
    let closed = ClosedCases::in_state_dir(state_dir);
    let key = case.to_string();
    if let Some(c) = closed.load()?.get(&key) {
        return Ok((c.clone(), false));
    }
    log(state_dir, actor, Action::Closed, &case, &[], purpose)?;
    let record = ClosedCase {
        closed_at: rfc3339_at(now),
        closed_at_ms: unix_ms(now),
        closed_by: actor.who.to_owned(),
    };
    closed
        .update(|cases| cases.entry(key).or_insert_with(|| record.clone()).clone())
        .map(|c| (c, true))
}

/// Reopens a case closed by mistake, before its messages were deleted (those deleted already
/// are gone). Logged ([`Action::Reopened`]). The close it undid, or none if it was not closed.
pub fn reopen_case(
    state_dir: &Path,
    actor: Actor<'_>,
    case: CaseRef,
    purpose: &str,
) -> Result<Option<ClosedCase>, RetentionError> {
    let closed = ClosedCases::in_state_dir(state_dir);
    let key = case.to_string();
    if !closed.load()?.contains_key(&key) {
        return Ok(None);
    }
    log(state_dir, actor, Action::Reopened, &case, &[], purpose)?;
    closed.update(|cases| cases.remove(&key))
}

fn log(
    state_dir: &Path,
    actor: Actor<'_>,
    action: Action,
    case: &CaseRef,
    messages: &[Vec<u8>],
    purpose: &str,
) -> Result<(), RetentionError> {
    let case_bytes: &[u8] = if case.is_none() { &[] } else { case.as_bytes() };
    AccessLog::in_state_dir(state_dir)
        .record(&Access {
            who: actor.who,
            principal: actor.principal,
            action,
            case: case_bytes,
            messages,
            purpose,
            recipients: &[],
        })
        .map(|_| ())
        .map_err(|e| RetentionError::Access(e.to_string()))
}

/// Where a copy is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    /// The inbox store (`silta inbox`): a received or sent message's plaintext record.
    InboxStore,
    /// A sealed copy kept for sending again (the sender's own devices can open it).
    SealedCopy,
    /// The daemon's `inbox/` folder.
    DaemonInbox,
    /// The daemon's `sent/` folder (the form and its status file).
    DaemonSent,
    /// The daemon queue's record of a sent form (no content: its summary and receipt).
    DaemonQueue,
}

impl Place {
    /// How it is shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Place::InboxStore => "inbox store",
            Place::SealedCopy => "sealed copy",
            Place::DaemonInbox => "inbox/",
            Place::DaemonSent => "sent/",
            Place::DaemonQueue => "daemon queue",
        }
    }
}

/// Which rule deletes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Its case was closed, and the period has passed.
    ClosedCase,
    /// It has no case and is older than the maximum age.
    NoCase,
}

impl Rule {
    /// How it is shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ClosedCase => "closed case",
            Rule::NoCase => "no case, max age",
        }
    }
}

/// A copy of a message the sweep deletes (or would delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doomed {
    /// The message id (UUID).
    pub message_id: String,
    /// The case (32 hex digits; empty for none). For a message without a case that a closed
    /// case's message answers, that case.
    pub case: String,
    /// The message kind.
    pub kind: String,
    /// Where.
    pub place: Place,
    /// Why.
    pub rule: Rule,
    /// The files removed (daemon folders).
    pub files: Vec<PathBuf>,
    key: Vec<u8>,
}

/// A copy a rule would delete but that is kept for now, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The message id (UUID).
    pub message_id: String,
    /// The case (or empty).
    pub case: String,
    /// Where.
    pub place: Place,
    /// Why it is kept.
    pub why: &'static str,
}

/// What a sweep finds.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// What goes.
    pub doomed: Vec<Doomed>,
    /// What a rule names but is kept for now.
    pub held: Vec<Held>,
    /// What could not be judged (a record or file that does not load): left as it is.
    pub problems: Vec<String>,
}

/// One sweep over this installation's copies.
pub struct Sweep<'a> {
    /// The client state (inbox store, sealed copies), if available.
    pub state: Option<&'a State>,
    /// The daemon's folders, for a centre running it.
    pub folders: Option<&'a Folders>,
    /// The daemon queue's job records (tree `msgid_job` of `STATE_DIR/daemon-db`).
    pub jobs: Option<&'a sled::Tree>,
    /// The rules.
    pub policy: &'a RetentionConfig,
    /// The cases closed here ([`ClosedCases::load`]).
    pub closed: &'a BTreeMap<String, ClosedCase>,
    /// Now (the client's clock).
    pub now: SystemTime,
}

/// How long a sent message is kept, at most, while a recipient's copy is not final yet
/// (neither acknowledged, rejected nor expired): counted from when it was sent. Past it, the
/// rules apply as usual (the relay expires an open copy long before: 5 days by default, and
/// keeps nothing past its `max_age_s`, so a state still not final here means this installation
/// stopped hearing from the relay).
pub const UNFINISHED_SENT_MAX_DAYS: u64 = 180;

/// The recipients of a sent message, and those whose copy is final, as one copy knows them.
#[derive(Debug, Default, Clone)]
struct Delivery {
    to: BTreeSet<String>,
    finals: BTreeSet<String>,
}

impl Delivery {
    /// `states`: (recipient, state, reason); `resent_to`: the recipients a re-sending of the
    /// message went to (`resent_as`).
    fn new<'a>(
        to: impl IntoIterator<Item = String>,
        states: impl IntoIterator<Item = (&'a String, &'a str, &'a str)>,
        resent_to: &BTreeSet<String>,
    ) -> Self {
        Delivery {
            to: to.into_iter().collect(),
            finals: states
                .into_iter()
                .filter(|(r, s, why)| is_final(s, why, resent_to.contains(*r)))
                .map(|(r, _, _)| r.clone())
                .collect(),
        }
    }
}

/// A recipient's copy is final: nothing more will be heard of it, and it will not be re-sent.
/// A copy that can be re-sent (`silta resend`: undeliverable other than because the case moved,
/// or rejected as unreadable) is final only once a re-sending covered it, so the content stays
/// until the new operator's keys are there (bounded by [`UNFINISHED_SENT_MAX_DAYS`]).
fn is_final(state: &str, reason: &str, resent: bool) -> bool {
    match state {
        "acknowledged" | "expired" => true,
        "undeliverable" => resent || reason == "case_moved",
        "rejected" => resent || reason != crate::record::CANNOT_DECRYPT,
        _ => false,
    }
}

/// A message copy found, before the rules are applied.
struct Found {
    id: String,
    case: String,
    kind: String,
    /// When it arrived or was sent here (unix ms); none if not known.
    at_ms: Option<u64>,
    in_reply_to: Option<String>,
    place: Place,
    files: Vec<PathBuf>,
    key: Vec<u8>,
    /// Why it must be kept whatever the rules say.
    keep: Option<&'static str>,
    /// For a copy of a message sent from here: its recipients' states.
    delivery: Option<Delivery>,
}

impl Sweep<'_> {
    /// What goes now, and what a rule names but is kept. Changes nothing.
    pub fn plan(&self) -> Result<Plan, RetentionError> {
        let mut plan = Plan::default();
        let mut found = Vec::new();
        if let Some(state) = self.state {
            self.find_store(state, &mut found, &mut plan)?;
            self.find_sealed(state, &mut found, &mut plan)?;
        }
        if let Some(folders) = self.folders {
            find_inbox_files(&folders.inbox, &mut found, &mut plan)?;
            // Case claims and access-log shares the daemon keeps apart (they name staff and
            // purposes): the same rules as the case they are about.
            find_inbox_files(&folders.internal, &mut found, &mut plan)?;
            find_sent_files(&folders.sent, &mut found, &mut plan)?;
        }
        if let Some(jobs) = self.jobs {
            find_jobs(jobs, &mut found, &mut plan)?;
        }
        // A message without a case belongs to every case whose messages answer it (a referral
        // made before the case reference existed).
        let mut linked: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        // What every copy of a sent message knows of its recipients.
        let mut delivery: BTreeMap<String, Delivery> = BTreeMap::new();
        for f in &found {
            if let Some(r) = &f.in_reply_to
                && !f.case.is_empty()
            {
                linked.entry(r.clone()).or_default().insert(f.case.clone());
            }
            if let Some(d) = &f.delivery {
                let all = delivery.entry(f.id.clone()).or_default();
                all.to.extend(d.to.iter().cloned());
                all.finals.extend(d.finals.iter().cloned());
            }
        }
        let now = unix_ms(self.now);
        for f in found {
            let (case, rule) = if !f.case.is_empty() {
                let rule = self.closed_due(&f.case, f.at_ms, now);
                (f.case.clone(), rule)
            } else if let Some(cases) = linked.get(&f.id) {
                self.linked_due(cases, f.at_ms, now)
            } else {
                let max = u64::from(self.policy.uncased_max_days) * DAY_MS;
                let rule = match f.at_ms {
                    Some(at) if now >= at.saturating_add(max) => Some(Rule::NoCase),
                    _ => None,
                };
                (String::new(), rule)
            };
            let Some(rule) = rule else { continue };
            // A sent message stays until every recipient's copy is final, so the sender still
            // learns that it should send again (or until the hard maximum).
            let unfinished = f.delivery.is_some()
                && delivery
                    .get(&f.id)
                    .is_none_or(|d| d.to.is_empty() || !d.to.is_subset(&d.finals))
                && f.at_ms
                    .is_none_or(|at| now < at.saturating_add(UNFINISHED_SENT_MAX_DAYS * DAY_MS));
            let keep = f.keep.or(unfinished.then_some(
                "a recipient's copy is not final yet (not acknowledged, rejected or expired)",
            ));
            if let Some(why) = keep {
                plan.held.push(Held {
                    message_id: f.id,
                    case,
                    place: f.place,
                    why,
                });
                continue;
            }
            plan.doomed.push(Doomed {
                message_id: f.id,
                case,
                kind: f.kind,
                place: f.place,
                rule,
                files: f.files,
                key: f.key,
            });
        }
        plan.doomed.sort_by(|a, b| {
            (&a.case, &a.message_id, a.place).cmp(&(&b.case, &b.message_id, b.place))
        });
        Ok(plan)
    }

    /// The closed-case rule for a message of `case` that arrived at `at_ms`.
    fn closed_due(&self, case: &str, at_ms: Option<u64>, now: u64) -> Option<Rule> {
        let c = self.closed.get(case)?;
        let from = c.closed_at_ms.max(at_ms.unwrap_or(0));
        let period = u64::from(self.policy.closed_case_days) * DAY_MS;
        (now >= from.saturating_add(period)).then_some(Rule::ClosedCase)
    }

    /// A message without a case that the messages of `cases` answer: deleted under the
    /// closed-case rule only once every one of those cases is closed and its period has passed;
    /// named after the case closed last. Never under the no-case rule: an open case keeps it.
    fn linked_due(
        &self,
        cases: &BTreeSet<String>,
        at_ms: Option<u64>,
        now: u64,
    ) -> (String, Option<Rule>) {
        let mut last: Option<(u64, &String)> = None;
        for case in cases {
            let Some(c) = self.closed.get(case) else {
                return (case.clone(), None);
            };
            if last.is_none_or(|(at, _)| c.closed_at_ms > at) {
                last = Some((c.closed_at_ms, case));
            }
        }
        let Some((_, case)) = last else {
            return (String::new(), None);
        };
        if cases
            .iter()
            .all(|c| self.closed_due(c, at_ms, now).is_some())
        {
            (case.clone(), Some(Rule::ClosedCase))
        } else {
            (case.clone(), None)
        }
    }

    fn find_store(
        &self,
        state: &State,
        found: &mut Vec<Found>,
        plan: &mut Plan,
    ) -> Result<(), RetentionError> {
        for (key, record) in state.message_entries()? {
            let r = match record {
                Ok(r) => r,
                Err(e) => {
                    plan.problems.push(format!(
                        "inbox store: the record under {} does not load ({e}); left",
                        hex::encode(&key)
                    ));
                    continue;
                }
            };
            let keep = (r.direction == Some(Direction::Received)
                && r.state == Some(RecordState::New))
            .then_some("not acknowledged by a person yet");
            found.push(Found {
                id: r.message_id.to_string(),
                case: case_hex(&r.case),
                kind: r.kind.clone(),
                at_ms: arrived(&r),
                in_reply_to: r.in_reply_to.map(|i| i.to_string()),
                place: Place::InboxStore,
                files: Vec::new(),
                key,
                keep,
                delivery: (r.direction == Some(Direction::Sent)).then(|| {
                    let states = r.recipients.iter().flatten();
                    let resent: BTreeSet<String> =
                        r.resent_as.iter().flat_map(|x| x.to.clone()).collect();
                    Delivery::new(
                        r.to.clone(),
                        states.map(|(n, s)| (n, s.state.as_str(), s.reason.as_str())),
                        &resent,
                    )
                }),
            });
        }
        Ok(())
    }

    fn find_sealed(
        &self,
        state: &State,
        found: &mut Vec<Found>,
        plan: &mut Plan,
    ) -> Result<(), RetentionError> {
        let tree = state.tree("outbox_key_record")?;
        for kv in tree.iter() {
            let (key, value) = kv.map_err(StateError::from)?;
            let Ok(record) = serde_json::from_slice::<Outgoing>(&value) else {
                plan.problems
                    .push("a kept sealed copy does not load; left".to_owned());
                continue;
            };
            // Once sent, the record holds no envelope (only its receipt): nothing to open.
            if record.state == OutgoingState::Sent || record.envelope.is_empty() {
                continue;
            }
            let Some(envelope) = hex::decode(&record.envelope)
                .ok()
                .and_then(|b| pb::Envelope::decode(b.as_slice()).ok())
            else {
                plan.problems.push(format!(
                    "the sealed copy of message {} does not load; left",
                    record.message_id
                ));
                continue;
            };
            let by_daemon = key.starts_with(b"id:");
            let age = unix_ms(self.now).saturating_sub(record.sealed_at_ms);
            let keep = if by_daemon {
                Some("still being sent by the daemon")
            } else if age < REUSE_FOR.as_millis() as u64 {
                Some("may still be sent again by the same command")
            } else {
                None
            };
            found.push(Found {
                id: record.message_id.clone(),
                case: CaseRef::from_slice(&envelope.case_ref)
                    .map(|c| case_hex(&c))
                    .unwrap_or_default(),
                kind: crate::payload::kind_name(
                    pb::MessageKind::try_from(envelope.kind).unwrap_or_default(),
                ),
                at_ms: Some(record.sealed_at_ms),
                in_reply_to: uuid::Uuid::from_slice(&envelope.in_reply_to)
                    .ok()
                    .map(|u| u.to_string()),
                place: Place::SealedCopy,
                files: Vec::new(),
                key: key.to_vec(),
                keep,
                delivery: None,
            });
        }
        Ok(())
    }

    /// Deletes what `plan` names: first one access-log entry per case and rule (ids, rule and
    /// places; no content), then the copies. What was deleted.
    pub fn apply(
        &self,
        plan: &Plan,
        state_dir: &Path,
        actor: Actor<'_>,
    ) -> Result<Vec<Doomed>, RetentionError> {
        let mut groups: BTreeMap<(String, Rule), Vec<&Doomed>> = BTreeMap::new();
        for d in &plan.doomed {
            groups.entry((d.case.clone(), d.rule)).or_default().push(d);
        }
        let mut done = Vec::new();
        for ((case, rule), items) in groups {
            let ids: BTreeSet<Vec<u8>> = items
                .iter()
                .filter_map(|d| uuid::Uuid::parse_str(&d.message_id).ok())
                .map(|u| u.as_bytes().to_vec())
                .collect();
            let places: BTreeSet<&str> = items.iter().map(|d| d.place.as_str()).collect();
            let purpose = format!(
                "retention: {} ({}); deleted from {}",
                rule.as_str(),
                match rule {
                    Rule::ClosedCase =>
                        format!("closed_case_days = {}", self.policy.closed_case_days),
                    Rule::NoCase => format!("uncased_max_days = {}", self.policy.uncased_max_days),
                },
                places.into_iter().collect::<Vec<_>>().join(", ")
            );
            let case_ref = case.parse::<CaseRef>().unwrap_or_default();
            // Logged before anything goes: a deletion is never unlogged.
            log(
                state_dir,
                actor,
                Action::Purged,
                &case_ref,
                &ids.into_iter().collect::<Vec<_>>(),
                &purpose,
            )?;
            for d in items {
                self.delete(d)?;
                done.push(d.clone());
            }
        }
        if let Some(state) = self.state {
            state.flush()?;
        }
        if let Some(jobs) = self.jobs {
            jobs.flush()
                .map_err(|e| RetentionError::Queue(e.to_string()))?;
        }
        Ok(done)
    }

    fn delete(&self, d: &Doomed) -> Result<(), RetentionError> {
        match d.place {
            Place::InboxStore => {
                if let Some(state) = self.state {
                    state.remove_message(&d.key)?;
                }
            }
            Place::SealedCopy => {
                if let Some(state) = self.state {
                    state
                        .tree("outbox_key_record")?
                        .remove(&d.key)
                        .map_err(StateError::from)?;
                }
            }
            Place::DaemonInbox | Place::DaemonSent => {
                for path in &d.files {
                    match std::fs::remove_file(path) {
                        Ok(()) => crate::fsutil::sync_dir_of(path).map_err(RetentionError::File)?,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(RetentionError::File(format!("{}: {e}", path.display())));
                        }
                    }
                }
            }
            Place::DaemonQueue => {
                if let Some(jobs) = self.jobs {
                    jobs.remove(&d.key)
                        .map_err(|e| RetentionError::Queue(e.to_string()))?;
                }
                // The outbox's record of it (its receipt) goes with it.
                if let Some(state) = self.state {
                    state
                        .tree("outbox_key_record")?
                        .remove([b"id:".as_slice(), &d.key].concat())
                        .map_err(StateError::from)?;
                }
            }
        }
        Ok(())
    }
}

fn find_inbox_files(
    dir: &Path,
    found: &mut Vec<Found>,
    plan: &mut Plan,
) -> Result<(), RetentionError> {
    for path in list_dir(dir)? {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !name.ends_with(".json") {
            continue;
        }
        let record = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<MessageRecord>(&b).ok());
        let Some(r) = record else {
            plan.problems
                .push(format!("{}: not a message record; left", path.display()));
            continue;
        };
        found.push(Found {
            id: r.message_id.to_string(),
            case: case_hex(&r.case),
            kind: r.kind.clone(),
            at_ms: arrived(&r).or_else(|| modified_ms(&path)),
            in_reply_to: r.in_reply_to.map(|i| i.to_string()),
            place: Place::DaemonInbox,
            files: vec![path.clone()],
            key: Vec::new(),
            keep: None,
            delivery: None,
        });
    }
    Ok(())
}

fn find_sent_files(
    dir: &Path,
    found: &mut Vec<Found>,
    plan: &mut Plan,
) -> Result<(), RetentionError> {
    for path in list_dir(dir)? {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let Some(base) = name.strip_suffix(".status.json") else {
            continue;
        };
        let status = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let Some(s) = status.filter(|s| s["message_id"].is_string()) else {
            plan.problems
                .push(format!("{}: not a status file; left", path.display()));
            continue;
        };
        let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
        found.push(Found {
            id: text("message_id"),
            case: text("case"),
            kind: text("kind"),
            at_ms: parse_ms(&text("sent_at")).or_else(|| modified_ms(&path)),
            in_reply_to: None,
            place: Place::DaemonSent,
            files: vec![dir.join(base), path.clone()],
            key: Vec::new(),
            keep: None,
            delivery: Some(status_delivery(&s)),
        });
    }
    Ok(())
}

/// What the sweep reads of a daemon job record (the daemon's own type is private to it).
#[derive(Deserialize)]
struct JobView {
    message_id: String,
    state: String,
    #[serde(default)]
    queued_at: String,
    #[serde(default)]
    sent_at: String,
    #[serde(default)]
    summary: Option<SummaryView>,
    #[serde(default)]
    filed: bool,
    #[serde(default)]
    recipients: BTreeMap<String, StateView>,
    #[serde(default)]
    resent_as: Vec<ResentView>,
}

#[derive(Deserialize)]
struct StateView {
    #[serde(default)]
    state: String,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
struct ResentView {
    #[serde(default)]
    to: Vec<String>,
}

#[derive(Deserialize)]
struct SummaryView {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    case: String,
    #[serde(default)]
    to: Vec<String>,
}

fn find_jobs(
    jobs: &sled::Tree,
    found: &mut Vec<Found>,
    plan: &mut Plan,
) -> Result<(), RetentionError> {
    for kv in jobs.iter() {
        let (key, value) = kv.map_err(|e| RetentionError::Queue(e.to_string()))?;
        let Ok(job) = serde_json::from_slice::<JobView>(&value) else {
            plan.problems.push(format!(
                "daemon queue: the job under {} does not load; left",
                hex::encode(&key)
            ));
            continue;
        };
        // Only jobs that are done and filed in sent/: a form still queued is being sent, and one
        // sent but not filed yet still has its claimed file in queued/ for the daemon to file.
        let keep = (job.state != "sent" || !job.filed)
            .then_some("still being sent or filed by the daemon, or failed (see failed/)");
        let delivery = Delivery::new(
            job.summary
                .as_ref()
                .map(|s| s.to.clone())
                .unwrap_or_default(),
            job.recipients
                .iter()
                .map(|(n, s)| (n, s.state.as_str(), s.reason.as_str())),
            &job.resent_as.iter().flat_map(|x| x.to.clone()).collect(),
        );
        let (kind, case) = job.summary.map(|s| (s.kind, s.case)).unwrap_or_default();
        found.push(Found {
            id: job.message_id,
            case,
            kind,
            at_ms: parse_ms(&job.sent_at).or_else(|| parse_ms(&job.queued_at)),
            in_reply_to: None,
            place: Place::DaemonQueue,
            files: Vec::new(),
            key: key.to_vec(),
            keep,
            delivery: Some(delivery),
        });
    }
    Ok(())
}

/// The recipients of a sent/ status file (`to`) and their states (`recipients`).
fn status_delivery(s: &serde_json::Value) -> Delivery {
    let to = match &s["to"] {
        serde_json::Value::String(one) => vec![one.clone()],
        serde_json::Value::Array(v) => v
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let states: Vec<(String, String, String)> = s["recipients"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(n, v)| {
            (
                n.clone(),
                v["state"].as_str().unwrap_or_default().to_owned(),
                v["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let resent: BTreeSet<String> = s["resent_as"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["to"].as_array().into_iter().flatten())
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    Delivery::new(
        to,
        states
            .iter()
            .map(|(n, st, why)| (n, st.as_str(), why.as_str())),
        &resent,
    )
}

/// The regular, non-hidden files of `dir` (none if it does not exist).
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, RetentionError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RetentionError::File(format!("{}: {e}", dir.display()))),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| RetentionError::File(format!("{}: {e}", dir.display())))?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && entry.file_type().is_ok_and(|t| t.is_file()) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// The sweep the daemon runs on its scan tick ([`crate::daemon::Daemon::run`]): its folders and
/// queue, and the inbox store and sealed copies through `state`, the connected client's (while
/// the daemon is not connected they wait for a later sweep: opening the state here would race
/// the next connection for its lock). A failure is logged and tried again at the
/// next sweep; it never stops the daemon.
pub fn daemon_sweep(
    config: &ClientConfig,
    state: Option<&State>,
    folders: &Folders,
    jobs: &sled::Tree,
    principal: &str,
    now: SystemTime,
) {
    let closed = match ClosedCases::in_state_dir(&config.state_dir).load() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "retention sweep: the closed cases cannot be read; nothing deleted");
            return;
        }
    };
    let sweep = Sweep {
        state,
        folders: Some(folders),
        jobs: Some(jobs),
        policy: &config.retention,
        closed: &closed,
        now,
    };
    let actor = Actor {
        who: "process:silta-daemon",
        principal,
    };
    match sweep.plan().and_then(|plan| {
        sweep
            .apply(&plan, &config.state_dir, actor)
            .map(|d| (plan, d))
    }) {
        Ok((plan, done)) => {
            for d in &done {
                tracing::info!(message_id = %d.message_id, case = %d.case, kind = %d.kind, place = d.place.as_str(), rule = d.rule.as_str(), "retention: deleted");
            }
            for p in &plan.problems {
                tracing::warn!(problem = %p, "retention sweep");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "retention sweep failed; tried again at the next sweep")
        }
    }
    match sweep_retired_keys(config, actor, now) {
        Ok(done) => {
            for k in &done {
                tracing::info!(fingerprint = %k.fingerprint, "retention: retired device key deleted");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "retention sweep of retired keys failed; tried again at the next sweep")
        }
    }
}

/// The file in the state folder that holds the relay's time seen last (unix seconds, text):
/// the acceptance time of the latest message this installation opened, never later than the
/// local clock was then ([`note_relay_time`]).
pub const RELAY_TIME_FILE: &str = "relay-time";

/// How far the local clock may be ahead of the relay's time seen last for retired device keys
/// to be deleted. A clock running fast would otherwise delete a key while messages sealed to it
/// may still wait at the relay; a day covers an installation that opened nothing since
/// yesterday, and one quiet for longer keeps its retired keys until it hears from the relay.
pub const RELAY_CLOCK_MARGIN: std::time::Duration = std::time::Duration::from_secs(86_400);

/// Records that the relay's clock read `relay` (e.g. a delivered message's `accepted_at`) when
/// the local clock read `local_now`: kept as the later of what was kept and `relay`, but never
/// later than `local_now` (a relay's clock running fast does not let keys go earlier).
pub fn note_relay_time(
    state_dir: &Path,
    relay: SystemTime,
    local_now: SystemTime,
) -> Result<(), RetentionError> {
    let t = relay.min(local_now);
    if relay_time_seen(state_dir).is_some_and(|seen| seen >= t) {
        return Ok(());
    }
    let secs = unix_ms(t) / 1000;
    crate::fsutil::write_atomic(
        &state_dir.join(RELAY_TIME_FILE),
        format!("{secs}\n").as_bytes(),
    )
    .map_err(RetentionError::File)
}

/// The relay's time seen last ([`note_relay_time`]); `None` if never seen or unreadable.
pub fn relay_time_seen(state_dir: &Path) -> Option<SystemTime> {
    let text = std::fs::read_to_string(state_dir.join(RELAY_TIME_FILE)).ok()?;
    let secs: u64 = text.trim().parse().ok()?;
    SystemTime::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))
}

/// Whether a device key retired at `retired_at` may be deleted at `now` (local clock) after
/// `limit`: its age must have reached `limit`, and the local clock must not be ahead of the
/// relay's time seen last (`relay_seen`) by more than [`RELAY_CLOCK_MARGIN`]. `Err` says why
/// it is kept although its age has been reached.
pub fn retired_key_due(
    retired_at: SystemTime,
    now: SystemTime,
    limit: std::time::Duration,
    relay_seen: Option<SystemTime>,
) -> Result<bool, String> {
    if !now.duration_since(retired_at).is_ok_and(|age| age >= limit) {
        return Ok(false);
    }
    match relay_seen {
        None => Err("the relay's time was never seen here (no message opened yet)".into()),
        Some(seen) => match now.duration_since(seen) {
            Ok(ahead) if ahead > RELAY_CLOCK_MARGIN => Err(format!(
                "the local clock is {} s ahead of the relay's time seen last (at most {} s): a clock running fast, or nothing opened for a while",
                ahead.as_secs(),
                RELAY_CLOCK_MARGIN.as_secs()
            )),
            _ => Ok(true),
        },
    }
}

/// Deletes the device identities kept after key rotations ([`crate::keys::list_retired`]) that
/// were retired more than `retention.retired_key_days` before `now`, while `now` is not ahead of
/// the relay's time seen last by more than [`RELAY_CLOCK_MARGIN`] ([`retired_key_due`]; a key
/// held back for it is logged and tried again at the next sweep): for each, first an
/// access-log entry ([`Action::KeyDeleted`]: the fingerprint and the rule, nothing else), then
/// the folder. What was deleted.
pub fn sweep_retired_keys(
    config: &ClientConfig,
    actor: Actor<'_>,
    now: SystemTime,
) -> Result<Vec<crate::keys::RetiredKey>, RetentionError> {
    let days = config.retention.retired_key_days;
    let limit = std::time::Duration::from_secs(u64::from(days) * 86_400);
    let dir = config.key_dir();
    let kept = crate::keys::list_retired(&dir).map_err(|e| RetentionError::File(e.to_string()))?;
    let relay_seen = relay_time_seen(&config.state_dir);
    let mut done = Vec::new();
    for key in kept {
        match retired_key_due(key.retired_at, now, limit, relay_seen) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(why) => {
                tracing::warn!(fingerprint = %key.fingerprint, reason = %why, "retention: retired device key past retired_key_days kept");
                continue;
            }
        }
        log(
            &config.state_dir,
            actor,
            Action::KeyDeleted,
            &CaseRef::default(),
            &[],
            &format!(
                "retention: retired device key {} (retired_key_days = {days}); deleted from keys/retired",
                key.fingerprint
            ),
        )?;
        std::fs::remove_dir_all(&key.path)
            .map_err(|e| RetentionError::File(format!("{}: {e}", key.path.display())))?;
        done.push(key);
    }
    Ok(done)
}

/// The daemon queue of an installation, opened for a sweep by hand (`silta purge`), if the
/// installation has one. Refused while the daemon runs: it sweeps by itself.
pub fn open_daemon_queue(config: &ClientConfig) -> Result<Option<sled::Db>, RetentionError> {
    let path = config.state_dir.join("daemon-db");
    if !path.exists() {
        return Ok(None);
    }
    if daemon_running(config) {
        return Err(RetentionError::Queue(format!(
            "a silta daemon is running on {}; it sweeps by itself every {} s (stop it to sweep by hand)",
            config.daemon.folder.display(),
            config.retention.sweep_interval_ms / 1000
        )));
    }
    sled::open(&path)
        .map(Some)
        .map_err(|e| RetentionError::Queue(format!("{}: {e}", path.display())))
}

/// Whether a daemon holds the folder's lock.
pub fn daemon_running(config: &ClientConfig) -> bool {
    let lock_path = config.daemon.folder.join(".silta-daemon.lock");
    match std::fs::OpenOptions::new().write(true).open(&lock_path) {
        Ok(f) => f.try_lock().is_err(),
        Err(_) => false,
    }
}

fn case_hex(case: &CaseRef) -> String {
    if case.is_none() {
        String::new()
    } else {
        case.to_string()
    }
}

/// When a kept record arrived (received) or was sent here.
fn arrived(r: &MessageRecord) -> Option<u64> {
    [
        r.received_at.as_deref(),
        Some(&r.accepted_at),
        Some(&r.created_at),
    ]
    .into_iter()
    .flatten()
    .find_map(parse_ms)
}

fn parse_ms(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

fn modified_ms(path: &Path) -> Option<u64> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .map(unix_ms)
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn rfc3339_at(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const CASE: &str = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0";
    const REFERRAL: &str = "0190c1d2-0000-7000-8000-000000000001";
    const ANSWER: &str = "0190c1d2-0000-7000-8000-000000000002";
    const OTHER: &str = "0190c1d2-0000-7000-8000-000000000003";

    fn closed_at(ms: u64) -> BTreeMap<String, ClosedCase> {
        BTreeMap::from([(
            CASE.to_owned(),
            ClosedCase {
                closed_at: String::new(),
                closed_at_ms: ms,
                closed_by: "tester".into(),
            },
        )])
    }

    fn record(id: &str, case: &str, in_reply_to: &str) -> serde_json::Value {
        serde_json::json!({
            "accepted_at": "2026-11-20T09:00:01Z", "case": case, "created_at": "2026-11-20T09:00:00Z",
            "from": "assistance/nas", "in_reply_to": in_reply_to, "kind": "admission-decision",
            "legal_basis": "consent", "log_index": 7, "message_id": id, "payload": {},
            "to": ["centre/joutseno"], "urgency": "normal",
        })
    }

    /// A sent/ status file of a referral sent without a case to the Assistance System, whose
    /// copy is in `state`.
    fn status(id: &str, state: &str) -> serde_json::Value {
        serde_json::json!({
            "message_id": id, "case": "", "kind": "referral", "sent_at": "2026-11-20T09:00:00Z",
            "to": ["assistance/nas"], "recipients": {"assistance/nas": {"state": state}},
        })
    }

    fn at(s: &str) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(parse_ms(s).unwrap())
    }

    /// Review finding: case claims and access-log shares the daemon keeps in internal/ (staff
    /// names, purposes) were never deleted; they go with their case like inbox/ files.
    #[test]
    fn the_daemons_internal_files_go_with_their_case() {
        let dir = tempfile::tempdir().unwrap();
        let folders = Folders::under(dir.path());
        std::fs::create_dir_all(&folders.internal).unwrap();
        let file = folders.internal.join(format!("{OTHER}-case-claim.json"));
        std::fs::write(&file, serde_json::to_vec(&record(OTHER, CASE, "")).unwrap()).unwrap();
        let policy = RetentionConfig::default();
        let closed = closed_at(parse_ms("2026-11-25T00:00:00Z").unwrap());
        let plan = Sweep {
            state: None,
            folders: Some(&folders),
            jobs: None,
            policy: &policy,
            closed: &closed,
            now: at("2026-12-25T00:00:00Z"),
        }
        .plan()
        .unwrap();
        assert_eq!(plan.doomed.len(), 1, "{:?}", plan.problems);
        assert_eq!(plan.doomed[0].files, [file]);
        assert_eq!(plan.doomed[0].rule, Rule::ClosedCase);
    }

    #[test]
    fn a_referral_made_before_the_case_goes_with_the_case_that_answered_it() {
        let dir = tempfile::tempdir().unwrap();
        let folders = Folders::under(dir.path());
        for d in [&folders.inbox, &folders.sent] {
            std::fs::create_dir_all(d).unwrap();
        }
        let write = |p: PathBuf, v: serde_json::Value| {
            std::fs::write(p, serde_json::to_vec(&v).unwrap()).unwrap()
        };
        // The centre's referral, sent without a case; the answer names the case and the referral.
        std::fs::write(folders.sent.join("r.toml"), "name = \"A. Person\"").unwrap();
        write(
            folders.sent.join("r.toml.status.json"),
            status(REFERRAL, "acknowledged"),
        );
        write(
            folders
                .inbox
                .join(format!("{ANSWER}-admission-decision.json")),
            record(ANSWER, CASE, REFERRAL),
        );
        // Another message without a case, answered by nothing.
        write(
            folders
                .inbox
                .join(format!("{OTHER}-admission-decision.json")),
            record(OTHER, "", ""),
        );
        let policy = RetentionConfig::default();
        let closed = closed_at(parse_ms("2026-11-25T00:00:00Z").unwrap());
        let sweep = |now| Sweep {
            state: None,
            folders: Some(&folders),
            jobs: None,
            policy: &policy,
            closed: &closed,
            now,
        };
        assert!(
            sweep(at("2026-12-24T23:00:00Z"))
                .plan()
                .unwrap()
                .doomed
                .is_empty()
        );
        let plan = sweep(at("2026-12-25T00:00:00Z")).plan().unwrap();
        let got: Vec<(&str, &str, Place, Rule)> = plan
            .doomed
            .iter()
            .map(|d| (d.message_id.as_str(), d.case.as_str(), d.place, d.rule))
            .collect();
        assert_eq!(
            got,
            [
                (REFERRAL, CASE, Place::DaemonSent, Rule::ClosedCase),
                (ANSWER, CASE, Place::DaemonInbox, Rule::ClosedCase),
            ]
        );
        assert_eq!(
            plan.doomed[0].files,
            [
                folders.sent.join("r.toml"),
                folders.sent.join("r.toml.status.json")
            ]
        );
        // Deleting: logged first, then the files; the other message stays.
        let state_dir = dir.path().join("state");
        let actor = Actor {
            who: "tester",
            principal: "centre/joutseno",
        };
        sweep(at("2026-12-25T00:00:00Z"))
            .apply(&plan, &state_dir, actor)
            .unwrap();
        assert!(!folders.sent.join("r.toml").exists());
        assert!(!folders.sent.join("r.toml.status.json").exists());
        let left: Vec<_> = std::fs::read_dir(&folders.inbox).unwrap().collect();
        assert_eq!(left.len(), 1);
        let entries = AccessLog::in_state_dir(&state_dir).read().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].action, Action::Purged);
        assert_eq!(entries[0].case, CASE);
        assert_eq!(entries[0].messages, [REFERRAL, ANSWER]);
        assert!(
            !std::fs::read_to_string(AccessLog::in_state_dir(&state_dir).path())
                .unwrap()
                .contains("Person")
        );
    }

    #[test]
    fn sealed_copies_go_unless_they_may_still_be_sent() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        let tree = state.tree("outbox_key_record").unwrap();
        let t0 = parse_ms("2026-11-20T09:00:00Z").unwrap();
        let case: CaseRef = CASE.parse().unwrap();
        let put = |key: &[u8], id: &str, at_ms: u64| {
            let envelope = pb::Envelope {
                message_id: uuid::Uuid::parse_str(id).unwrap().as_bytes().to_vec(),
                case_ref: case.0.to_vec(),
                kind: pb::MessageKind::Referral as i32,
                ciphertext: prost::bytes::Bytes::from_static(b"age ciphertext"),
                ..Default::default()
            };
            let record = Outgoing {
                message_id: id.to_owned(),
                state: OutgoingState::Disclosed,
                sealed_at_ms: at_ms,
                envelope: hex::encode(envelope.encode_to_vec()),
                ciphertext_sha256: String::new(),
                receipt: String::new(),
                receipt_checked: false,
                receipt_problem: String::new(),
                sealed_to: None,
                sealed_version: None,
                resend_to: Vec::new(),
            };
            tree.insert(key, serde_json::to_vec(&record).unwrap())
                .unwrap();
        };
        // A command's copy sealed long ago, one sealed just now, and one the daemon is sending.
        put(b"content:old", REFERRAL, t0);
        put(b"content:new", ANSWER, t0 + 40 * DAY_MS);
        put(
            &[
                b"id:".as_slice(),
                uuid::Uuid::parse_str(OTHER).unwrap().as_bytes(),
            ]
            .concat(),
            OTHER,
            t0,
        );
        // Period 0: all three are due; only the old command's copy goes.
        let policy = RetentionConfig {
            closed_case_days: 0,
            ..RetentionConfig::default()
        };
        let closed = closed_at(t0);
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(t0 + 40 * DAY_MS + 1000);
        let sweep = Sweep {
            state: Some(&state),
            folders: None,
            jobs: None,
            policy: &policy,
            closed: &closed,
            now,
        };
        let plan = sweep.plan().unwrap();
        let doomed: Vec<_> = plan
            .doomed
            .iter()
            .map(|d| (d.message_id.as_str(), d.place))
            .collect();
        assert_eq!(doomed, [(REFERRAL, Place::SealedCopy)]);
        let mut held: Vec<_> = plan
            .held
            .iter()
            .map(|h| (h.message_id.as_str(), h.why))
            .collect();
        held.sort();
        assert_eq!(
            held,
            [
                (ANSWER, "may still be sent again by the same command"),
                (OTHER, "still being sent by the daemon"),
            ]
        );
        sweep
            .apply(
                &plan,
                dir.path(),
                Actor {
                    who: "tester",
                    principal: "centre/joutseno",
                },
            )
            .unwrap();
        assert!(tree.get(b"content:old").unwrap().is_none());
        assert!(tree.get(b"content:new").unwrap().is_some());
        assert_eq!(tree.len(), 2);
    }

    const CASE2: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
    const ANSWER2: &str = "0190c1d2-0000-7000-8000-000000000004";

    /// A centre's daemon folders with the referral `REFERRAL` sent without a case (its copy at
    /// the Assistance System in `state`) and, in inbox/, the answers given (id, case).
    fn centre(state: &str, answers: &[(&str, &str)]) -> (tempfile::TempDir, Folders) {
        let dir = tempfile::tempdir().unwrap();
        let folders = Folders::under(dir.path());
        for d in [&folders.inbox, &folders.sent] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(folders.sent.join("r.toml"), "name = \"A. Person\"").unwrap();
        let status = serde_json::to_vec(&status(REFERRAL, state)).unwrap();
        std::fs::write(folders.sent.join("r.toml.status.json"), status).unwrap();
        for (id, case) in answers {
            let path = folders.inbox.join(format!("{id}-admission-decision.json"));
            std::fs::write(
                path,
                serde_json::to_vec(&record(id, case, REFERRAL)).unwrap(),
            )
            .unwrap();
        }
        (dir, folders)
    }

    fn closed(cases: &[(&str, &str)]) -> BTreeMap<String, ClosedCase> {
        cases
            .iter()
            .map(|(case, when)| {
                let c = ClosedCase {
                    closed_at: String::new(),
                    closed_at_ms: parse_ms(when).unwrap(),
                    closed_by: "tester".into(),
                };
                ((*case).to_owned(), c)
            })
            .collect()
    }

    /// (message id, case, place) of what goes at `now`.
    fn doomed_at(
        folders: &Folders,
        closed: &BTreeMap<String, ClosedCase>,
        policy: &RetentionConfig,
        now: &str,
    ) -> Vec<(String, String, Place)> {
        let plan = Sweep {
            state: None,
            folders: Some(folders),
            jobs: None,
            policy,
            closed,
            now: at(now),
        }
        .plan()
        .unwrap();
        plan.doomed
            .into_iter()
            .map(|d| (d.message_id, d.case, d.place))
            .collect()
    }

    #[test]
    fn a_referral_answered_in_a_case_still_open_is_kept_past_the_no_case_age() {
        let (_dir, folders) = centre("acknowledged", &[(ANSWER, CASE)]);
        let policy = RetentionConfig::default();
        // The case is open: nothing goes, long after the no-case maximum age (90 days).
        let none = BTreeMap::new();
        assert_eq!(
            doomed_at(&folders, &none, &policy, "2027-11-20T09:00:00Z"),
            []
        );
        // A referral answered by nothing goes after 90 days.
        let (_dir2, alone) = centre("acknowledged", &[]);
        assert_eq!(
            doomed_at(&alone, &none, &policy, "2027-02-18T08:59:59Z"),
            []
        );
        assert_eq!(
            doomed_at(&alone, &none, &policy, "2027-02-18T09:00:00Z"),
            [(REFERRAL.to_owned(), String::new(), Place::DaemonSent)]
        );
    }

    #[test]
    fn a_referral_answered_in_two_cases_goes_only_when_both_are_closed() {
        let (_dir, folders) = centre("acknowledged", &[(ANSWER, CASE), (ANSWER2, CASE2)]);
        let policy = RetentionConfig::default();
        // One of its cases closed, the other open: the referral stays (the closed case's own
        // answer goes).
        let one = closed(&[(CASE, "2026-11-25T00:00:00Z")]);
        assert_eq!(
            doomed_at(&folders, &one, &policy, "2027-11-20T09:00:00Z"),
            [(ANSWER.to_owned(), CASE.to_owned(), Place::DaemonInbox)]
        );
        // Both closed: it goes 30 days after the later close, under that case.
        let both = closed(&[
            (CASE, "2026-11-25T00:00:00Z"),
            (CASE2, "2026-12-10T00:00:00Z"),
        ]);
        assert_eq!(
            doomed_at(&folders, &both, &policy, "2027-01-08T23:59:59Z"),
            [(ANSWER.to_owned(), CASE.to_owned(), Place::DaemonInbox)]
        );
        assert_eq!(
            doomed_at(&folders, &both, &policy, "2027-01-09T00:00:00Z"),
            [
                (ANSWER.to_owned(), CASE.to_owned(), Place::DaemonInbox),
                (REFERRAL.to_owned(), CASE2.to_owned(), Place::DaemonSent),
                (ANSWER2.to_owned(), CASE2.to_owned(), Place::DaemonInbox),
            ]
        );
    }

    #[test]
    fn a_sent_message_stays_until_every_recipients_copy_is_final_or_the_hard_maximum() {
        let policy = RetentionConfig {
            uncased_max_days: 0,
            closed_case_days: 0,
            ..RetentionConfig::default()
        };
        let none = BTreeMap::new();
        let plan_at = |folders: &Folders, jobs: Option<&sled::Tree>, now: &str| {
            Sweep {
                state: None,
                folders: Some(folders),
                jobs,
                policy: &policy,
                closed: &none,
                now: at(now),
            }
            .plan()
            .unwrap()
        };
        // Delivered but not acknowledged: held (sent/ and the queue's record), though 0 days.
        let (dir, folders) = centre("delivered", &[]);
        let db = sled::Config::new()
            .path(dir.path().join("db"))
            .open()
            .unwrap();
        let jobs = db.open_tree("msgid_job").unwrap();
        let job_resent = |state: &str, reason: &str, resent: bool| {
            let resent_as = if resent {
                serde_json::json!([{"message_id": ANSWER, "to": ["assistance/nas"], "at": ""}])
            } else {
                serde_json::json!([])
            };
            serde_json::to_vec(&serde_json::json!({
                "message_id": REFERRAL, "state": "sent", "filed": true,
                "sent_at": "2026-11-20T09:00:00Z",
                "summary": {"kind": "referral", "case": "", "to": ["assistance/nas"]},
                "recipients": {"assistance/nas": {"state": state, "reason": reason}},
                "resent_as": resent_as,
            }))
            .unwrap()
        };
        let job = |state: &str| job_resent(state, "", false);
        jobs.insert(b"job", job("delivered")).unwrap();
        let plan = plan_at(&folders, Some(&jobs), "2026-11-21T09:00:00Z");
        assert!(plan.doomed.is_empty(), "{plan:?}");
        let held: Vec<_> = plan.held.iter().map(|h| (h.place, h.why)).collect();
        let why = "a recipient's copy is not final yet (not acknowledged, rejected or expired)";
        assert_eq!(held, [(Place::DaemonSent, why), (Place::DaemonQueue, why)]);
        // The hard maximum (180 days after sending): it goes anyway.
        let plan = plan_at(&folders, Some(&jobs), "2027-05-19T09:00:00Z");
        assert_eq!(plan.doomed.len(), 2, "{plan:?}");
        // Final (any of acknowledged, rejected, expired, as either copy knows it): it goes at
        // once with 0 days.
        for state in ["acknowledged", "rejected", "expired"] {
            jobs.insert(b"job", job(state)).unwrap();
            let plan = plan_at(&folders, Some(&jobs), "2026-11-20T09:00:01Z");
            assert_eq!(plan.doomed.len(), 2, "{state}: {plan:?}");
        }
        // A copy that can be re-sent (`silta resend`) holds the content until a re-sending
        // covers it; one undeliverable because the case moved will not be re-sent.
        for (state, reason, resent, doomed) in [
            ("undeliverable", "devices_retired", false, 0),
            ("undeliverable", "recipient_disabled", false, 0),
            ("rejected", "cannot_decrypt", false, 0),
            ("undeliverable", "devices_retired", true, 2),
            ("rejected", "cannot_decrypt", true, 2),
            ("undeliverable", "case_moved", false, 2),
        ] {
            jobs.insert(b"job", job_resent(state, reason, resent))
                .unwrap();
            let plan = plan_at(&folders, Some(&jobs), "2026-11-20T09:00:01Z");
            assert_eq!(
                plan.doomed.len(),
                doomed,
                "{state} {reason} {resent}: {plan:?}"
            );
        }
        // A status file without recipients cannot tell: held.
        std::fs::write(
            folders.sent.join("r.toml.status.json"),
            serde_json::to_vec(&serde_json::json!({"message_id": REFERRAL, "case": "", "sent_at": "2026-11-20T09:00:00Z"})).unwrap(),
        )
        .unwrap();
        let plan = plan_at(&folders, None, "2026-11-21T09:00:00Z");
        assert_eq!(plan.held.len(), 1, "{plan:?}");
    }

    #[test]
    fn a_retired_key_goes_only_while_the_local_clock_is_not_far_ahead_of_the_relays() {
        let day = Duration::from_secs(86_400);
        let retired = at("2026-01-01T00:00:00Z");
        let limit = 90 * day;
        let due = retired + limit;
        // Not yet 90 days by the local clock: kept, whatever the relay said.
        assert_eq!(
            retired_key_due(retired, due - Duration::from_secs(1), limit, Some(due)),
            Ok(false)
        );
        // 90 days, and the relay's clock seen within the margin: deleted.
        assert_eq!(retired_key_due(retired, due, limit, Some(due)), Ok(true));
        assert_eq!(
            retired_key_due(retired, due, limit, Some(due - RELAY_CLOCK_MARGIN)),
            Ok(true)
        );
        // The local clock ran 89 days fast: 90 days by it, a day by the relay's. Kept.
        let why = retired_key_due(retired, due, limit, Some(retired + day)).unwrap_err();
        assert!(why.contains("ahead of the relay's time seen last"), "{why}");
        // Just past the margin: kept.
        assert!(
            retired_key_due(
                retired,
                due,
                limit,
                Some(due - RELAY_CLOCK_MARGIN - Duration::from_secs(1))
            )
            .is_err()
        );
        // The relay never seen: kept.
        assert!(retired_key_due(retired, due, limit, None).is_err());
        // The relay's time later than the local clock (a slow local clock): no reason to wait.
        assert_eq!(
            retired_key_due(retired, due, limit, Some(due + day)),
            Ok(true)
        );
    }

    #[test]
    fn the_relays_time_is_kept_as_the_latest_seen_and_never_past_the_local_clock() {
        let dir = tempfile::tempdir().unwrap();
        let (t1, t2) = (at("2026-03-01T00:00:00Z"), at("2026-03-02T00:00:00Z"));
        assert_eq!(relay_time_seen(dir.path()), None);
        note_relay_time(dir.path(), t2, t2).unwrap();
        assert_eq!(relay_time_seen(dir.path()), Some(t2));
        // An older time does not move it back.
        note_relay_time(dir.path(), t1, t2).unwrap();
        assert_eq!(relay_time_seen(dir.path()), Some(t2));
        // A relay's clock ahead of the local one counts only up to the local clock.
        let t3 = at("2026-03-03T00:00:00Z");
        note_relay_time(dir.path(), at("2030-01-01T00:00:00Z"), t3).unwrap();
        assert_eq!(relay_time_seen(dir.path()), Some(t3));
    }

    #[test]
    fn the_sweep_keeps_a_retired_key_while_the_local_clock_runs_ahead_of_the_relays() {
        let home = tempfile::tempdir().unwrap();
        let text = "relay = \"localhost:1\"\nca = \"ca.pem\"\ncert = \"cert.pem\"\nkey = \"cert.key\"\nstate_dir = \"state\"\n";
        std::fs::write(home.path().join("silta.toml"), text).unwrap();
        let config = ClientConfig::load(&home.path().join("silta.toml")).unwrap();
        crate::keys::DeviceKeys::init(&config.key_dir(), "desk").unwrap();
        crate::keys::DeviceKeys::prepare_rotation(&config.key_dir(), at("2026-01-01T00:00:00Z"))
            .unwrap();
        crate::keys::DeviceKeys::finish_rotation(&config.key_dir()).unwrap();
        let retired = crate::keys::list_retired(&config.key_dir()).unwrap();
        assert_eq!(retired.len(), 1);
        let actor = Actor {
            who: "process:test",
            principal: "centre/joutseno",
        };
        let limit = Duration::from_secs(u64::from(config.retention.retired_key_days) * 86_400);
        let due = retired[0].retired_at + limit;
        // Nothing heard from the relay: kept.
        assert!(sweep_retired_keys(&config, actor, due).unwrap().is_empty());
        // The relay seen at the rotation, the local clock now the whole period ahead: kept.
        note_relay_time(
            &config.state_dir,
            retired[0].retired_at,
            retired[0].retired_at,
        )
        .unwrap();
        assert!(sweep_retired_keys(&config, actor, due).unwrap().is_empty());
        assert!(retired[0].path.exists());
        // The relay's clock too says the period has passed: deleted.
        note_relay_time(&config.state_dir, due, due).unwrap();
        assert_eq!(sweep_retired_keys(&config, actor, due).unwrap(), retired);
        assert!(!retired[0].path.exists());
    }
}

//! Who at the organisation handles a case (case claims), and the desks' access logs shared so
//! that one data subject's access report covers every desk.
//!
//! Both are principal-internal messages ([`silta_proto::policy::INTERNAL`]): sent to the
//! sender's own principal, legal basis INTERNAL, sealed to every device of the principal (this
//! one included) through the one send path ([`crate::outbox`]), and kept like any message
//! (`msgid_record`). Nothing here is a second store: the holder of a case and the merged report
//! are computed from the kept records, so receiving a claim twice (every desk gets its own back)
//! changes nothing.
//!
//! - **Claims.** The latest claim of a case by the relay's log index wins (the relay's order,
//!   never a desk's clock; two messages never share a log index). The desk of a received claim
//!   is the device that signed it, not what its payload says.
//! - **Access-log shares.** A desk of a principal with other desks (devices with published
//!   keys) sends its access-log entries of a case that it has not shared yet, at most [`MAX_SHARE_ENTRIES`] in one message; it remembers (tree `case_lastshared`)
//!   the last entry it shared per case. Entries about the principal-internal messages
//!   themselves and `shared` entries are never shared (else two desks would answer each other's
//!   shares for ever). Received entries are merged per desk (the signing device) and
//!   de-duplicated by (desk, time, SHA-256 of the entry).

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;
use silta_certs::Principal;
use silta_proto::pb::{
    self, MessageKind,
    payload::{self as pl, Payload, payload::Body},
};

use crate::{
    access::{Access, AccessLog, Action, Entry},
    client::Client,
    error::ClientError,
    ids::{CaseRef, MessageId},
    outbox::{Disclosure, Key, Outbox, content_key},
    payload::{kind_name, payload_from_json},
    record::MessageRecord,
    seal::Draft,
    state::{State, StateError},
};

/// At most this many access-log entries go in one access-log share (a case with more is shared
/// in several messages), so a share stays far below the message size limit.
pub const MAX_SHARE_ENTRIES: usize = 50;

/// What a claim does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimAction {
    /// The person takes the case.
    Claim,
    /// The holder hands it to a colleague.
    Handover,
    /// The holder lets it go.
    Release,
}

impl ClaimAction {
    fn from_pb(v: i32) -> Option<Self> {
        match pl::ClaimAction::try_from(v).ok()? {
            pl::ClaimAction::Claim => Some(ClaimAction::Claim),
            pl::ClaimAction::Handover => Some(ClaimAction::Handover),
            pl::ClaimAction::Release => Some(ClaimAction::Release),
            pl::ClaimAction::Unspecified => None,
        }
    }

    fn to_pb(self) -> pl::ClaimAction {
        match self {
            ClaimAction::Claim => pl::ClaimAction::Claim,
            ClaimAction::Handover => pl::ClaimAction::Handover,
            ClaimAction::Release => pl::ClaimAction::Release,
        }
    }
}

/// One claim of a case, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The claim message.
    pub message_id: MessageId,
    /// The relay's log index (the order of claims).
    pub log_index: u64,
    /// When the relay accepted it (RFC 3339).
    pub at: String,
    /// What it does (`None`: a claim without an action, which changes nothing).
    pub action: Option<ClaimAction>,
    /// The person (OS user name, optionally with a declared name in brackets).
    pub holder: String,
    /// The desk it was made at: the device that signed it (this device for one sent from here).
    pub desk: String,
    /// For a handover: the colleague.
    pub handed_to: String,
    /// The note.
    pub note: String,
    /// Computed here, not taken from the claim: `Some(who held it)` when the claim was made
    /// by someone other than the holder at the time (a claim of a held case, or a handover or
    /// release by anyone but the holder: another person, or the same user name at another
    /// desk), by the relay's order of the claims.
    pub forced: Option<String>,
}

impl Claim {
    /// One line for the thread and the history, in English: "claimed by anna at desk desk-1
    /// (2026-...)" (the JSON form of `case show`).
    pub fn line(&self) -> String {
        self.line_in(crate::i18n::Lang::En)
    }

    /// [`Claim::line`] in `lang` (the action's words; names, desk, time and note as they are,
    /// made printable).
    pub fn line_in(&self, lang: crate::i18n::Lang) -> String {
        use crate::i18n::tr;
        let p = crate::text::printable_line;
        let holder = p(&self.holder);
        let what = match self.action {
            Some(ClaimAction::Claim) => tr(lang, "claim-line-claim", &[("holder", holder.into())]),
            Some(ClaimAction::Handover) => tr(
                lang,
                "claim-line-handover",
                &[("holder", holder.into()), ("to", p(&self.handed_to).into())],
            ),
            Some(ClaimAction::Release) => {
                tr(lang, "claim-line-release", &[("holder", holder.into())])
            }
            None => tr(lang, "claim-line-none", &[("holder", holder.into())]),
        };
        let mut args = vec![
            ("what", what.into()),
            ("desk", p(&self.desk).into()),
            ("at", self.at.clone().into()),
        ];
        if self.note.is_empty() {
            tr(lang, "claim-line", &args)
        } else {
            args.push(("note", p(&self.note).into()));
            tr(lang, "claim-line-note", &args)
        }
    }
}

/// Who holds a case now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The person (OS user name, optionally with a declared name).
    pub person: String,
    /// The desk the case was claimed at (empty after a handover: the colleague's desk is not
    /// known until they act at one).
    pub desk: String,
    /// Since when (the relay's acceptance of the claim).
    pub since: String,
    /// The claim that made them the holder was forced ([`Claim::forced`]).
    pub forced: bool,
}

impl Holder {
    /// The OS user name of the person (what `holder` starts with).
    pub fn user(&self) -> &str {
        holder_user(&self.person)
    }

    /// Whether `user` at `desk` is this holder: the same OS user name at the same desk (after a
    /// handover, whose desk is not known yet, the user name at any desk). A user name alone
    /// says nothing across machines.
    pub fn is(&self, user: &str, desk: &str) -> bool {
        self.user() == user && (self.desk.is_empty() || self.desk == desk)
    }

    /// "anna (Anna K.) at desk desk-1" (the person alone after a handover).
    pub fn label(&self) -> String {
        if self.desk.is_empty() {
            self.person.clone()
        } else {
            format!("{} at desk {}", self.person, self.desk)
        }
    }
}

/// The OS user name a holder starts with ("anna (Anna K.)" -> "anna").
pub fn holder_user(holder: &str) -> &str {
    holder.split(" (").next().unwrap_or(holder).trim()
}

/// Whether `record` is a principal-internal message (a claim or an access-log share) that
/// passes [`check_internal`]: what is taken in without a person, and kept out of the inbox. One
/// of those kinds that fails is an ordinary item (not acknowledged, listed, shown).
pub fn is_internal(record: &MessageRecord) -> bool {
    [MessageKind::CaseClaim, MessageKind::AccessLogShare]
        .iter()
        .any(|k| record.kind == kind_name(*k))
        && check_internal(record).is_ok()
}

/// Longest holder, desk, colleague, user and kind-of-name strings in a claim or share entry.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest note of a claim, and purpose of an access-log entry.
pub const MAX_NOTE_CHARS: usize = 2000;

/// What a principal-internal message must be to count: from this principal to itself alone,
/// on legal basis INTERNAL, a body of its kind, strings within [`MAX_NAME_CHARS`] /
/// [`MAX_NOTE_CHARS`], a share with at most [`MAX_SHARE_ENTRIES`] entries.
pub fn check_internal(r: &MessageRecord) -> Result<(), String> {
    if !own(r) {
        return Err("not from this principal to itself alone".into());
    }
    if r.legal_basis != "internal" {
        return Err(format!("legal basis {:?}, not internal", r.legal_basis));
    }
    let long = |what: &str, v: &str, max: usize| {
        if v.chars().count() > max {
            Err(format!("{what} longer than {max} characters"))
        } else {
            Ok(())
        }
    };
    let kind = crate::payload::parse_kind(&r.kind).map_err(|e| e.to_string())?;
    match payload_from_json(kind, &r.payload) {
        Ok(Payload {
            body: Some(Body::CaseClaim(c)),
        }) if kind == MessageKind::CaseClaim => {
            long("holder", &c.holder, MAX_NAME_CHARS)?;
            long("holder_device", &c.holder_device, MAX_NAME_CHARS)?;
            long("handed_to", &c.handed_to, MAX_NAME_CHARS)?;
            long("note", &c.note, MAX_NOTE_CHARS)
        }
        Ok(Payload {
            body: Some(Body::AccessLogShare(a)),
        }) if kind == MessageKind::AccessLogShare => {
            long("desk", &a.desk, MAX_NAME_CHARS)?;
            if a.entries.len() > MAX_SHARE_ENTRIES {
                return Err(format!(
                    "{} entries, more than {MAX_SHARE_ENTRIES}",
                    a.entries.len()
                ));
            }
            for e in &a.entries {
                long("action", &e.action, MAX_NAME_CHARS)?;
                long("os_user", &e.os_user, MAX_NAME_CHARS)?;
                long("declared_user", &e.declared_user, MAX_NAME_CHARS)?;
                long("purpose", &e.purpose, MAX_NOTE_CHARS)?;
            }
            Ok(())
        }
        Ok(_) => Err("a body of another kind".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The claims of `case` among `records`, in the relay's order.
pub fn claims(records: &[MessageRecord], case: &CaseRef) -> Vec<Claim> {
    let mut out: Vec<Claim> = records
        .iter()
        .filter(|r| r.case == *case)
        .filter_map(claim_of)
        .collect();
    out.sort_by_key(|c| c.log_index);
    mark_forced(&mut out);
    out
}

/// Sets [`Claim::forced`] on `claims` (in the relay's order), from who held the case before
/// each.
fn mark_forced(claims: &mut [Claim]) {
    let mut current: Option<Holder> = None;
    for c in claims.iter_mut() {
        let by_holder = current
            .as_ref()
            .is_some_and(|h| h.is(holder_user(&c.holder), &c.desk));
        let label = || {
            current
                .as_ref()
                .map_or_else(|| "nobody".to_owned(), Holder::label)
        };
        c.forced = match c.action {
            Some(ClaimAction::Claim) if current.is_some() && !by_holder => Some(label()),
            Some(ClaimAction::Handover | ClaimAction::Release) if !by_holder => Some(label()),
            _ => None,
        };
        current = step(current, c);
    }
}

/// Whether `r` went from its sender to its sender only: what a principal-internal message must
/// do. A received message names this principal among its signed recipients (checked when it was
/// opened), so this says it came from this principal's own desks, whatever a relay delivered.
fn own(r: &MessageRecord) -> bool {
    r.to.len() == 1 && r.to[0] == r.from
}

fn claim_of(r: &MessageRecord) -> Option<Claim> {
    if r.kind != kind_name(MessageKind::CaseClaim) || check_internal(r).is_err() {
        return None;
    }
    let Ok(Payload {
        body: Some(Body::CaseClaim(c)),
    }) = payload_from_json(MessageKind::CaseClaim, &r.payload)
    else {
        return None;
    };
    Some(Claim {
        message_id: r.message_id,
        log_index: r.log_index,
        at: r.accepted_at.clone(),
        action: ClaimAction::from_pb(c.action),
        holder: c.holder,
        // Received: the device whose signature was verified. Sent from here: what we wrote.
        desk: r.from_device.clone().unwrap_or(c.holder_device),
        handed_to: c.handed_to,
        note: c.note,
        forced: None,
    })
}

/// Who holds the case after `claims` (in the relay's order, as [`claims`] gives them): nobody if
/// there were none or the last one released it.
pub fn holder(claims: &[Claim]) -> Option<Holder> {
    claims.iter().fold(None, step)
}

fn step(holder: Option<Holder>, c: &Claim) -> Option<Holder> {
    match c.action {
        Some(ClaimAction::Claim) => Some(Holder {
            person: c.holder.clone(),
            desk: c.desk.clone(),
            since: c.at.clone(),
            forced: c.forced.is_some(),
        }),
        Some(ClaimAction::Handover) => Some(Holder {
            person: c.handed_to.clone(),
            desk: String::new(),
            since: c.at.clone(),
            forced: c.forced.is_some(),
        }),
        Some(ClaimAction::Release) => None,
        None => holder,
    }
}

/// The holder of every case that has one, from `records`.
pub fn holders(records: &[MessageRecord]) -> BTreeMap<CaseRef, Holder> {
    let mut by_case: BTreeMap<CaseRef, Vec<Claim>> = BTreeMap::new();
    for r in records {
        if let Some(c) = claim_of(r) {
            by_case.entry(r.case).or_default().push(c);
        }
    }
    by_case
        .into_iter()
        .filter_map(|(case, mut claims)| {
            claims.sort_by_key(|c| c.log_index);
            mark_forced(&mut claims);
            holder(&claims).map(|h| (case, h))
        })
        .collect()
}

/// A claim message to send: to `me` only (the principal's own desks), legal basis INTERNAL.
pub fn claim_draft(
    me: &Principal,
    case: [u8; 16],
    action: ClaimAction,
    holder: &str,
    desk: &str,
    handed_to: &str,
    note: &str,
) -> Draft {
    let payload = Payload {
        body: Some(Body::CaseClaim(pl::CaseClaim {
            action: action.to_pb().into(),
            holder: holder.to_owned(),
            holder_device: desk.to_owned(),
            handed_to: handed_to.to_owned(),
            note: note.to_owned(),
        })),
    };
    Draft::new(MessageKind::CaseClaim, case, vec![me.clone()], payload)
}

/// Every case's messages' ids (and the ids they answer), for matching access-log entries
/// written without the case (a referral before its case reference existed).
fn case_ids(records: &[MessageRecord]) -> BTreeMap<String, CaseRef> {
    let mut out = BTreeMap::new();
    for r in records.iter().filter(|r| !r.case.is_none()) {
        out.insert(r.message_id.to_string(), r.case);
        if let Some(i) = r.in_reply_to {
            out.entry(i.to_string()).or_insert(r.case);
        }
    }
    out
}

/// The purpose an access-log share's own disclosure is recorded with (by [`Outbox::submit`],
/// before it is sent): how such entries are recognised and never shared themselves, even when
/// the share was refused and no record of its message is kept.
pub const SHARE_PURPOSE: &str =
    "sharing this desk's access-log entries of the case with the organisation's other desks";

/// Sync shares a case's new entries at most this often (an access report shares at once).
pub const SHARE_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Whether this desk's `entry` is bookkeeping that no data subject's report needs and no share
/// carries: a share (`shared`), a listing (case, kind and sender of many messages, no one
/// person's data), or the disclosure of a principal-internal message (a share's or a claim's:
/// recognised by the share purpose or by going to this principal alone, so even a refused one,
/// of which no message is kept, is never shared).
fn bookkeeping(e: &Entry) -> bool {
    match e.action {
        Action::Shared | Action::Listed => true,
        Action::Disclosed => {
            e.purpose == SHARE_PURPOSE
                || (!e.principal.is_empty()
                    && e.recipients.len() == 1
                    && e.recipients[0] == e.principal)
        }
        _ => false,
    }
}

/// The entries of `case` in this desk's log, as they are shared: one per message of the case
/// the entry names (or one without a message), leaving out bookkeeping (shares, listings, the
/// disclosures of principal-internal messages) and entries about the principal-internal
/// messages. Each comes with the entry's `prev` (its place in the log).
pub fn case_entries(
    entries: &[Entry],
    records: &[MessageRecord],
    case: &CaseRef,
) -> Vec<(String, pl::AccessLogEntry)> {
    case_entry_groups(entries, records, case)
        .into_iter()
        .flat_map(|(prev, group)| group.into_iter().map(move |e| (prev.clone(), e)))
        .collect()
}

/// [`case_entries`] grouped by the log entry they come from (one log entry can name several
/// messages of the case): a share never splits a group, so a marker at a group's `prev` never
/// leaves part of an entry behind.
fn case_entry_groups(
    entries: &[Entry],
    records: &[MessageRecord],
    case: &CaseRef,
) -> Vec<(String, Vec<pl::AccessLogEntry>)> {
    let ids = case_ids(records);
    let kinds: BTreeMap<String, &MessageRecord> = records
        .iter()
        .map(|r| (r.message_id.to_string(), r))
        .collect();
    let internal: BTreeSet<String> = records
        .iter()
        .filter(|r| is_internal(r))
        .map(|r| r.message_id.to_string())
        .collect();
    let case_hex = case.to_string();
    let mut out = Vec::new();
    for e in entries {
        if bookkeeping(e) {
            continue;
        }
        let mine: Vec<&String> = e
            .messages
            .iter()
            .filter(|m| ids.get(*m) == Some(case))
            .collect();
        if e.case != case_hex && mine.is_empty() {
            continue;
        }
        if !e.messages.is_empty() && e.messages.iter().all(|m| internal.contains(m)) {
            continue;
        }
        let one = |m: Option<&String>| {
            let id = m.and_then(|m| m.parse::<MessageId>().ok());
            let kind = m
                .and_then(|m| kinds.get(m))
                .and_then(|r| crate::payload::parse_kind(&r.kind).ok())
                .unwrap_or(MessageKind::Unspecified);
            pl::AccessLogEntry {
                time: timestamp(&e.time),
                action: e.action.as_str().to_owned(),
                message_id: id.map(|i| i.as_bytes().to_vec()).unwrap_or_default(),
                kind: kind.into(),
                // Entries written before the OS user was recorded: what they named, as declared.
                os_user: e.os_user.clone(),
                uid: e.uid.unwrap_or_default(),
                declared_user: if e.os_user.is_empty() {
                    e.who.clone()
                } else {
                    e.declared_user.clone()
                },
                purpose: e.purpose.clone(),
            }
        };
        let mine: Vec<&String> = mine
            .into_iter()
            .filter(|m| !internal.contains(*m))
            .collect();
        let group = if mine.is_empty() {
            vec![one(None)]
        } else {
            mine.into_iter().map(|m| one(Some(m))).collect()
        };
        out.push((e.prev.clone(), group));
    }
    out
}

/// The chunks a case's pending entry groups are shared in: at most [`MAX_SHARE_ENTRIES`]
/// entries each, a group never split across chunks but one larger than the limit (an entry
/// naming more messages of the case) alone in consecutive chunks, of which only the last
/// carries the group's `prev` (the marker moves only when the whole group went).
fn chunks(
    groups: &[(String, Vec<pl::AccessLogEntry>)],
) -> Vec<(Option<String>, Vec<pl::AccessLogEntry>)> {
    let mut out: Vec<(Option<String>, Vec<pl::AccessLogEntry>)> = Vec::new();
    let mut current: (Option<String>, Vec<pl::AccessLogEntry>) = (None, Vec::new());
    for (prev, group) in groups {
        if current.1.len() + group.len() > MAX_SHARE_ENTRIES && !current.1.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        if group.len() > MAX_SHARE_ENTRIES {
            let pieces: Vec<&[pl::AccessLogEntry]> = group.chunks(MAX_SHARE_ENTRIES).collect();
            let n = pieces.len();
            for (i, piece) in pieces.into_iter().enumerate() {
                out.push(((i + 1 == n).then(|| prev.clone()), piece.to_vec()));
            }
            continue;
        }
        current.1.extend(group.iter().cloned());
        current.0 = Some(prev.clone());
    }
    if !current.1.is_empty() {
        out.push(current);
    }
    out
}

/// What this desk remembers per case about its shares (tree `case_lastshared`).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Marker {
    /// The `prev` of the last log entry shared completely.
    #[serde(default)]
    prev: String,
    /// The last share's message id (the next one answers it: the chain the other desks check).
    #[serde(default)]
    last_share: Option<MessageId>,
    /// When (Unix seconds, the client's clock) the last share went.
    #[serde(default)]
    at: u64,
    /// The relay said this principal does not (any longer) take part in the case: sync stops
    /// sharing it (an access report tries again).
    #[serde(default)]
    left: bool,
}

impl Marker {
    fn parse(v: &[u8]) -> Self {
        // Before the marker was a record it was the `prev` alone.
        serde_json::from_slice(v).unwrap_or_else(|_| Marker {
            prev: String::from_utf8_lossy(v).into_owned(),
            ..Default::default()
        })
    }
}

fn timestamp(rfc3339: &str) -> Option<prost_types::Timestamp> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    })
}

/// What [`share_access_log`] sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Shared {
    /// Share messages sent (ids).
    pub messages: Vec<MessageId>,
    /// Entries shared in them.
    pub entries: usize,
    /// Cases whose share failed, with why (the others were still shared).
    pub failed: Vec<String>,
}

fn marker_tree(state: &State) -> Result<sled::Tree, StateError> {
    state.tree("case_lastshared")
}

/// Sends this desk's access-log entries not shared yet, of `only` or of every case, to the
/// organisation's other desks (access-log shares; see the module documentation). Each share is
/// recorded in the access log (`shared`) after the relay accepted it.
pub async fn share_access_log(
    client: &Client,
    log: &AccessLog,
    who: &str,
    only: Option<CaseRef>,
) -> Result<Shared, ClientError> {
    let state = client.state();
    let records = state.messages()?;
    let entries = log.read().map_err(|e| ClientError::Access(e.to_string()))?;
    let cases: BTreeSet<CaseRef> = match only {
        Some(c) => [c].into(),
        None => {
            // The cases the log names, directly or through their messages.
            let ids = case_ids(&records);
            entries
                .iter()
                .flat_map(|e| {
                    let direct = e.case.parse::<CaseRef>().ok();
                    direct
                        .into_iter()
                        .chain(e.messages.iter().filter_map(|m| ids.get(m).copied()))
                })
                .filter(|c| !c.is_none())
                .collect()
        }
    };
    let me = client.principal().clone();
    let desk = client.keys().device_id().to_owned();
    // A principal with one desk has nobody to share with. Nothing is marked shared either, so a
    // desk added later gets every entry from the first share on.
    if !client
        .keys_of(&me)
        .await?
        .iter()
        .any(|k| k.device_id != desk)
    {
        return Ok(Shared::default());
    }
    let markers = marker_tree(state)?;
    let outbox = Outbox::open(state, log.clone())?;
    let now = client
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut shared = Shared::default();
    for case in cases {
        let mut marker = markers
            .get(case.as_bytes())
            .map_err(StateError::from)?
            .map(|v| Marker::parse(&v))
            .unwrap_or_default();
        if only.is_none()
            && (marker.left || (marker.at > 0 && now < marker.at + SHARE_EVERY.as_secs()))
        {
            // Left the case (the relay said so), or shared within the interval: not at sync.
            continue;
        }
        let groups = case_entry_groups(&entries, &records, &case);
        let start = (!marker.prev.is_empty())
            .then(|| groups.iter().rposition(|(prev, _)| *prev == marker.prev))
            .flatten()
            .map_or(0, |i| i + 1);
        for (done, chunk) in chunks(&groups[start..]) {
            // What the share covers: up to its last entry (stable, so the same pending entries
            // make the same message, and a retry finds the outbox record).
            let covers_until = chunk.last().and_then(|e| e.time);
            let payload = Payload {
                body: Some(Body::AccessLogShare(pl::AccessLogShare {
                    desk: desk.clone(),
                    entries: chunk.clone(),
                    covers_until,
                })),
            };
            let mut draft = Draft::new(
                MessageKind::AccessLogShare,
                case.0,
                vec![me.clone()],
                payload,
            );
            // The chain: each share answers this desk's previous share of the case, so another
            // desk states coverage only as far as it holds every share.
            draft.in_reply_to = marker.last_share.map(|m| m.0);
            let disclosure = Disclosure {
                who: who.to_owned(),
                purpose: SHARE_PURPOSE.into(),
                keep_copy: true,
            };
            let key = Key::Content(content_key(&draft));
            let sent = match outbox.submit(client, &draft, &key, &disclosure).await {
                Ok(sent) => sent,
                Err(e) => {
                    if matches!(&e, ClientError::Relay(s) if s.code() == tonic::Code::PermissionDenied)
                    {
                        // Not (any longer) in the case: remembered, so sync does not try again
                        // (and write another disclosure) every time.
                        marker.left = true;
                        put_marker(&markers, &case, &marker)?;
                    }
                    shared.failed.push(format!("case {case}: {e}"));
                    break;
                }
            };
            // Remembered first: a share sent twice is merged once by the other desks.
            if let Some(prev) = done {
                marker.prev = prev;
            }
            marker.last_share = Some(MessageId(sent.message_id));
            marker.at = now;
            marker.left = false;
            put_marker(&markers, &case, &marker)?;
            log.record(&Access {
                who,
                principal: &me.to_string(),
                action: Action::Shared,
                case: case.as_bytes(),
                messages: &[sent.message_id.to_vec()],
                purpose: &format!(
                    "{} access-log entries of this desk shared with the organisation's other desks",
                    chunk.len()
                ),
                recipients: &[me.to_string()],
            })
            .map_err(|e| ClientError::Access(e.to_string()))?;
            shared.messages.push(MessageId(sent.message_id));
            shared.entries += chunk.len();
        }
    }
    Ok(shared)
}

fn put_marker(markers: &sled::Tree, case: &CaseRef, marker: &Marker) -> Result<(), ClientError> {
    let v = serde_json::to_vec(marker).map_err(|e| ClientError::Access(e.to_string()))?;
    markers
        .insert(case.as_bytes(), v)
        .map_err(StateError::from)?;
    markers.flush().map_err(StateError::from)?;
    Ok(())
}

/// One share in a desk's chain: its id, the share it answers, its covers_until.
type ShareLink = (MessageId, Option<MessageId>, (i64, i32));

/// How far a desk's chain of shares of a case reaches: `shares` are (id, the share it answers,
/// covers_until). A share counts only if every share before it in its chain is held, back to
/// the first (which answers none); the coverage is the latest such share's, or `None`.
fn chain_coverage(shares: &[ShareLink]) -> Option<(i64, i32)> {
    let mut reached: BTreeSet<MessageId> = BTreeSet::new();
    let mut best = None;
    let mut frontier: Vec<Option<MessageId>> = vec![None];
    while let Some(parent) = frontier.pop() {
        for (id, answers, until) in shares {
            if *answers == parent && reached.insert(*id) {
                best = Some(best.map_or(*until, |b: (i64, i32)| b.max(*until)));
                frontier.push(Some(*id));
            }
        }
    }
    best
}

/// One row of a merged access report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedEntry {
    /// The desk (device id) whose log it is.
    pub desk: String,
    /// The entry.
    pub entry: pl::AccessLogEntry,
}

/// How far one desk's entries reach in a merged report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The desk (device id).
    pub desk: String,
    /// Up to when its entries are included (RFC 3339): for this desk, now; for another, what
    /// its latest share said.
    pub until: String,
    /// This desk (its own log), not a share.
    pub own: bool,
}

/// A case's access entries merged across the desks: this desk's own log (`entries`) and every
/// access-log share of the case kept among `records` from the other desks; in time order,
/// de-duplicated by (desk, time, SHA-256 of the entry).
pub fn merged(
    entries: &[Entry],
    records: &[MessageRecord],
    case: &CaseRef,
    own_desk: &str,
) -> (Vec<MergedEntry>, Vec<Coverage>) {
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    let mut push = |desk: &str, e: pl::AccessLogEntry, rows: &mut Vec<MergedEntry>| {
        let t = e.time.map(|t| (t.seconds, t.nanos)).unwrap_or_default();
        let h = crate::seal::sha256(&e.encode_to_vec());
        if seen.insert((desk.to_owned(), t, h)) {
            rows.push(MergedEntry {
                desk: desk.to_owned(),
                entry: e,
            });
        }
    };
    for (_, e) in case_entries(entries, records, case) {
        push(own_desk, e, &mut rows);
    }
    let mut chains: BTreeMap<String, Vec<ShareLink>> = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r.case == *case && r.is_received())
    {
        if r.kind != kind_name(MessageKind::AccessLogShare) || check_internal(r).is_err() {
            continue;
        }
        // The desk is the device that signed the share: a desk speaks only for its own log.
        let Some(desk) = r.from_device.as_deref() else {
            continue;
        };
        if desk == own_desk {
            continue;
        }
        let Ok(Payload {
            body: Some(Body::AccessLogShare(s)),
        }) = payload_from_json(MessageKind::AccessLogShare, &r.payload)
        else {
            continue;
        };
        if s.desk != desk {
            tracing::warn!(message_id = %r.message_id, "an access-log share names another desk than the one that signed it; left out");
            continue;
        }
        let t = s
            .covers_until
            .map(|t| (t.seconds, t.nanos))
            .unwrap_or_default();
        chains
            .entry(desk.to_owned())
            .or_default()
            .push((r.message_id, r.in_reply_to, t));
        for e in s.entries {
            push(desk, e, &mut rows);
        }
    }
    rows.sort_by_key(|r| {
        (
            r.entry
                .time
                .map(|t| (t.seconds, t.nanos))
                .unwrap_or_default(),
            r.desk.clone(),
        )
    });
    let mut coverage = vec![Coverage {
        desk: own_desk.to_owned(),
        until: crate::times::now_rfc3339(),
        own: true,
    }];
    // A desk is said to be covered only as far as its chain of shares is complete here.
    let until = chains
        .into_iter()
        .filter_map(|(desk, shares)| chain_coverage(&shares).map(|u| (desk, u)));
    coverage.extend(until.map(|(desk, (s, n))| Coverage {
        desk,
        until: crate::times::rfc3339(Some(&prost_types::Timestamp {
            seconds: s,
            nanos: n,
        })),
        own: false,
    }));
    (rows, coverage)
}

/// The kind name of an entry's kind ("" if none).
pub fn entry_kind(e: &pl::AccessLogEntry) -> String {
    match pb::MessageKind::try_from(e.kind) {
        Ok(MessageKind::Unspecified) | Err(_) => String::new(),
        Ok(k) => kind_name(k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(log_index: u64, action: ClaimAction, holder: &str, to: &str) -> Claim {
        Claim {
            message_id: MessageId([log_index as u8; 16]),
            log_index,
            at: format!("2026-11-30T10:00:{log_index:02}Z"),
            action: Some(action),
            holder: holder.into(),
            desk: "desk-1".into(),
            handed_to: to.into(),
            note: String::new(),
            forced: None,
        }
    }

    fn record(
        id: u8,
        kind: MessageKind,
        from: &str,
        to: &str,
        device: &str,
        payload: &Payload,
    ) -> MessageRecord {
        serde_json::from_value(serde_json::json!({
            "accepted_at": "2026-11-30T10:00:00Z", "case": CaseRef([0xc; 16]).to_string(),
            "ciphertext_sha256": "ab", "created_at": "2026-11-30T10:00:00Z",
            "direction": "received", "from": from, "from_device": device, "in_reply_to": "",
            "kind": kind_name(kind), "legal_basis": "internal", "log_index": id,
            "message_id": MessageId([id; 16]).to_string(),
            "payload": crate::payload::payload_json(payload), "received_at": "2026-11-30T10:00:01Z",
            "sender_key": "SHA256:x", "state": "acknowledged", "to": [to], "urgency": "normal",
        }))
        .unwrap()
    }

    fn share(desk: &str, entries: Vec<pl::AccessLogEntry>) -> Payload {
        Payload {
            body: Some(Body::AccessLogShare(pl::AccessLogShare {
                desk: desk.into(),
                entries,
                covers_until: timestamp("2026-11-30T12:00:00Z"),
            })),
        }
    }

    fn entry(time: &str, purpose: &str) -> pl::AccessLogEntry {
        pl::AccessLogEntry {
            time: timestamp(time),
            action: "shown".into(),
            os_user: "ben".into(),
            uid: 1001,
            purpose: purpose.into(),
            ..Default::default()
        }
    }

    #[test]
    fn shares_merge_per_signing_desk_without_duplicates_or_bookkeeping() {
        let nas = "assistance/nas";
        let case = CaseRef([0xc; 16]);
        let referral = Payload {
            body: Some(Body::Referral(Default::default())),
        };
        let e1 = entry("2026-11-30T11:00:00Z", "assessing");
        let e2 = entry("2026-11-30T11:30:00Z", "calling");
        let records = vec![
            record(
                1,
                MessageKind::Referral,
                "centre/c",
                nas,
                "server-1",
                &referral,
            ),
            // Desk 2's share, and the same entry again in a later share: merged once.
            record(
                2,
                MessageKind::AccessLogShare,
                nas,
                nas,
                "desk-2",
                &share("desk-2", vec![e1.clone(), e2.clone()]),
            ),
            record(
                3,
                MessageKind::AccessLogShare,
                nas,
                nas,
                "desk-2",
                &share("desk-2", vec![e2.clone()]),
            ),
            // Signed by desk 3 but speaking for desk 2: left out.
            record(
                4,
                MessageKind::AccessLogShare,
                nas,
                nas,
                "desk-3",
                &share("desk-2", vec![entry("2026-11-30T11:40:00Z", "forged")]),
            ),
            // Signed by a centre, to this principal (a relay could deliver it): left out.
            record(
                5,
                MessageKind::AccessLogShare,
                "centre/c",
                nas,
                "desk-9",
                &share("desk-9", vec![entry("2026-11-30T11:45:00Z", "foreign")]),
            ),
        ];
        let own = |action: Action, messages: Vec<String>, prev: &str| Entry {
            prev: prev.into(),
            time: "2026-11-30T10:30:00Z".into(),
            who: "anna".into(),
            principal: nas.into(),
            action,
            case: case.to_string(),
            messages,
            purpose: "triage".into(),
            recipients: vec![],
            uid: Some(1000),
            os_user: "anna".into(),
            declared_user: String::new(),
        };
        let entries = vec![
            own(Action::Shown, vec![MessageId([1; 16]).to_string()], "p1"),
            // Bookkeeping: the opening of a share, and a share itself.
            own(Action::Received, vec![MessageId([2; 16]).to_string()], "p2"),
            own(Action::Shared, vec![MessageId([9; 16]).to_string()], "p3"),
        ];
        let mine = case_entries(&entries, &records, &case);
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0].1.kind, MessageKind::Referral as i32);
        let (rows, coverage) = merged(&entries, &records, &case, "desk-1");
        let got: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.desk.as_str(), r.entry.purpose.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("desk-1", "triage"),
                ("desk-2", "assessing"),
                ("desk-2", "calling")
            ]
        );
        let desks: Vec<(&str, bool)> = coverage.iter().map(|c| (c.desk.as_str(), c.own)).collect();
        assert_eq!(desks, [("desk-1", true), ("desk-2", false)]);
        assert_eq!(coverage[1].until, "2026-11-30T12:00:00Z");
    }

    #[test]
    fn the_latest_claim_by_log_index_wins() {
        assert_eq!(holder(&[]), None);
        let c = [
            claim(3, ClaimAction::Claim, "anna (Anna K.)", ""),
            claim(5, ClaimAction::Handover, "anna", "ben"),
        ];
        let h = holder(&c).unwrap();
        assert_eq!((h.user(), h.desk.as_str()), ("ben", ""));
        let c = [
            claim(3, ClaimAction::Claim, "anna (Anna K.)", ""),
            claim(7, ClaimAction::Release, "anna", ""),
        ];
        assert_eq!(holder(&c), None);
        let h = holder(&c[..1]).unwrap();
        assert_eq!((h.user(), h.desk.as_str()), ("anna", "desk-1"));
        assert_eq!(
            c[1].line(),
            "released by anna at desk desk-1 (2026-11-30T10:00:07Z)"
        );
    }

    #[test]
    fn a_share_never_splits_a_log_entry_and_the_marker_moves_only_past_whole_entries() {
        let e = |n: usize| entry(&format!("2026-11-30T11:{:02}:00Z", n % 60), "x");
        let group = |prev: &str, n: usize| (prev.to_owned(), (0..n).map(e).collect::<Vec<_>>());
        // 30 + 30: the second entry goes whole into the next share, not split 20/10.
        let c = chunks(&[group("a", 30), group("b", 30), group("c", 5)]);
        let got: Vec<(Option<&str>, usize)> =
            c.iter().map(|(p, v)| (p.as_deref(), v.len())).collect();
        assert_eq!(got, [(Some("a"), 30), (Some("c"), 35)]);
        // One entry larger than a share: alone, and only its last piece moves the marker.
        let c = chunks(&[group("a", 10), group("big", 120), group("z", 1)]);
        let got: Vec<(Option<&str>, usize)> =
            c.iter().map(|(p, v)| (p.as_deref(), v.len())).collect();
        assert_eq!(
            got,
            [
                (Some("a"), 10),
                (None, 50),
                (None, 50),
                (Some("big"), 20),
                (Some("z"), 1)
            ]
        );
        assert!(c.iter().all(|(_, v)| v.len() <= MAX_SHARE_ENTRIES));
    }

    #[test]
    fn coverage_reaches_only_as_far_as_the_chain_of_shares_is_complete() {
        let id = |n: u8| MessageId([n; 16]);
        let t = |s: i64| (s, 0);
        // 1 <- 2 <- 3: complete, to 3's time.
        let full = [
            (id(1), None, t(10)),
            (id(2), Some(id(1)), t(20)),
            (id(3), Some(id(2)), t(30)),
        ];
        assert_eq!(chain_coverage(&full), Some(t(30)));
        // 2 never arrived: 3 (the highest covers_until) does not count.
        assert_eq!(chain_coverage(&[full[0], full[2]]), Some(t(10)));
        // Without the first share nothing is complete.
        assert_eq!(chain_coverage(&full[1..]), None);
        // A share sent twice (a fork) still counts from the first.
        let fork = [full[0], (id(4), Some(id(1)), t(25)), full[1]];
        assert_eq!(chain_coverage(&fork), Some(t(25)));
    }

    #[test]
    fn bookkeeping_entries_are_never_shared() {
        let nas = "assistance/nas";
        let case = CaseRef([0xc; 16]);
        let own = |action: Action, purpose: &str, recipients: Vec<String>| Entry {
            prev: format!("{action:?}{purpose}"),
            time: "2026-11-30T10:30:00Z".into(),
            who: "anna".into(),
            principal: nas.into(),
            action,
            case: case.to_string(),
            // A message of which nothing is kept (a refused share or claim).
            messages: vec![MessageId([7; 16]).to_string()],
            purpose: purpose.into(),
            recipients,
            uid: Some(1000),
            os_user: "anna".into(),
            declared_user: String::new(),
        };
        let entries = vec![
            own(Action::Disclosed, SHARE_PURPOSE, vec![nas.into()]),
            own(Action::Disclosed, "claiming the case", vec![nas.into()]),
            own(Action::Listed, "triage", vec![]),
            own(Action::Shared, "1 entry", vec![nas.into()]),
            own(Action::Disclosed, "decision", vec!["centre/c".into()]),
            own(Action::Shown, "assessing", vec![]),
        ];
        let got: Vec<String> = case_entries(&entries, &[], &case)
            .into_iter()
            .map(|(_, e)| format!("{} {}", e.action, e.purpose))
            .collect();
        assert_eq!(got, ["disclosed decision", "shown assessing"]);
    }

    #[test]
    fn forced_is_computed_by_the_receiver_from_user_and_desk() {
        let at = |log_index: u64, action, holder: &str, desk: &str, to: &str| {
            let mut c = claim(log_index, action, holder, to);
            c.desk = desk.into();
            c
        };
        let mut c = vec![
            at(1, ClaimAction::Claim, "anna (Anna K.)", "desk-1", ""),
            // Another "anna" (the same user name on another machine) releases: forced.
            at(2, ClaimAction::Release, "anna", "desk-2", ""),
            // Nobody holds it: a claim is not forced, a release is.
            at(3, ClaimAction::Claim, "ben", "desk-2", ""),
            at(4, ClaimAction::Claim, "ben", "desk-2", ""),
            // Carl takes ben's case: forced; carl hands it to dora: not forced.
            at(5, ClaimAction::Claim, "carl", "desk-3", ""),
            at(6, ClaimAction::Handover, "carl", "desk-3", "dora"),
            // Dora (desk not known after the handover) releases at any desk: not forced.
            at(7, ClaimAction::Release, "dora", "desk-9", ""),
            at(8, ClaimAction::Release, "erik", "desk-1", ""),
        ];
        mark_forced(&mut c);
        let forced: Vec<Option<&str>> = c.iter().map(|c| c.forced.as_deref()).collect();
        assert_eq!(
            forced,
            [
                None,
                Some("anna (Anna K.) at desk desk-1"),
                None,
                None,
                Some("ben at desk desk-2"),
                None,
                None,
                Some("nobody"),
            ]
        );
        let h = holder(&c[..5]).unwrap();
        assert!(h.forced && h.is("carl", "desk-3") && !h.is("carl", "desk-1"));
        assert!(!holder(&c[..4]).unwrap().forced);
        assert_eq!(holder(&c[..2]), None);
    }

    #[test]
    fn a_received_internal_message_counts_only_when_it_checks_out() {
        let nas = "assistance/nas";
        let claim = |holder: &str, note: &str| Payload {
            body: Some(Body::CaseClaim(pl::CaseClaim {
                action: pl::ClaimAction::Claim.into(),
                holder: holder.into(),
                note: note.into(),
                ..Default::default()
            })),
        };
        let ok = record(
            1,
            MessageKind::CaseClaim,
            nas,
            nas,
            "desk-2",
            &claim("ben", ""),
        );
        assert!(is_internal(&ok), "{:?}", check_internal(&ok));
        let mut basis = ok.clone();
        basis.legal_basis = "consent".into();
        let long_note = record(
            2,
            MessageKind::CaseClaim,
            nas,
            nas,
            "desk-2",
            &claim("ben", &"x".repeat(MAX_NOTE_CHARS + 1)),
        );
        let long_holder = record(
            3,
            MessageKind::CaseClaim,
            nas,
            nas,
            "desk-2",
            &claim(&"b".repeat(MAX_NAME_CHARS + 1), ""),
        );
        let mut two = ok.clone();
        two.to.push("centre/c".into());
        let many = record(
            4,
            MessageKind::AccessLogShare,
            nas,
            nas,
            "desk-2",
            &share(
                "desk-2",
                vec![entry("2026-11-30T11:00:00Z", "p"); MAX_SHARE_ENTRIES + 1],
            ),
        );
        for bad in [&basis, &long_note, &long_holder, &two, &many] {
            assert!(!is_internal(bad), "{bad:?}");
            assert!(claims(std::slice::from_ref(bad), &bad.case).is_empty());
        }
        assert_eq!(claims(std::slice::from_ref(&ok), &ok.case).len(), 1);
        let (rows, _) = merged(&[], &[many], &CaseRef([0xc; 16]), "desk-1");
        assert!(rows.is_empty());
    }
}

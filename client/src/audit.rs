//! The auditor's side of the delivery log: verifying it has not been rewritten, truncated or
//! forked; producing and checking offline evidence for a message.
//!
//! `verify` keeps, in its state folder, the last checkpoint it verified and the hash of every
//! leaf it has seen. Each run fetches the relay's newest signed checkpoint and every entry,
//! recomputes each leaf hash and the root, checks the signature and the consistency with what it
//! verified before, and on any mismatch names the first bad index and what is wrong.

use std::path::Path;

use base64::Engine as _;
use prost::Message as _;
use serde::{Deserialize, Serialize};
use silta_proto::{
    pb,
    tlog::{self, Hash, MemoryTree},
};
use tonic::transport::Channel;

/// Why an acknowledgement in the log or in evidence does not verify.
pub use crate::ack::AckError;

type Audit = pb::audit_log_client::AuditLogClient<Channel>;

/// What verification found wrong, with the first bad index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogProblem {
    /// The checkpoint is not signed by the log key.
    #[error("checkpoint signature: {0}")]
    Signature(String),
    /// The log is shorter than a checkpoint verified before.
    #[error(
        "log truncated: the relay now has {now} entries, {verified} were verified before; entries from index {now} are gone"
    )]
    Truncated {
        /// Entries now.
        now: u64,
        /// Entries verified before.
        verified: u64,
    },
    /// An entry is missing.
    #[error("index {index}: entry missing")]
    Missing {
        /// The first missing index.
        index: u64,
    },
    /// An entry differs from what was verified before (rewritten history or a fork).
    #[error(
        "index {index}: entry differs from the one verified before (history rewritten or forked)"
    )]
    Rewritten {
        /// The first differing index.
        index: u64,
    },
    /// An entry does not belong where it is (its own index field says otherwise: reordered).
    #[error("index {index}: entry says it is index {claims} (entries reordered)")]
    Reordered {
        /// Where it was found.
        index: u64,
        /// What it says.
        claims: u64,
    },
    /// An entry does not match the signed tree (changed after it was logged).
    #[error("index {index}: entry does not match the signed tree (changed after it was logged)")]
    Changed {
        /// The first changed index.
        index: u64,
    },
    /// The entry does not decode as an event.
    #[error("index {index}: entry is not a valid event")]
    Malformed {
        /// Where.
        index: u64,
    },
    /// The entries do not hash to the signed root, and no single entry could be blamed.
    #[error("the entries do not hash to the signed root of {size} entries")]
    RootMismatch {
        /// The checkpoint's size.
        size: u64,
    },
    /// The relay's consistency proof does not verify.
    #[error("the relay's consistency proof from {old} to {new} does not verify (fork)")]
    Inconsistent {
        /// Old size.
        old: u64,
        /// New size.
        new: u64,
    },
}

/// The result of a verification run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Size verified before this run.
    pub previous: u64,
    /// Size verified now.
    pub size: u64,
    /// Root verified now.
    pub root: Hash,
    /// Acknowledgements checked against CA-verified key bundles (with a trust store).
    pub acks_checked: u64,
    /// ACKNOWLEDGED events whose signature does not verify (or cannot be checked), by index:
    /// the log is intact, but the relay recorded an acknowledgement the recipient did not make.
    pub bad_acks: Vec<(u64, String)>,
}

/// What `verify` checks acknowledgements with: the directory (every bundle each recipient ever
/// published, and the relay's CRLs, which are CA-signed) and the client's trust store.
pub struct AckCheck<'a> {
    /// The relay's key directory.
    pub directory: &'a mut pb::directory_client::DirectoryClient<Channel>,
    /// The CA (and local CRLs) bundles must verify against.
    pub trust: &'a crate::bundle::TrustStore,
}

/// Checks every ACKNOWLEDGED event among `events`, fetching each recipient's bundles once.
async fn check_acks(
    check: &mut AckCheck<'_>,
    events: &[pb::Event],
) -> Result<(u64, Vec<(u64, String)>), AuditError> {
    use std::collections::HashMap;
    let mut keys: HashMap<String, (Vec<pb::KeyBundle>, Vec<Vec<u8>>)> = HashMap::new();
    let (mut checked, mut bad) = (0, Vec::new());
    for e in events
        .iter()
        .filter(|e| e.r#type == pb::EventType::Acknowledged as i32)
    {
        if !keys.contains_key(&e.actor) {
            let got = crate::ack::published_bundles(check.directory, &e.actor).await?;
            keys.insert(e.actor.clone(), got);
        }
        let (bundles, crls) = &keys[&e.actor];
        checked += 1;
        if let Err(why) =
            crate::ack::verify_event(&crate::ack::Trust::Store(check.trust), bundles, crls, e)
        {
            bad.push((e.index, format!("acknowledgement by {}: {why}", e.actor)));
        }
    }
    Ok((checked, bad))
}

/// Why verification could not run (as opposed to finding a problem).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The log has a problem: this is the finding.
    #[error("{0}")]
    Problem(#[from] LogProblem),
    /// The relay refused or failed.
    #[error("relay: {} ({})", .0.message(), .0.code())]
    Relay(#[from] tonic::Status),
    /// Local state could not be read or written.
    #[error("auditor state: {0}")]
    State(String),
    /// The relay's paging does not end (a token repeated, too many pages or events).
    #[error("relay: {0}")]
    Paging(String),
}

#[derive(Serialize, Deserialize, Default)]
struct AuditState {
    checkpoint: String,
    size: u64,
}

/// Why the delivery log is read: a purpose code and an optional short note, written
/// `CODE` or `CODE: note` on the command line (e.g. `incident: ticket 4711`). The log can never
/// be erased, so the note must never hold personal data; the relay refuses long or multi-line
/// notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    /// The code.
    pub code: pb::PurposeCode,
    /// The note, possibly empty.
    pub note: String,
}

impl Purpose {
    /// A purpose without a note.
    pub fn new(code: pb::PurposeCode) -> Self {
        Purpose {
            code,
            note: String::new(),
        }
    }
}

impl std::str::FromStr for Purpose {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, note) = match s.split_once(':') {
            Some((n, rest)) => (n.trim(), rest.trim()),
            None => (s.trim(), ""),
        };
        let code = silta_proto::purpose::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = silta_proto::purpose::CODES.iter().map(|(_, n)| *n).collect();
            format!(
                "{name:?} is not a purpose code; use one of {} (optionally followed by \": a short note\", no personal data)",
                names.join(", ")
            )
        })?;
        silta_proto::purpose::check_note(note)?;
        Ok(Purpose {
            code,
            note: note.to_owned(),
        })
    }
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(silta_proto::purpose::name(self.code))?;
        if !self.note.is_empty() {
            write!(f, ": {}", self.note)?;
        }
        Ok(())
    }
}

/// Every event matching `filter` that the caller may see, fetched page by page with the purpose
/// (each page's query is recorded in the log with it). A relay that hands back a page token it
/// gave before, or more than [`MAX_PAGES`] pages or [`MAX_EVENTS`] events, is refused
/// ([`ClientError::RelayAnswer`]) instead of being followed for ever.
pub async fn fetch_events(
    audit: &mut Audit,
    filter: pb::QueryFilter,
    purpose: &Purpose,
) -> Result<Vec<pb::Event>, crate::error::ClientError> {
    query_pages(audit, filter, purpose)
        .await
        .map_err(|e| match e {
            AuditError::Relay(s) => crate::error::ClientError::Relay(s),
            AuditError::Paging(why) => crate::error::ClientError::RelayAnswer(why),
            other => crate::error::ClientError::RelayAnswer(other.to_string()),
        })
}

/// Most pages one query follows (500 events a page asked for).
pub const MAX_PAGES: usize = 10_000;
/// Most events one query collects.
pub const MAX_EVENTS: usize = 1_000_000;

/// The pages of one query, by [`all_pages`].
async fn query_pages(
    audit: &mut Audit,
    filter: pb::QueryFilter,
    purpose: &Purpose,
) -> Result<Vec<pb::Event>, AuditError> {
    all_pages(MAX_PAGES, MAX_EVENTS, |token| {
        let request = pb::QueryRequest {
            filter: Some(filter.clone()),
            purpose: purpose.note.clone(),
            page_size: 500,
            page_token: token,
            purpose_code: purpose.code.into(),
        };
        let mut audit = audit.clone();
        async move { Ok(audit.query(request).await?.into_inner()) }
    })
    .await
}

/// Follows page tokens from `page` (called with the token, empty first) until one is empty.
/// A token seen before, more than `max_pages` pages or more than `max_events` events is
/// [`AuditError::Paging`].
async fn all_pages<F, Fut>(
    max_pages: usize,
    max_events: usize,
    mut page: F,
) -> Result<Vec<pb::Event>, AuditError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<pb::QueryResponse, AuditError>>,
{
    let mut events = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut token = String::new();
    for _ in 0..max_pages {
        let answer = page(token).await?;
        if events.len() + answer.events.len() > max_events {
            return Err(AuditError::Paging(format!(
                "the relay's answer holds more than {max_events} events; narrow the query"
            )));
        }
        events.extend(answer.events);
        if answer.next_page_token.is_empty() {
            return Ok(events);
        }
        if !seen.insert(answer.next_page_token.clone()) {
            return Err(AuditError::Paging(
                "the relay handed back a page token it gave before (its paging loops)".into(),
            ));
        }
        token = answer.next_page_token;
    }
    Err(AuditError::Paging(format!(
        "the relay's answer runs over more than {max_pages} pages; narrow the query"
    )))
}

fn state_err(e: impl std::fmt::Display) -> AuditError {
    AuditError::State(e.to_string())
}

fn hashes(v: &[Vec<u8>]) -> Vec<Hash> {
    v.iter()
        .filter_map(|h| h.as_slice().try_into().ok())
        .collect()
}

/// Fetches entries `[start, end)` from the relay; missing entries show up as gaps.
async fn entries(
    audit: &mut Audit,
    start: u64,
    end: u64,
    purpose: &Purpose,
) -> Result<Vec<pb::LogEntry>, AuditError> {
    let mut out = Vec::new();
    let mut next = start;
    while next < end {
        let got = audit
            .entries(pb::EntriesRequest {
                start: next,
                end,
                purpose: purpose.note.clone(),
                purpose_code: purpose.code.into(),
            })
            .await?
            .into_inner()
            .entries;
        let Some(last) = got.last().map(|e| e.index).filter(|l| *l >= next) else {
            return Err(LogProblem::Missing { index: next }.into());
        };
        next = last + 1;
        out.extend(got);
    }
    Ok(out)
}

/// Verifies the whole log against the relay's newest checkpoint and what was verified before
/// (kept in `state_dir`). On success the state advances; on a problem it stays as it was.
///
/// With `acks`, every ACKNOWLEDGED event's signature is checked too; a bad one does not stop the
/// run (the log itself verified) but is listed in [`Verified::bad_acks`].
pub async fn verify(
    audit: &mut Audit,
    state_dir: &Path,
    log_key: &str,
    purpose: &Purpose,
    acks: Option<AckCheck<'_>>,
) -> Result<Verified, AuditError> {
    std::fs::create_dir_all(state_dir).map_err(state_err)?;
    let state_path = state_dir.join("audit-state.json");
    let leaves_path = state_dir.join("leaf-hashes.bin");
    let state: AuditState = match std::fs::read(&state_path) {
        Ok(b) => serde_json::from_slice(&b).map_err(state_err)?,
        Err(_) => AuditState::default(),
    };
    let old_leaves: Vec<Hash> = std::fs::read(&leaves_path)
        .unwrap_or_default()
        .chunks(32)
        .filter_map(|c| c.try_into().ok())
        .collect();
    if old_leaves.len() as u64 != state.size {
        return Err(AuditError::State(
            "leaf hashes and checkpoint disagree; remove the state folder to start over".into(),
        ));
    }

    let resp = audit
        .checkpoint(pb::CheckpointRequest {})
        .await?
        .into_inner();
    let cp = tlog::verify_checkpoint(&resp.checkpoint, log_key)
        .map_err(|e| LogProblem::Signature(e.to_string()))?;
    if cp.size < state.size {
        return Err(LogProblem::Truncated {
            now: cp.size,
            verified: state.size,
        }
        .into());
    }

    // Every entry, re-hashed; the prefix must be what was verified before.
    let fetched = entries(audit, 0, cp.size, purpose).await?;
    let mut tree = MemoryTree::default();
    let mut events = Vec::with_capacity(fetched.len());
    for (expected, entry) in (0u64..).zip(&fetched) {
        if entry.index != expected {
            return Err(LogProblem::Missing { index: expected }.into());
        }
        let event = pb::Event::decode(entry.leaf.as_slice())
            .map_err(|_| LogProblem::Malformed { index: expected })?;
        let leaf = tlog::leaf_hash(&entry.leaf);
        if let Some(old) = old_leaves.get(expected as usize)
            && *old != leaf
        {
            return Err(LogProblem::Rewritten { index: expected }.into());
        }
        if event.index != expected {
            return Err(LogProblem::Reordered {
                index: expected,
                claims: event.index,
            }
            .into());
        }
        tree.push(leaf);
        events.push(event);
    }
    if (tree.len()) < cp.size {
        return Err(LogProblem::Missing { index: tree.len() }.into());
    }
    if tree.root(cp.size) != cp.root {
        // Which leaf does not belong to the signed tree? Ask for each one's proof (best effort:
        // the mismatch itself is the finding, whatever the relay answers).
        for i in 0..cp.size {
            let Ok(proof) = audit
                .inclusion_proof(pb::InclusionProofRequest {
                    index: i,
                    tree_size: cp.size,
                })
                .await
            else {
                break;
            };
            let proof = hashes(&proof.into_inner().hashes);
            if tlog::verify_inclusion(
                i,
                cp.size,
                &tree.leaf(i).unwrap_or_default(),
                &proof,
                &cp.root,
            )
            .is_err()
            {
                return Err(LogProblem::Changed { index: i }.into());
            }
        }
        return Err(LogProblem::RootMismatch { size: cp.size }.into());
    }
    // The relay's own consistency proof must agree too (it is what a lighter client relies on).
    if state.size > 0 && state.size < cp.size {
        let old = match tlog::verify_checkpoint(&state.checkpoint, log_key) {
            Ok(old) => old,
            // Verified here before, under a log key retired since (a rotation finished while
            // this auditor did not run): what this auditor verified then are the leaf hashes
            // it kept, which match the log's first entries (checked above), so their root is
            // the old checkpoint's.
            Err(tlog::NoteError::NotSigned(_)) => tlog::Checkpoint {
                origin: cp.origin.clone(),
                size: state.size,
                root: tree.root(state.size),
            },
            Err(e) => return Err(LogProblem::Signature(e.to_string()).into()),
        };
        let proof = audit
            .consistency_proof(pb::ConsistencyProofRequest {
                old_size: old.size,
                new_size: cp.size,
            })
            .await?
            .into_inner();
        tlog::verify_consistency(
            old.size,
            cp.size,
            &hashes(&proof.hashes),
            &old.root,
            &cp.root,
        )
        .map_err(|_| LogProblem::Inconsistent {
            old: old.size,
            new: cp.size,
        })?;
    }

    let (acks_checked, bad_acks) = match acks {
        Some(mut check) => check_acks(&mut check, &events).await?,
        None => (0, Vec::new()),
    };
    let new_leaves: Vec<u8> = (0..cp.size)
        .filter_map(|i| tree.leaf(i))
        .flatten()
        .collect();
    write_atomic(&leaves_path, &new_leaves)?;
    let new_state = AuditState {
        checkpoint: resp.checkpoint,
        size: cp.size,
    };
    write_atomic(
        &state_path,
        &serde_json::to_vec_pretty(&new_state).map_err(state_err)?,
    )?;
    Ok(Verified {
        previous: state.size,
        size: cp.size,
        root: cp.root,
        acks_checked,
        bad_acks,
    })
}

/// [`crate::fsutil::write_atomic`], its failure as the audit state's.
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), AuditError> {
    crate::fsutil::write_atomic(path, data).map_err(AuditError::State)
}

/// Offline evidence about one message: its events, their inclusion proofs, one checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Evidence {
    /// Format version (1).
    pub version: u32,
    /// The message id (UUID).
    pub message_id: String,
    /// The signed checkpoint all proofs refer to.
    pub checkpoint: String,
    /// The message's events.
    pub entries: Vec<EvidenceEntry>,
    /// Version 2: the key bundles (encoded `KeyBundle`, base64) of every device named in an
    /// ACKNOWLEDGED event, with their certificate chains: what its signature is checked with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Version 2: the CRLs (DER, base64) the relay enforced when the evidence was collected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crls: Vec<String>,
}

/// One event in an evidence file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EvidenceEntry {
    /// Log index.
    pub index: u64,
    /// The leaf (encoded event), base64.
    pub leaf: String,
    /// Inclusion proof, base64 hashes.
    pub proof: Vec<String>,
}

/// Collects evidence for `message_id` (the querier must be allowed to see its events).
///
/// For each ACKNOWLEDGED event, the bundles the recipient published for the device it names
/// and the relay's CRLs are added (from `directory`), so the signature can be checked offline.
pub async fn prove(
    audit: &mut Audit,
    directory: &mut pb::directory_client::DirectoryClient<Channel>,
    message_id: &[u8],
    purpose: &Purpose,
) -> Result<Evidence, AuditError> {
    let cp = audit
        .checkpoint(pb::CheckpointRequest {})
        .await?
        .into_inner();
    let filter = pb::QueryFilter {
        message_id: message_id.to_vec(),
        ..Default::default()
    };
    let events: Vec<pb::Event> = query_pages(audit, filter, purpose)
        .await?
        .into_iter()
        .filter(|e| e.index < cp.tree_size)
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut keys: Vec<pb::KeyBundle> = Vec::new();
    let mut crls: Vec<Vec<u8>> = Vec::new();
    for e in events
        .iter()
        .filter(|e| e.r#type == pb::EventType::Acknowledged as i32)
    {
        let Some(device) = crate::ack::device_of(e) else {
            continue;
        };
        let (bundles, got_crls) = crate::ack::published_bundles(directory, &e.actor).await?;
        crls.extend(got_crls);
        for b in bundles {
            let theirs = pb::KeyBundleContent::decode(b.content.as_slice())
                .is_ok_and(|c| c.principal == e.actor && c.device_id == device);
            if theirs && !keys.contains(&b) {
                keys.push(b);
            }
        }
    }
    // Unranked: check-evidence keeps only the CRLs the CA signed (TrustStore::verify).
    crls.sort();
    crls.dedup();
    let mut entries = Vec::new();
    for e in events {
        let proof = audit
            .inclusion_proof(pb::InclusionProofRequest {
                index: e.index,
                tree_size: cp.tree_size,
            })
            .await?
            .into_inner();
        entries.push(EvidenceEntry {
            index: e.index,
            // Events encode deterministically: these are the bytes the relay hashed.
            leaf: b64.encode(e.encode_to_vec()),
            proof: proof.hashes.iter().map(|h| b64.encode(h)).collect(),
        });
    }
    Ok(Evidence {
        version: 2,
        message_id: uuid::Uuid::from_slice(message_id)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| hex::encode(message_id)),
        checkpoint: cp.checkpoint,
        entries,
        keys: keys.iter().map(|k| b64.encode(k.encode_to_vec())).collect(),
        crls: crls.iter().map(|c| b64.encode(c)).collect(),
    })
}

/// Why evidence does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// Not an evidence file.
    #[error("not an evidence file: {0}")]
    Malformed(String),
    /// The checkpoint is not signed by the log key.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// An entry is not in the signed tree.
    #[error("index {0}: not included in the signed checkpoint")]
    NotIncluded(u64),
    /// An entry is about another message.
    #[error("index {0}: event is not about message {1}")]
    OtherMessage(u64, String),
    /// No events at all.
    #[error("the evidence holds no events")]
    Empty,
    /// An acknowledgement's signature does not verify (or cannot be checked): the log says the
    /// recipient acknowledged, but nothing the recipient signed shows it.
    #[error("index {index}: the acknowledgement by {recipient} is NOT proven: {why}")]
    Ack {
        /// The ACKNOWLEDGED event.
        index: u64,
        /// Its recipient.
        recipient: String,
        /// Why.
        why: AckError,
    },
    /// The evidence holds acknowledgements, and no CA was given to check them with.
    #[error("the evidence holds acknowledgements; their signatures are checked against the CA")]
    NeedCa,
}

/// What evidence proves.
#[derive(Debug, Clone)]
pub struct Proven {
    /// The events, in the order of the evidence.
    pub events: Vec<pb::Event>,
    /// For each ACKNOWLEDGED event (by index): the key bundle its signature verified with.
    pub acks: Vec<(u64, crate::bundle::VerifiedBundle)>,
}

/// Checks evidence offline with the log's verifier key; returns the events it proves. With
/// `expect`, the evidence must be about that message. Every ACKNOWLEDGED event's signature must
/// verify with a bundle in the evidence that verifies against `ca` (PEM) as of the
/// acknowledgement; without `ca`, evidence holding an acknowledgement is refused
/// ([`EvidenceError::NeedCa`]).
pub fn check_evidence(
    text: &str,
    log_key: &str,
    expect: Option<&str>,
    ca: Option<&[u8]>,
) -> Result<Proven, EvidenceError> {
    let ev: Evidence =
        serde_json::from_str(text).map_err(|e| EvidenceError::Malformed(e.to_string()))?;
    if ev.version != 1 && ev.version != 2 {
        return Err(EvidenceError::Malformed(format!("version {}", ev.version)));
    }
    let cp = tlog::verify_checkpoint(&ev.checkpoint, log_key)
        .map_err(|e| EvidenceError::Checkpoint(e.to_string()))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let id = uuid::Uuid::parse_str(&ev.message_id)
        .map_err(|e| EvidenceError::Malformed(e.to_string()))?;
    if let Some(expected) = expect {
        let expected =
            uuid::Uuid::parse_str(expected).map_err(|e| EvidenceError::Malformed(e.to_string()))?;
        if expected != id {
            return Err(EvidenceError::OtherMessage(0, expected.to_string()));
        }
    }
    if ev.entries.is_empty() {
        return Err(EvidenceError::Empty);
    }
    let mut out = Vec::new();
    for e in &ev.entries {
        let leaf = b64
            .decode(&e.leaf)
            .map_err(|x| EvidenceError::Malformed(x.to_string()))?;
        let proof: Vec<Hash> = e
            .proof
            .iter()
            .map(|p| b64.decode(p).ok().and_then(|v| v.try_into().ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| EvidenceError::Malformed("proof hash".into()))?;
        tlog::verify_inclusion(e.index, cp.size, &tlog::leaf_hash(&leaf), &proof, &cp.root)
            .map_err(|_| EvidenceError::NotIncluded(e.index))?;
        let event = pb::Event::decode(leaf.as_slice())
            .map_err(|_| EvidenceError::Malformed("event".into()))?;
        if event.message_id != id.as_bytes() || event.index != e.index {
            return Err(EvidenceError::OtherMessage(e.index, ev.message_id.clone()));
        }
        out.push(event);
    }
    let acks: Vec<&pb::Event> = out
        .iter()
        .filter(|e| e.r#type == pb::EventType::Acknowledged as i32)
        .collect();
    let mut proven = Vec::new();
    if !acks.is_empty() {
        let ca = ca.ok_or(EvidenceError::NeedCa)?;
        let decode = |s: &String| b64.decode(s).ok();
        let keys: Vec<pb::KeyBundle> = ev
            .keys
            .iter()
            .map(|k| {
                decode(k)
                    .and_then(|b| pb::KeyBundle::decode(b.as_slice()).ok())
                    .ok_or_else(|| EvidenceError::Malformed("key bundle".into()))
            })
            .collect::<Result<_, _>>()?;
        let crls: Vec<Vec<u8>> = ev
            .crls
            .iter()
            .map(|c| decode(c).ok_or_else(|| EvidenceError::Malformed("CRL".into())))
            .collect::<Result<_, _>>()?;
        for e in acks {
            let key = crate::ack::verify_event(&crate::ack::Trust::Ca(ca), &keys, &crls, e)
                .map_err(|why| EvidenceError::Ack {
                    index: e.index,
                    recipient: e.actor.clone(),
                    why,
                })?;
            proven.push((e.index, key));
        }
    }
    Ok(Proven {
        events: out,
        acks: proven,
    })
}

/// Why a receipt does not prove acceptance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The receipt carries no checkpoint (the relay does not flush).
    #[error("the receipt carries no signed checkpoint")]
    NoEvidence,
    /// The checkpoint is not signed by the log key.
    #[error("receipt checkpoint: {0}")]
    Checkpoint(String),
    /// The log entry is not the acceptance of this message.
    #[error("receipt log entry is not the acceptance of this message by this sender")]
    WrongEntry,
    /// The entry is not in the signed tree.
    #[error("receipt log entry is not included in the signed checkpoint")]
    NotIncluded,
}

/// Checks a receipt offline: checkpoint signed by the log key, of more than log_index entries
/// (the relay signs one checkpoint per write batch and every receipt of the batch carries it;
/// older relays signed exactly log_index + 1), the entry is the ACCEPTED event of `message_id`
/// from `sender` with `ciphertext_sha256`, and the proof includes it in that checkpoint's tree.
pub fn check_receipt(
    receipt: &pb::Receipt,
    log_key: &str,
    message_id: &[u8],
    sender: &str,
    ciphertext_sha256: &[u8],
) -> Result<(), ReceiptError> {
    if receipt.checkpoint.is_empty() {
        return Err(ReceiptError::NoEvidence);
    }
    let cp = tlog::verify_checkpoint(&receipt.checkpoint, log_key)
        .map_err(|e| ReceiptError::Checkpoint(e.to_string()))?;
    let event =
        pb::Event::decode(receipt.log_entry.as_slice()).map_err(|_| ReceiptError::WrongEntry)?;
    let right = event.r#type == pb::EventType::Accepted as i32
        && event.index == receipt.log_index
        && event.message_id == message_id
        && event.sender == sender
        && event.ciphertext_sha256 == ciphertext_sha256
        && cp.size > receipt.log_index;
    if !right {
        return Err(ReceiptError::WrongEntry);
    }
    tlog::verify_inclusion(
        receipt.log_index,
        cp.size,
        &tlog::leaf_hash(&receipt.log_entry),
        &hashes(&receipt.inclusion_proof),
        &cp.root,
    )
    .map_err(|_| ReceiptError::NotIncluded)
}

/// A receipt in full as JSON (what the daemon's status files and the inbox's copies of sent
/// messages keep): the checkpoint, the inclusion proof and the log entry, so it can be checked
/// later against the log an auditor verifies (`silta audit verify --receipts`).
pub(crate) fn receipt_json(r: &pb::Receipt) -> serde_json::Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::json!({
        "message_id": uuid::Uuid::from_slice(&r.message_id).map(|u| u.to_string()).unwrap_or_default(),
        "sender": r.sender,
        "accepted_at": crate::times::rfc3339(r.accepted_at.as_ref()),
        "log_index": r.log_index,
        "ciphertext_sha256": hex::encode(&r.ciphertext_sha256),
        "checkpoint": r.checkpoint,
        "inclusion_proof": r.inclusion_proof.iter().map(|h| b64.encode(h)).collect::<Vec<_>>(),
        "log_entry": b64.encode(&r.log_entry),
    })
}

/// The receipt in `v` as [`receipt_json`] writes it (the parts a check needs).
pub fn receipt_from_json(v: &serde_json::Value) -> Result<pb::Receipt, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let text = |k: &str| v[k].as_str().unwrap_or_default();
    let log_entry = b64
        .decode(text("log_entry"))
        .map_err(|e| format!("log_entry: {e}"))?;
    if log_entry.is_empty() || text("checkpoint").is_empty() {
        return Err("the receipt carries no log entry or checkpoint (the relay did not flush, or it was kept before receipts were kept in full)".into());
    }
    let inclusion_proof = v["inclusion_proof"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| b64.decode(h.as_str().unwrap_or_default()))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|e| format!("inclusion_proof: {e}"))?
        .unwrap_or_default();
    Ok(pb::Receipt {
        message_id: uuid::Uuid::parse_str(text("message_id"))
            .map(|u| u.as_bytes().to_vec())
            .unwrap_or_default(),
        sender: text("sender").to_owned(),
        log_index: v["log_index"]
            .as_u64()
            .ok_or("the receipt has no log_index")?,
        ciphertext_sha256: hex::decode(text("ciphertext_sha256")).unwrap_or_default(),
        checkpoint: text("checkpoint").to_owned(),
        inclusion_proof,
        log_entry,
        ..Default::default()
    })
}

/// Checks receipts a party holds against the log `verify` last verified (kept in `state_dir`):
/// each receipt's checkpoint must be signed by the log key and be a checkpoint of that log (its
/// root the verified tree's root at its size, so not a split view shown to the sender alone),
/// and its log entry must be the leaf at its index, included by its proof. Returns one line per
/// receipt that does not hold, naming `(source, why)`.
pub fn check_receipts(
    state_dir: &Path,
    log_key: &str,
    receipts: &[(String, pb::Receipt)],
) -> Result<Vec<(String, String)>, AuditError> {
    let leaves: Vec<Hash> = std::fs::read(state_dir.join("leaf-hashes.bin"))
        .map_err(state_err)?
        .chunks(32)
        .filter_map(|c| c.try_into().ok())
        .collect();
    let mut tree = MemoryTree::default();
    for l in &leaves {
        tree.push(*l);
    }
    let mut problems = Vec::new();
    for (source, r) in receipts {
        let why = (|| -> Result<(), String> {
            let cp = tlog::verify_checkpoint(&r.checkpoint, log_key)
                .map_err(|e| format!("its checkpoint is not signed by the log key: {e}"))?;
            if cp.size > tree.len() {
                return Err(format!(
                    "its checkpoint has {} entries, more than the {} verified: verify again later; if it persists, the relay showed the sender another log",
                    cp.size,
                    tree.len()
                ));
            }
            if tree.root(cp.size) != cp.root {
                return Err(format!(
                    "its checkpoint of {} entries is NOT a checkpoint of the verified log (a split view: the sender was shown another log)",
                    cp.size
                ));
            }
            let event = pb::Event::decode(r.log_entry.as_slice())
                .map_err(|_| "its log entry is not an event".to_owned())?;
            if event.index != r.log_index {
                return Err(format!(
                    "its log entry says index {}, the receipt {}",
                    event.index, r.log_index
                ));
            }
            if tree.leaf(r.log_index) != Some(tlog::leaf_hash(&r.log_entry)) {
                return Err(format!(
                    "its log entry is NOT the leaf at index {} of the verified log",
                    r.log_index
                ));
            }
            if event.r#type != pb::EventType::Accepted as i32
                || (!r.message_id.is_empty() && event.message_id != r.message_id)
            {
                return Err("its log entry is not the acceptance of its message".into());
            }
            tlog::verify_inclusion(
                r.log_index,
                cp.size,
                &tlog::leaf_hash(&r.log_entry),
                &hashes(&r.inclusion_proof),
                &cp.root,
            )
            .map_err(|_| "its inclusion proof does not verify".to_owned())
        })();
        if let Err(why) = why {
            problems.push((source.clone(), why));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn event(index: u64) -> pb::Event {
        pb::Event {
            index,
            ..Default::default()
        }
    }

    /// A relay that answers page `n` with `events` events and the token `token(n)`.
    async fn follow(
        events: usize,
        token: impl Fn(usize) -> String,
    ) -> (Result<Vec<pb::Event>, AuditError>, usize) {
        follow_within(MAX_PAGES, MAX_EVENTS, events, token).await
    }

    async fn follow_within(
        max_pages: usize,
        max_events: usize,
        events: usize,
        token: impl Fn(usize) -> String,
    ) -> (Result<Vec<pb::Event>, AuditError>, usize) {
        let calls = Cell::new(0usize);
        let result = all_pages(max_pages, max_events, |_asked| {
            let n = calls.get();
            calls.set(n + 1);
            let answer = pb::QueryResponse {
                events: (0..events as u64).map(event).collect(),
                next_page_token: token(n),
            };
            async move { Ok(answer) }
        })
        .await;
        (result, calls.get())
    }

    #[tokio::test]
    async fn pages_are_followed_until_the_token_is_empty() {
        let (result, calls) = follow(3, |n| {
            if n < 4 {
                format!("t{n}")
            } else {
                String::new()
            }
        })
        .await;
        assert_eq!(result.expect("five pages").len(), 15);
        assert_eq!(calls, 5);
    }

    #[tokio::test]
    async fn a_repeated_page_token_is_refused() {
        let (result, calls) = follow(1, |_| "same".into()).await;
        match result {
            Err(AuditError::Paging(why)) => assert!(why.contains("page token"), "{why}"),
            other => panic!("expected a paging error, got {other:?}"),
        }
        assert_eq!(calls, 2, "refused at the first repeat");
        // A cycle of two tokens too.
        let (result, calls) = follow(1, |n| format!("t{}", n % 2)).await;
        assert!(matches!(result, Err(AuditError::Paging(_))));
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn endless_fresh_tokens_stop_after_max_pages() {
        let (result, calls) = follow(0, |n| format!("t{n}")).await;
        match result {
            Err(AuditError::Paging(why)) => assert!(why.contains("pages"), "{why}"),
            other => panic!("expected a paging error, got {other:?}"),
        }
        assert_eq!(calls, MAX_PAGES);
    }

    #[tokio::test]
    async fn too_many_events_are_refused() {
        let (result, calls) = follow_within(MAX_PAGES, 100, 51, |n| format!("t{n}")).await;
        match result {
            Err(AuditError::Paging(why)) => assert!(why.contains("events"), "{why}"),
            other => panic!("expected a paging error, got {other:?}"),
        }
        assert_eq!(calls, 2);
    }
}

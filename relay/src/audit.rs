//! The AuditLog service logic: checkpoints, raw entries, proofs and filtered queries over the
//! delivery log. Auditors see everything; centres and the Assistance System only events of their
//! own messages (and their own actions). Reading entries and querying are themselves logged as
//! AUDIT_QUERY events, with the querier and the purpose they stated.

use std::sync::Arc;

use prost::Message as _;
use silta_certs::Role;
use silta_proto::{pb, tlog};

use crate::{
    authz::Permit,
    error::RelayError,
    log::LogSigner,
    store::{EventRef, Store, StoreError},
};

/// Most entries returned by one Entries call.
pub const MAX_ENTRIES: u64 = 10_000;
/// Most events returned by one Query page.
pub const MAX_PAGE: u32 = 500;
/// Most events one Query call examines before returning a page token: an auditor's, and
/// anyone else's (whose events are a small part of the log, so a scan costs more per answer).
const SCAN_LIMIT: u64 = 200_000;
const SCAN_LIMIT_PARTY: u64 = 20_000;
/// Bytes of leaves or events in one response, about (at least one item is always returned).
const MAX_RESPONSE_BYTES: usize = silta_proto::limits::MAX_RESPONSE_BYTES;

/// The audit log logic.
pub struct AuditLog {
    store: Arc<Store>,
    signer: Arc<LogSigner>,
    /// The last receipt checkpoint signed, with its tree size.
    last_signed: std::sync::Mutex<Option<(u64, String)>>,
    /// `storage.shared_receipt_checkpoints`.
    shared_checkpoints: bool,
    /// Seals the page tokens of parties' queries ([`PageTokens`]).
    tokens: PageTokens,
}

impl AuditLog {
    pub(crate) fn new(
        store: Arc<Store>,
        signer: Arc<LogSigner>,
        shared_checkpoints: bool,
    ) -> Result<Self, String> {
        Ok(AuditLog {
            store,
            signer,
            last_signed: Default::default(),
            shared_checkpoints,
            tokens: PageTokens::new()?,
        })
    }

    /// A signed checkpoint of everything on disk.
    pub fn checkpoint(&self) -> Result<pb::CheckpointResponse, RelayError> {
        let size = self.store.durable_size();
        let root = tlog::root(self.store.as_ref(), size)?;
        Ok(pb::CheckpointResponse {
            checkpoint: self.signer.sign(size, root),
            tree_size: size,
            root_hash: root.to_vec(),
        })
    }

    /// The receipt evidence for the event at `index`: a checkpoint of the log as the writer
    /// batch that appended it left it ([`Store::receipt_size`]: shared by the batch's
    /// receipts, signed once, and the same for a repeated request, so a resent receipt is
    /// identical), or with `storage.shared_receipt_checkpoints = false` of exactly `index + 1`
    /// entries; and the inclusion proof of `index` in it.
    pub fn evidence(&self, index: u64) -> Result<(String, Vec<Vec<u8>>), RelayError> {
        let size = if self.shared_checkpoints {
            self.store.receipt_size(index)?
        } else {
            index + 1
        };
        if size > self.store.durable_size() {
            // Not known to be on disk (storage.sync = false): no checkpoint may cover it.
            return Ok((String::new(), Vec::new()));
        }
        let checkpoint = {
            // The batch's first receipt signs; the others wait for it and take its checkpoint.
            let mut last = self.last_signed.lock().unwrap_or_else(|e| e.into_inner());
            match &*last {
                Some((at, signed)) if *at == size => signed.clone(),
                _ => {
                    let root = tlog::root(self.store.as_ref(), size)?;
                    let signed = self.signer.sign(size, root);
                    *last = Some((size, signed.clone()));
                    signed
                }
            }
        };
        let proof = tlog::inclusion_proof(self.store.as_ref(), index, size)?;
        Ok((checkpoint, proof.into_iter().map(|h| h.to_vec()).collect()))
    }

    fn check_size(&self, size: u64, what: &str) -> Result<(), RelayError> {
        let durable = self.store.durable_size();
        if size > durable {
            return Err(RelayError::InvalidArgument(format!(
                "{what} {size} is beyond the log's size {durable}"
            )));
        }
        Ok(())
    }

    /// Inclusion proof of `index` in the tree of `size`.
    pub fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Vec<u8>>, RelayError> {
        self.check_size(size, "tree_size")?;
        if index >= size {
            return Err(RelayError::InvalidArgument(format!(
                "index {index} is not below tree_size {size}"
            )));
        }
        Ok(tlog::inclusion_proof(self.store.as_ref(), index, size)?
            .into_iter()
            .map(|h| h.to_vec())
            .collect())
    }

    /// Consistency proof between the trees of `old` and `new` leaves.
    pub fn consistency(&self, old: u64, new: u64) -> Result<Vec<Vec<u8>>, RelayError> {
        self.check_size(new, "new_size")?;
        if old == 0 || old > new {
            return Err(RelayError::InvalidArgument(format!(
                "old_size must be 1..=new_size, got {old} and {new}"
            )));
        }
        Ok(tlog::consistency_proof(self.store.as_ref(), old, new)?
            .into_iter()
            .map(|h| h.to_vec())
            .collect())
    }

    /// Raw leaves `[start, end)` (auditors only, enforced by the policy table), logged.
    pub async fn entries(
        &self,
        permit: &Permit,
        req: pb::EntriesRequest,
    ) -> Result<pb::EntriesResponse, RelayError> {
        let purpose = Purpose::check(req.purpose_code, &req.purpose)?;
        let durable = self.store.durable_size();
        if req.start > req.end || req.end > durable {
            return Err(RelayError::InvalidArgument(format!(
                "range [{}, {}) is not within the log's size {durable}",
                req.start, req.end
            )));
        }
        let end = req.end.min(req.start.saturating_add(MAX_ENTRIES));
        self.record_query(permit, &purpose, format!("entries [{}, {end})", req.start))
            .await?;
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        for index in req.start..end {
            if bytes >= MAX_RESPONSE_BYTES {
                // The caller asks again from the index after the last one returned.
                break;
            }
            // A missing event is left out, not papered over: the gap is what an auditor must see.
            match self.store.leaf(index)? {
                Some(leaf) => {
                    bytes += leaf.len() + 16;
                    entries.push(pb::LogEntry { index, leaf });
                }
                None => tracing::error!(index, "delivery-log event missing from storage"),
            }
        }
        Ok(pb::EntriesResponse { entries })
    }

    /// Filtered events, paginated; logged with the stated purpose.
    pub async fn query(
        &self,
        permit: &Permit,
        req: pb::QueryRequest,
    ) -> Result<pb::QueryResponse, RelayError> {
        let purpose = Purpose::check(req.purpose_code, &req.purpose)?;
        let filter = req.filter.unwrap_or_default();
        check_filter(&filter)?;
        let me = permit.principal().to_string();
        let auditor = permit.principal().role() == Role::Auditor;
        let start: u64 = if req.page_token.is_empty() {
            0
        } else if auditor {
            req.page_token.parse().map_err(|_| {
                RelayError::InvalidArgument("page_token is not one this relay issued".into())
            })?
        } else {
            self.tokens.open(&req.page_token, &me, &filter)?
        };
        let page = if req.page_size == 0 {
            100
        } else {
            req.page_size.min(MAX_PAGE)
        } as usize;
        // A party's own AUDIT_QUERY event is visible to it: it names the sealed token it gave,
        // never the position inside (which the token hides from it).
        let from = if auditor || req.page_token.is_empty() {
            start.to_string()
        } else {
            format!("page token {}", req.page_token)
        };
        self.record_query(
            permit,
            &purpose,
            format!("query {} from {from}", describe(&filter)),
        )
        .await?;
        let size = self.store.durable_size();
        let limit = if auditor {
            SCAN_LIMIT
        } else {
            SCAN_LIMIT_PARTY
        };
        // A filter naming a message or a case reads only that one's events, from the index
        // (a message has fewer events than its case, so its id is the narrower key); any other
        // filter scans the log. Both examine the same events in the same order for the filter,
        // so the pages are the same.
        let indexed = if !filter.message_id.is_empty() {
            Some((EventRef::Message, filter.message_id.as_slice()))
        } else if !filter.case_ref.is_empty() {
            Some((EventRef::Case, filter.case_ref.as_slice()))
        } else {
            None
        };
        let mut candidates: Box<dyn Iterator<Item = Result<u64, StoreError>>> = match indexed {
            Some((by, id)) if start < size => Box::new(self.store.events_by(by, id, start, size)),
            Some(_) => Box::new(std::iter::empty()),
            None => Box::new((start..size).map(Ok)),
        };
        let mut events = Vec::new();
        let mut bytes = 0usize;
        let mut next = start;
        let mut examined = 0u64;
        while events.len() < page && bytes < MAX_RESPONSE_BYTES && examined < limit {
            let Some(index) = candidates.next().transpose()? else {
                // Nothing more in the log (or no more events of the message or case in it).
                next = size;
                break;
            };
            let Some(e) = self.store.event(index)? else {
                next = index;
                break;
            };
            next = index + 1;
            examined += 1;
            let visible = auditor || e.actor == me || e.sender == me || e.recipients.contains(&me);
            if !visible {
                continue;
            }
            if matches(&e, &filter) {
                bytes += e.encoded_len() + 8;
                events.push(e);
            }
        }
        Ok(pb::QueryResponse {
            events,
            next_page_token: if next >= size {
                String::new()
            } else if auditor {
                next.to_string()
            } else {
                self.tokens.seal(next, &me, &filter)?
            },
        })
    }

    /// Logs a read of the log. `what` is built only from bounded, checked input (see
    /// [`check_filter`] and [`Purpose::check`]), so the event stays small whatever was asked.
    async fn record_query(
        &self,
        permit: &Permit,
        purpose: &Purpose,
        what: String,
    ) -> Result<(), RelayError> {
        let actor = permit.principal().to_string();
        let detail = if purpose.note.is_empty() {
            what
        } else {
            format!("{what}: {}", purpose.note)
        };
        let code = purpose.code;
        self.store
            .write(move |trees| {
                trees.transaction(|tx| {
                    tx.append_event(pb::Event {
                        r#type: pb::EventType::AuditQuery.into(),
                        time: Some(tx.now()),
                        actor: actor.clone(),
                        detail: detail.clone(),
                        purpose: code.into(),
                        ..Default::default()
                    })?;
                    Ok(())
                })
            })
            .await
    }

    /// The verifier key of the log.
    pub fn verifier_key(&self) -> String {
        self.signer.verifier_key()
    }
}

/// The page tokens of parties' queries: where the next page starts, sealed.
///
/// A page of a party's query ends after [`SCAN_LIMIT_PARTY`] examined events, and with a
/// filter naming a case those are the case's events, the party's or not: a plain position
/// would tell the party where in the log the others' events of its case lie. So a party's token
/// is the position encrypted with AES-256-GCM-SIV under a key of this process, bound to the
/// querier and the filter (the associated data). The nonce is fixed: GCM-SIV then encrypts
/// deterministically (the same page of the same query gives the same token, which clients use
/// to notice a loop), revealing only that two tokens are equal. A token of another party or
/// another filter, an altered one, or one from before a restart is refused. An auditor, who
/// sees the whole log, gets the plain position.
struct PageTokens {
    key: aws_lc_rs::aead::LessSafeKey,
}

/// Prefix of a sealed page token (a plain one is a decimal number).
const SEALED_TOKEN: &str = "s";

impl PageTokens {
    fn new() -> Result<Self, String> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| format!("the OS's random generator: {e}"))?;
        let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM_SIV, &key)
            .map_err(|_| "the page-token key".to_string())?;
        Ok(PageTokens {
            key: aws_lc_rs::aead::LessSafeKey::new(key),
        })
    }

    fn aad(querier: &str, filter: &pb::QueryFilter) -> Vec<u8> {
        let mut aad = b"silta/v1/page-token\n".to_vec();
        aad.extend_from_slice(querier.as_bytes());
        aad.push(0);
        aad.extend_from_slice(&filter.encode_to_vec());
        aad
    }

    fn seal(
        &self,
        next: u64,
        querier: &str,
        filter: &pb::QueryFilter,
    ) -> Result<String, RelayError> {
        let mut sealed = next.to_be_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key([0; 12]),
                aws_lc_rs::aead::Aad::from(Self::aad(querier, filter)),
                &mut sealed,
            )
            .map_err(|_| RelayError::Unavailable("sealing a page token failed".into()))?;
        Ok(format!("{SEALED_TOKEN}{}", hex::encode(sealed)))
    }

    fn open(
        &self,
        token: &str,
        querier: &str,
        filter: &pb::QueryFilter,
    ) -> Result<u64, RelayError> {
        let refused = || {
            RelayError::InvalidArgument(
                "page_token is not one this relay issued for this query (the same filter, by the same principal); a relay restart also ends a query's paging: start again from the first page".into(),
            )
        };
        let mut sealed = token
            .strip_prefix(SEALED_TOKEN)
            .filter(|t| t.len() == 2 * (8 + 16))
            .and_then(|t| hex::decode(t).ok())
            .ok_or_else(refused)?;
        let plain = self
            .key
            .open_in_place(
                aws_lc_rs::aead::Nonce::assume_unique_for_key([0; 12]),
                aws_lc_rs::aead::Aad::from(Self::aad(querier, filter)),
                &mut sealed,
            )
            .map_err(|_| refused())?;
        let bytes: [u8; 8] = plain.try_into().map_err(|_| refused())?;
        Ok(u64::from_be_bytes(bytes))
    }
}

/// A compact, content-free description of a filter, for the AUDIT_QUERY event.
fn describe(f: &pb::QueryFilter) -> String {
    let mut parts = Vec::new();
    if !f.principal.is_empty() {
        parts.push(format!("principal={}", f.principal));
    }
    if !f.case_ref.is_empty() {
        parts.push(format!("case={}", hex::encode(&f.case_ref)));
    }
    if !f.message_id.is_empty() {
        parts.push(format!("message={}", hex::encode(&f.message_id)));
    }
    if !f.kinds.is_empty() {
        parts.push(format!("kinds={:?}", f.kinds));
    }
    if !f.types.is_empty() {
        parts.push(format!("types={:?}", f.types));
    }
    if let Some(t) = f.from {
        parts.push(format!("from={}", t.seconds));
    }
    if let Some(t) = f.until {
        parts.push(format!("until={}", t.seconds));
    }
    format!("[{}]", parts.join(" "))
}

/// A checked purpose: a known code and a short, printable note ([`Purpose::check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    code: pb::PurposeCode,
    note: String,
}

impl Purpose {
    /// Checks a query's stated purpose: `code` must be a known [`pb::PurposeCode`] other than
    /// `Unspecified`; the note, trimmed, must pass [`silta_proto::purpose::check_note`]. Pure.
    pub fn check(code: i32, note: &str) -> Result<Purpose, RelayError> {
        let code = match pb::PurposeCode::try_from(code) {
            Ok(c) if c != pb::PurposeCode::Unspecified => c,
            _ => {
                let names: Vec<&str> = silta_proto::purpose::CODES
                    .iter()
                    .map(|(_, n)| *n)
                    .collect();
                return Err(RelayError::InvalidArgument(format!(
                    "purpose_code is required: say why the log is read ({}); it is recorded in the log",
                    names.join(", ")
                )));
            }
        };
        let note = note.trim();
        silta_proto::purpose::check_note(note).map_err(RelayError::InvalidArgument)?;
        Ok(Purpose {
            code,
            note: note.to_owned(),
        })
    }
}

/// Bounds on a filter, checked before anything is logged: the AUDIT_QUERY event describes the
/// filter, and the log can never shrink. Pure.
pub fn check_filter(f: &pb::QueryFilter) -> Result<(), RelayError> {
    let invalid = |m: String| Err(RelayError::InvalidArgument(m));
    if !f.principal.is_empty() && f.principal.parse::<silta_certs::Principal>().is_err() {
        return invalid(format!(
            "filter.principal is not a principal <role>/<id> ({} bytes)",
            f.principal.len()
        ));
    }
    for (field, value) in [("case_ref", &f.case_ref), ("message_id", &f.message_id)] {
        if !value.is_empty() && value.len() != crate::mailbox::ID_LEN {
            return invalid(format!(
                "filter.{field} must be {} bytes, got {}",
                crate::mailbox::ID_LEN,
                value.len()
            ));
        }
    }
    const MAX: usize = silta_proto::limits::MAX_FILTER_VALUES;
    if f.kinds.len() > MAX || f.types.len() > MAX {
        return invalid(format!(
            "filter has {} kinds and {} types; at most {MAX} of each",
            f.kinds.len(),
            f.types.len()
        ));
    }
    if f.kinds
        .iter()
        .any(|k| pb::MessageKind::try_from(*k).is_err())
        || f.types.iter().any(|t| pb::EventType::try_from(*t).is_err())
    {
        return invalid("filter names an unknown kind or event type".into());
    }
    Ok(())
}

fn matches(e: &pb::Event, f: &pb::QueryFilter) -> bool {
    let secs = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| (t.seconds, t.nanos));
    if let (Some(from), Some(t)) = (secs(&f.from), secs(&e.time))
        && t < from
    {
        return false;
    }
    if let (Some(until), Some(t)) = (secs(&f.until), secs(&e.time))
        && t >= until
    {
        return false;
    }
    let involves = |p: &String| e.actor == *p || e.sender == *p || e.recipients.contains(p);
    if !f.principal.is_empty() && !involves(&f.principal) {
        return false;
    }
    if !f.case_ref.is_empty() && e.case_ref != f.case_ref {
        return false;
    }
    if !f.message_id.is_empty() && e.message_id != f.message_id {
        return false;
    }
    if !f.kinds.is_empty() && !f.kinds.contains(&e.kind) {
        return false;
    }
    if !f.types.is_empty() && !f.types.contains(&e.r#type) {
        return false;
    }
    true
}

/// Decodes a leaf (for tools and tests).
pub fn decode_leaf(leaf: &[u8]) -> Option<pb::Event> {
    pb::Event::decode(leaf).ok()
}

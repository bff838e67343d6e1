//! Storage: one sled database, its trees declared in one list, and a single writer thread that
//! commits every change in a transaction and shares fsyncs between concurrent writers.
//!
//! # Trees (`<key>_<value>`)
//! | tree | key | value |
//! |---|---|---|
//! | `msgid_meta` | message id (16 bytes) | [`MessageRecord`]: sender, envelope without ciphertext, acceptance |
//! | `msgid_ciphertext` | message id | the ciphertext, sealed at rest under the message's own key (see [`crate::keyring`]) |
//! | `msgidrecipient_state` | message id ‖ recipient | [`RecipientRecord`]: delivery state of one copy |
//! | `principalseq_item` | principal ‖ 0x00 ‖ seq (u64 BE) | [`ItemRecord`]: one mailbox item |
//! | `index_event` | log index (u64 BE) | encoded `silta.v1.Event` |
//! | `principal_record` | principal | [`PrincipalRecord`]: registration, mailbox counters |
//! | `name_counter` | counter name; or `receipt-size/` ‖ size (u64 BE), `withdrawing/` ‖ case reference | u64 BE; empty for the two marks (receipt batch ends, cases with a withdrawal under way) |
//! | `principalseq_bundle` | principal ‖ 0x00 ‖ seq (u64 BE) | [`BundleRecord`]: a published key bundle |
//! | `levelindex_hash` | level (u8) ‖ index (u64 BE) | hash of a perfect subtree of the event log (RFC 9162) |
//! | `principaldevice_device` | principal ‖ 0x00 ‖ device id | [`DeviceRecord`]: a device's latest bundle, its certificate, its bundle count |
//! | `timemsgid_due` | unix seconds (u64 BE) ‖ message id | empty: the retention sweeper looks at the message from then on (see `retention`) |
//! | `caseref_case` | case reference (16 bytes) | [`crate::cases::CaseRecord`]: who takes part in the case, who left, consent state (metadata only; see DESIGN.md) |
//!
//! # Durability
//! Every change goes through [`Store::write`]: the closure runs on the writer thread inside one
//! sled transaction over all trees, so a change and the event that records it are written
//! together or not at all. After a batch of closures the writer flushes once (`Db::flush`, an
//! fsync) and only then completes their futures: nothing is acknowledged before it is on disk,
//! and concurrent requests share one fsync (group commit). The single writer also gives the
//! event log a total order with contiguous indices. Before that flush it syncs the key file of
//! the per-message storage keys ([`crate::keyring`]), so a message on disk never lacks its key
//! and a purge on disk never leaves its key behind.
//!
//! # Fail-stop
//! A failed flush or write, a writer thread that died, or a write not on disk within the write
//! timeout leaves the database in an unknown state. The store then fails for good: the writer
//! stops, every later write fails with [`StoreError::Failed`] at once, and [`Store::failure`]
//! tells the relay, which stops serving. Nothing that was acknowledged is affected: an
//! acknowledgement is only given after a flush that succeeded.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use prost::Message as _;
use prost_types::Timestamp;
use sha2::Digest as _;
use silta_certs::Principal;
use silta_proto::pb;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional as _, TransactionalTree,
};
use tokio::sync::{oneshot, watch};

use crate::{
    clock::{Clock, SystemClock},
    disk::DiskSpace,
    error::RelayError,
    keyring::Keyring,
};

/// Every tree of the database. Adding one here is the only way to add one (a backup holds
/// exactly these, and the message-key file beside them).
pub const TREES: [&str; 12] = [
    "msgid_meta",
    "msgid_ciphertext",
    "msgidrecipient_state",
    "principalseq_item",
    "index_event",
    "principal_record",
    "name_counter",
    "principalseq_bundle",
    "levelindex_hash",
    "principaldevice_device",
    "timemsgid_due",
    "caseref_case",
];

/// The index of the delivery log by case and by message: `b'c' ‖ case_ref ‖ index` and
/// `b'm' ‖ message_id ‖ index` (ids of [`crate::mailbox::ID_LEN`] bytes, index big-endian) → empty,
/// for every event with such a reference, written in the transaction that appends the event.
/// Derived from `index_event` and so not one of [`TREES`] (not in backups): its own marker
/// [`REF_INDEX_BUILT`] (written last) says it is complete, and an open without it builds it
/// from the log.
pub const REF_INDEX_TREE: &str = "refindex_event";
/// The key in [`REF_INDEX_TREE`] whose presence says the index covers the whole log. It sorts
/// after every index key (they start with `c` or `m`).
const REF_INDEX_BUILT: &[u8] = b"\xffbuilt";

/// Which reference of an event [`Store::events_by`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventRef {
    /// The event's `case_ref`.
    Case,
    /// The event's `message_id`.
    Message,
}

impl EventRef {
    fn prefix(self) -> u8 {
        match self {
            EventRef::Case => b'c',
            EventRef::Message => b'm',
        }
    }
}

/// `prefix ‖ id ‖ index`, a key of [`REF_INDEX_TREE`].
fn ref_key(by: EventRef, id: &[u8], index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len() + 8);
    k.push(by.prefix());
    k.extend_from_slice(id);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The index keys of `event` (at `event.index`): only fixed-size references, so a key's id part
/// is unambiguous (a filter names ids of exactly that size, see [`crate::audit::check_filter`]).
fn ref_keys(event: &pb::Event) -> impl Iterator<Item = Vec<u8>> + '_ {
    [
        (EventRef::Case, &event.case_ref),
        (EventRef::Message, &event.message_id),
    ]
    .into_iter()
    .filter(|(_, id)| id.len() == crate::mailbox::ID_LEN)
    .map(|(by, id)| ref_key(by, id, event.index))
}

/// sled's page cache, in bytes. The hot set (recent events and subtree hashes, the mailboxes'
/// heads, principals) is small; the rest of a large log is read from disk when an auditor asks.
/// A performance setting, not a memory bound: sled 0.34 keeps its whole page table in memory
/// (about 500 bytes per stored message, see docs/PERFORMANCE.md), whatever this cap says.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// Most writes committed under one fsync.
const MAX_BATCH: usize = 256;
/// Most jobs run in one shared sled transaction (see `run_tx_jobs`).
const MAX_SHARED: usize = 64;

/// A storage failure. Cloneable, because one failed flush fails every write of its batch.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled reported an error.
    #[error("database error: {0}")]
    Sled(Arc<sled::Error>),
    /// A stored record does not decode: the database is damaged.
    #[error("corrupt record in {tree}: {detail}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// What failed.
        detail: String,
    },
    /// The store was shut down.
    #[error("store is closed")]
    Closed,
    /// The store failed earlier (see [`Store::failure`]) and takes no more writes.
    #[error("store has failed and takes no more writes")]
    Failed,
    /// A write was not on disk within the write timeout.
    #[error("write not on disk within {0:?}")]
    TimedOut(Duration),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Sled(Arc::new(e))
    }
}

impl From<sled::Error> for RelayError {
    fn from(e: sled::Error) -> Self {
        RelayError::Store(e.into())
    }
}

/// Metadata of an accepted message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MessageRecord {
    /// The sender, `<role>/<id>`, from its certificate.
    #[prost(string, tag = "1")]
    pub sender: String,
    /// The envelope as sent, with `ciphertext` emptied (it lives in its own tree).
    #[prost(message, optional, tag = "2")]
    pub envelope: Option<pb::Envelope>,
    /// When the relay accepted it.
    #[prost(message, optional, tag = "3")]
    pub accepted_at: Option<Timestamp>,
    /// Index of the ACCEPTED event.
    #[prost(uint64, tag = "4")]
    pub log_index: u64,
    /// Ciphertext size in bytes.
    #[prost(uint64, tag = "5")]
    pub ciphertext_size: u64,
    /// The urgent-expiry alert was raised (urgent and emergency messages only).
    #[prost(bool, tag = "6")]
    pub alerted: bool,
    /// When the ciphertext was purged (absent while it is kept).
    #[prost(message, optional, tag = "7")]
    pub purged_at: Option<Timestamp>,
    /// Index of the PURGED event.
    #[prost(uint64, tag = "8")]
    pub purge_index: u64,
    /// Slot + 1 of the key the stored ciphertext is sealed under in the key file
    /// ([`crate::keyring`]); 0: stored in the clear (written before keys existed).
    #[prost(uint64, tag = "9")]
    pub key_slot: u64,
    /// Seqs of the status items about this message put into the sender's mailbox; those still
    /// there go with the metadata (`retention.keep_metadata_s`).
    #[prost(uint64, repeated, tag = "10")]
    pub status_seqs: Vec<u64>,
}

/// The delivery state of one recipient's copy of a message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RecipientRecord {
    /// A `silta.v1.DeliveryState`.
    #[prost(enumeration = "pb::DeliveryState", tag = "1")]
    pub state: i32,
    /// Time of the last change.
    #[prost(message, optional, tag = "2")]
    pub updated_at: Option<Timestamp>,
    /// Seq of the envelope item in the recipient's mailbox.
    #[prost(uint64, tag = "3")]
    pub mailbox_seq: u64,
    /// For REJECTED.
    #[prost(enumeration = "pb::RejectionReason", tag = "4")]
    pub rejection_reason: i32,
    /// For REJECTED.
    #[prost(string, tag = "5")]
    pub detail: String,
    /// Index of the event of the last change.
    #[prost(uint64, tag = "6")]
    pub log_index: u64,
    /// For ACKNOWLEDGED: the recipient device's signature.
    #[prost(bytes = "vec", tag = "7")]
    pub ack_signature: Vec<u8>,
    /// For ACKNOWLEDGED: the device that signed.
    #[prost(string, tag = "8")]
    pub ack_device: String,
    /// For UNDELIVERABLE: a `silta.v1.UndeliverableReason`.
    #[prost(enumeration = "pb::UndeliverableReason", tag = "9")]
    pub undeliverable_reason: i32,
    /// The message id of the one re-send of this copy (`Envelope.resend_of`), once accepted:
    /// a copy is re-sent at most once.
    #[prost(bytes = "vec", tag = "10")]
    pub resent_as: Vec<u8>,
    /// The device (desk) whose acknowledgement or rejection decided the copy (empty: decided
    /// without a device, or not decided).
    #[prost(string, tag = "11")]
    pub decided_by: String,
}

/// One mailbox item: an envelope for the owner, or a status event about one it sent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ItemRecord {
    /// Set for an envelope item.
    #[prost(bytes = "vec", tag = "1")]
    pub message_id: Vec<u8>,
    /// Set for a status item.
    #[prost(message, optional, tag = "2")]
    pub status: Option<pb::StatusEvent>,
    /// Devices of the owner done with the item (they acknowledged or rejected the envelope, or
    /// confirmed it with `done_seq` / `status_seq`): it is no longer streamed to them. The item
    /// is removed once every live device (published, not retired) is in here, or when
    /// `retention.handled_item_days` passed since [`ItemRecord::handled_at`].
    #[prost(string, repeated, tag = "3")]
    pub done_devices: Vec<String>,
    /// Unix seconds when the item was first done with (an envelope: its copy acknowledged or
    /// rejected; a status item: confirmed by a first device); 0 while nobody is. The
    /// `retention.handled_item_days` hold runs from here.
    #[prost(int64, tag = "4")]
    pub handled_at: i64,
}

/// What the relay knows about a principal.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PrincipalRecord {
    /// First authentication.
    #[prost(message, optional, tag = "1")]
    pub registered_at: Option<Timestamp>,
    /// Next mailbox seq (seqs start at 1).
    #[prost(uint64, tag = "2")]
    pub next_seq: u64,
    /// Unacknowledged envelopes in the mailbox.
    #[prost(uint64, tag = "3")]
    pub pending: u64,
    /// Next key-bundle seq (seqs start at 1).
    #[prost(uint64, tag = "4")]
    pub next_bundle_seq: u64,
    /// Devices that have published keys and are not retired.
    #[prost(uint64, tag = "5")]
    pub devices: u64,
    /// Latest authentication seen (updated at most once a minute; see [`crate::registry`]).
    #[prost(message, optional, tag = "6")]
    pub last_seen: Option<Timestamp>,
    /// Serial (hex) of the certificate it last authenticated with.
    #[prost(string, tag = "7")]
    pub cert_serial: String,
    /// That certificate's notAfter (unix seconds).
    #[prost(int64, tag = "8")]
    pub cert_not_after: i64,
    /// Disabled by the admin: every request refused, sends to it refused.
    #[prost(bool, tag = "9")]
    pub disabled: bool,
    /// When it was disabled (last time).
    #[prost(message, optional, tag = "10")]
    pub disabled_at: Option<Timestamp>,
    /// The admin's stated reason.
    #[prost(string, tag = "11")]
    pub disabled_reason: String,
    /// Index of the PRINCIPAL_DISABLED event (while disabled).
    #[prost(uint64, tag = "12")]
    pub disabled_index: u64,
    /// SHA-256 of every certificate whose devices the admin retired (`Admin.RetireDevices`):
    /// every request made with one of them is refused, revoked or not.
    #[prost(bytes = "vec", repeated, tag = "13")]
    pub retired_certs: Vec<Vec<u8>>,
}

/// A device of a principal in the key directory.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceRecord {
    /// Bundles this device has published.
    #[prost(uint64, tag = "1")]
    pub bundles: u64,
    /// Seq (in `principalseq_bundle`) of its latest bundle.
    #[prost(uint64, tag = "2")]
    pub latest_seq: u64,
    /// SHA-256 of the certificate the device id is bound to (the one that published it).
    #[prost(bytes = "vec", tag = "3")]
    pub cert_sha256: Vec<u8>,
    /// That certificate's serial (hex).
    #[prost(string, tag = "4")]
    pub cert_serial: String,
    /// That certificate's notAfter (unix seconds).
    #[prost(int64, tag = "5")]
    pub cert_not_after: i64,
    /// Fingerprint of the device's keys in its latest bundle (age recipient and Ed25519 key).
    #[prost(string, tag = "6")]
    pub key_fingerprint: String,
    /// Retired by the admin (`Admin.RetireDevices`): its bundle is no longer active. A new
    /// certificate of the principal may publish under the same id, which starts it afresh.
    #[prost(bool, tag = "7")]
    pub retired: bool,
    /// Log index of the first KEY_PUBLISHED event of the device's current keys-and-certificate
    /// binding: a message accepted after it may have been sealed to this device (0: before the
    /// field existed, treated as always).
    #[prost(uint64, tag = "8")]
    pub since_index: u64,
    /// Log index of the KEY_REVOKED event that retired it (while `retired`; 0: not retired, or
    /// retired before the field existed).
    #[prost(uint64, tag = "9")]
    pub retired_index: u64,
}

/// A published key bundle, kept forever (key transparency).
#[derive(Clone, PartialEq, prost::Message)]
pub struct BundleRecord {
    /// The bundle as published.
    #[prost(message, optional, tag = "1")]
    pub bundle: Option<pb::KeyBundle>,
    /// When the relay accepted it.
    #[prost(message, optional, tag = "2")]
    pub published_at: Option<Timestamp>,
    /// Index of the KEY_PUBLISHED event.
    #[prost(uint64, tag = "3")]
    pub log_index: u64,
    /// The device it is for.
    #[prost(string, tag = "4")]
    pub device_id: String,
    /// The certificate's notAfter (unix seconds): the bundle is inactive after it.
    #[prost(int64, tag = "5")]
    pub cert_not_after: i64,
    /// Log index at which it stopped being its device's current keys: the device's next
    /// bundle's KEY_PUBLISHED or the KEY_REVOKED that retired the device (0: still current, or
    /// superseded before the field existed).
    #[prost(uint64, tag = "6")]
    pub superseded_at_index: u64,
}

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A write: runs on the writer thread, returns how to complete it after the flush and, if sled
/// itself failed, the error (which fails the store).
type PlainJob = Box<dyn FnOnce(&Trees) -> (Completion, Option<StoreError>) + Send>;

/// A queued write.
enum Job {
    /// Runs on its own ([`Store::write`]).
    Plain(PlainJob),
    /// Runs inside the transaction the writer shares between the consecutive transactional
    /// jobs of a batch ([`Store::write_tx`]).
    Tx(Box<dyn TxJob>),
}

/// A write that runs inside the writer's shared transaction.
trait TxJob: Send {
    /// Makes the job's changes in `tx` and keeps its value. May run more than once (the shared
    /// transaction is run again without a job another job's refusal aborted).
    fn run(&self, tx: &Tx<'_>) -> TxResult<()>;
    /// How to answer once the batch is on disk (or not): with the kept value, or with the job's
    /// refusal `refused` (the abort of its own transaction, which changed nothing).
    fn finish(self: Box<Self>, refused: Option<RelayError>) -> Completion;
}

struct TxJobOf<T, F> {
    f: F,
    value: std::cell::RefCell<Option<T>>,
    reply: oneshot::Sender<Result<T, RelayError>>,
}

impl<T, F> TxJob for TxJobOf<T, F>
where
    F: Fn(&Tx<'_>) -> TxResult<T> + Send,
    T: Send + 'static,
{
    fn run(&self, tx: &Tx<'_>) -> TxResult<()> {
        let value = (self.f)(tx)?;
        *self.value.borrow_mut() = Some(value);
        Ok(())
    }

    fn finish(self: Box<Self>, refused: Option<RelayError>) -> Completion {
        let TxJobOf { value, reply, .. } = *self;
        let value = value.into_inner();
        Box::new(move |flushed: Result<(), StoreError>| {
            let _ = reply.send(match (refused, value, flushed) {
                (Some(e), _, _) => Err(e),
                (None, Some(v), Ok(())) => Ok(v),
                (None, _, Err(e)) => Err(RelayError::Store(e)),
                (None, None, Ok(())) => Err(RelayError::Store(StoreError::Closed)),
            });
        })
    }
}

/// Runs the transactional jobs `jobs` (consecutive in the queue) in as few sled transactions
/// as their refusals allow: all in one, and when a job aborts (a refusal: NotFound,
/// RateLimited, ...) the transaction is dropped, that job answered with its refusal, and the
/// jobs before it and after it run again as two transactions. Each job thus sees exactly the
/// changes of the jobs before it that are committed, as if each ran alone in queue order.
/// Returns the jobs' completions and the sled error that failed the batch, if any.
fn run_tx_jobs(trees: &Trees, jobs: Vec<Box<dyn TxJob>>) -> (Vec<Completion>, Option<StoreError>) {
    let mut refused: Vec<Option<RelayError>> = jobs.iter().map(|_| None).collect();
    let mut fatal = None;
    // (range, shared): shared ranges of at most MAX_SHARED jobs run in one transaction (which
    // holds sled's global write lock while its jobs run: the cap bounds how long readers wait
    // and how much the transaction's overlay holds). After a refusal, the jobs before it (known
    // to succeed) run again in one transaction and the jobs after it one by one, as before the
    // sharing: every job runs at most three times whatever a participant sends, so refused
    // requests cannot make the writer's work grow with the square of a batch.
    let mut ranges = std::collections::VecDeque::new();
    let mut at = 0;
    while at < jobs.len() {
        let end = (at + MAX_SHARED).min(jobs.len());
        ranges.push_back((at..end, true));
        at = end;
    }
    while let Some((range, shared)) = ranges.pop_front() {
        if range.is_empty() {
            continue;
        }
        if !shared && range.len() > 1 {
            // One transaction per job, in queue order.
            for i in range.rev() {
                ranges.push_front((i..i + 1, true));
            }
            continue;
        }
        let failed_at = std::cell::Cell::new(None);
        let result = trees.transaction(|tx| {
            // A retried attempt starts afresh.
            failed_at.set(None);
            for i in range.clone() {
                if let Err(e) = jobs[i].run(tx) {
                    failed_at.set(Some(i));
                    return Err(e);
                }
            }
            Ok(())
        });
        match (result, failed_at.get()) {
            (Ok(()), _) => {}
            // sled itself failed: the store's state is unknown, nothing is acknowledged.
            (Err(RelayError::Store(e @ StoreError::Sled(_))), _) => {
                fatal = Some(e);
                break;
            }
            (Err(e), Some(i)) => {
                refused[i] = Some(e);
                ranges.push_front((i + 1..range.end, false));
                ranges.push_front((range.start..i, true));
            }
            // Not a job's abort (cannot happen): fail the batch rather than guess.
            (Err(e), None) => {
                fatal = Some(StoreError::Sled(Arc::new(sled::Error::ReportableBug(
                    format!("shared transaction failed outside its jobs: {e}"),
                ))));
                break;
            }
        }
    }
    let completions = jobs
        .into_iter()
        .zip(refused)
        .map(|(job, refused)| job.finish(refused))
        .collect();
    (completions, fatal)
}

/// Why the store failed, once it has; never cleared.
type Failure = watch::Sender<Option<Arc<str>>>;

/// Marks the store failed (the first reason wins) and says so in the log once.
fn fail(failure: &Failure, reason: String) {
    failure.send_if_modified(|f| {
        if f.is_some() {
            return false;
        }
        tracing::error!(reason = %reason, "storage failed; no more writes (fail-stop)");
        *f = Some(reason.into());
        true
    });
}

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Flush before completing a write. `false` loses acknowledged writes on a crash
    /// (benchmarks only).
    pub sync: bool,
    /// A write not completed within this fails the store.
    pub write_timeout: Duration,
    /// Sends are refused below this many free bytes on the filesystem (0: no check).
    pub min_free_bytes: u64,
    /// Where the store reads the time of day.
    pub clock: Arc<dyn Clock>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            sync: true,
            write_timeout: Duration::from_secs(30),
            min_free_bytes: 0,
            clock: Arc::new(SystemClock),
        }
    }
}

/// The open trees, handed to write closures on the writer thread.
pub struct Trees {
    meta: sled::Tree,
    ciphertext: sled::Tree,
    state: sled::Tree,
    items: sled::Tree,
    events: sled::Tree,
    principals: sled::Tree,
    counters: sled::Tree,
    bundles: sled::Tree,
    hashes: sled::Tree,
    devices: sled::Tree,
    due: sled::Tree,
    cases: sled::Tree,
    /// [`REF_INDEX_TREE`]
    refs: sled::Tree,
    clock: Arc<dyn Clock>,
    keyring: Arc<Keyring>,
}

/// The database.
pub struct Store {
    db: sled::Db,
    trees: Arc<Trees>,
    durable_size: Arc<AtomicU64>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    failure: Arc<Failure>,
    write_timeout: Duration,
    /// When the writer started the batch it is working on, as ms since `epoch` + 1; 0 while
    /// idle. A write that waits long is only a failure if the writer is stuck, not if it is
    /// busy with a backlog (which a participant could cause on purpose).
    busy_since: Arc<AtomicU64>,
    epoch: std::time::Instant,
    space: Arc<DiskSpace>,
    /// Dropped to stop the free-space thread.
    space_stop: Mutex<Option<mpsc::Sender<()>>>,
    /// Subtree hashes read for roots and proofs.
    subtree_cache: SubtreeCache,
}

/// A small direct-mapped cache of the perfect-subtree hashes that roots and proofs read
/// ([`silta_proto::tlog::HashSource`]). Every receipt's inclusion proof reads about log2(n)
/// of them, mostly the same ones as the receipts before it (the upper levels and the right
/// edge of the tree), and each read from sled walks its tree. A cached hash can never be
/// stale: a subtree hash is written once, when its last leaf is appended, and is never
/// rewritten or removed (retention purges content, not the log); only hashes of committed
/// transactions are read outside the writer, so only those get here.
struct SubtreeCache {
    slots: Box<[Mutex<Option<CachedSubtree>>]>,
}

/// (level, index, hash) of one cached subtree.
type CachedSubtree = (u8, u64, silta_proto::tlog::Hash);

/// Slots of [`SubtreeCache`]: 4096 × about 56 bytes. A proof in a log of 2^40 entries reads
/// at most 80 hashes, so the hot set of a batch of receipts fits many times over.
const SUBTREE_CACHE_SLOTS: usize = 4096;
const _: () = assert!(SUBTREE_CACHE_SLOTS.is_power_of_two() && SUBTREE_CACHE_SLOTS > 1);

impl SubtreeCache {
    fn new() -> Self {
        SubtreeCache {
            slots: (0..SUBTREE_CACHE_SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }

    fn slot(&self, level: u8, index: u64) -> &Mutex<Option<CachedSubtree>> {
        // Fibonacci hashing of (level, index): neighbouring subtrees land far apart.
        let key = index ^ (u64::from(level) << 56);
        let at =
            key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SUBTREE_CACHE_SLOTS.trailing_zeros());
        &self.slots[at as usize]
    }

    fn get(&self, level: u8, index: u64) -> Option<silta_proto::tlog::Hash> {
        match *self
            .slot(level, index)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
        {
            Some((l, i, hash)) if l == level && i == index => Some(hash),
            _ => None,
        }
    }

    fn put(&self, level: u8, index: u64, hash: silta_proto::tlog::Hash) {
        *self
            .slot(level, index)
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((level, index, hash));
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// How the relay opens sled (the same for serving and for [`refresh_recovery_snapshot`]).
fn sled_config(dir: &std::path::Path) -> sled::Config {
    sled::Config::new()
        .path(dir)
        // sled's default page cache is 1 GiB: with a large log it would grow towards that.
        .cache_capacity(CACHE_BYTES)
        // Our writer flushes explicitly; the background flusher only adds writes.
        .flush_every_ms(None)
}

/// Lets sled record a recovery snapshot that covers everything in the closed database in
/// `dir`, so that the next start reads that snapshot instead of replaying the log.
///
/// sled 0.34 writes its snapshot (the page table: where on disk each page lives) only while
/// it opens a database, after replaying every log segment written since the previous snapshot
/// (`read_snapshot_or_default`; `Config::snapshot_after_ops` does nothing since 0.31, and
/// neither `Db::flush` nor dropping the database writes one). So a start after a long run
/// replays that whole run: 10 s for 100k messages. Opening and closing the database once
/// after a clean stop moves that replay to the stop, where nobody waits for it; the next start
/// only reads the snapshot. It changes no data: it is the recovery every start does, and the
/// snapshot is written to a temporary file, synced and renamed by sled. After a crash the next
/// start still replays what was written since the last start or clean stop.
///
/// Fails (changing nothing) if the database is still open, in this process or another.
pub fn refresh_recovery_snapshot(dir: &std::path::Path) -> Result<(), StoreError> {
    // Never create a database: the folder may have been moved away (a restore being prepared)
    // since the relay stopped.
    if !dir.join("conf").is_file() || !dir.join("db").is_file() {
        return Err(StoreError::Sled(Arc::new(sled::Error::Unsupported(
            format!(
                "no database in {} any more; nothing to refresh",
                dir.display()
            ),
        ))));
    }
    let db = sled_config(dir).open()?;
    drop(db);
    // sled writes the snapshot with the umask's mode (inside the 0700 data folder): every file
    // of the data folder is 0600, as at start.
    crate::datadir::restrict(dir).map_err(|e| {
        StoreError::Sled(Arc::new(sled::Error::Io(std::io::Error::other(
            e.to_string(),
        ))))
    })
}

impl Store {
    /// Opens (or creates) the database in `dir` and starts the writer thread. With `sync` false
    /// writes are acknowledged before they reach the disk (benchmarks only).
    pub fn open(dir: &std::path::Path, sync: bool) -> Result<Self, StoreError> {
        Self::open_with(
            dir,
            &StoreOptions {
                sync,
                ..StoreOptions::default()
            },
        )
    }

    /// Opens (or creates) the database in `dir` with `options`, starts the writer thread and
    /// the thread that measures free space.
    pub fn open_with(dir: &std::path::Path, options: &StoreOptions) -> Result<Self, StoreError> {
        let sync = options.sync;
        let db = sled_config(dir).open()?;
        let io = |e| StoreError::Sled(Arc::new(sled::Error::Io(e)));
        let keyring = Arc::new(Keyring::open(&dir.join(KEY_FILE)).map_err(io)?);
        let open = |name: &str| db.open_tree(name);
        let trees = Arc::new(Trees {
            meta: open(TREES[0])?,
            ciphertext: open(TREES[1])?,
            state: open(TREES[2])?,
            items: open(TREES[3])?,
            events: open(TREES[4])?,
            principals: open(TREES[5])?,
            counters: open(TREES[6])?,
            bundles: open(TREES[7])?,
            hashes: open(TREES[8])?,
            devices: open(TREES[9])?,
            due: open(TREES[10])?,
            cases: open(TREES[11])?,
            refs: open(REF_INDEX_TREE)?,
            clock: options.clock.clone(),
            keyring,
        });
        rebuild_device_index(&trees)?;
        rebuild_case_index(&trees)?;
        build_withdrawal_index(&trees)?;
        build_due_index(&trees)?;
        build_ref_index(&trees)?;
        if trees.counters.get(RECEIPT_SIZES_FROM)?.is_none() {
            let size = read_u64(trees.counters.get(COUNTER_EVENTS)?.as_deref())?;
            trees
                .counters
                .insert(RECEIPT_SIZES_FROM, &size.to_be_bytes())?;
        }
        // Events a crash left without their batch end (written, never answered) form one batch.
        end_receipt_batch(&trees.counters)?;
        // Make what sled recovered durable before any checkpoint may cover it (keys first, as
        // before every flush).
        trees.keyring.sync().map_err(io)?;
        db.flush()?;
        let durable_size = Arc::new(AtomicU64::new(read_u64(
            trees.counters.get(COUNTER_EVENTS)?.as_deref(),
        )?));
        let (tx, rx) = mpsc::channel::<Job>();
        let failure: Arc<Failure> = Arc::new(watch::channel(None).0);
        let epoch = std::time::Instant::now();
        let busy_since = Arc::new(AtomicU64::new(0));
        let writer = {
            let trees = trees.clone();
            let db = db.clone();
            let durable = durable_size.clone();
            let failure = failure.clone();
            let busy = Busy {
                since: busy_since.clone(),
                epoch,
            };
            std::thread::Builder::new()
                .name("silta-store-writer".into())
                .spawn(move || {
                    // Declared first, dropped last: a panic anywhere in the loop fails the store.
                    let _death = WriterDeath(failure.clone());
                    writer_loop(&db, &trees, &rx, sync, &durable, &failure, &busy);
                })
                .map_err(io)?
        };
        let space = Arc::new(DiskSpace::new(dir, options.min_free_bytes).map_err(io)?);
        let (space_stop, stopped) = mpsc::channel::<()>();
        if options.min_free_bytes > 0 {
            let space = space.clone();
            std::thread::Builder::new()
                .name("silta-disk-space".into())
                .spawn(move || {
                    // Until the store is shut down or dropped.
                    while let Err(mpsc::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(crate::disk::REFRESH)
                    {
                        if let Err(e) = space.refresh() {
                            tracing::warn!(error = %e, "cannot measure free space; keeping the last figure");
                        }
                    }
                })
                .map_err(io)?;
        }
        Ok(Store {
            db,
            trees,
            durable_size,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            failure,
            write_timeout: options.write_timeout,
            busy_since,
            epoch,
            space,
            space_stop: Mutex::new(Some(space_stop)),
            subtree_cache: SubtreeCache::new(),
        })
    }

    /// Admits a send of `bytes` of ciphertext, or refuses it with `RESOURCE_EXHAUSTED` naming
    /// `storage.min_free_bytes` if it would eat into the free-space reserve.
    pub fn admit_send(&self, bytes: usize) -> Result<(), RelayError> {
        self.space
            .admit((bytes as u64).saturating_add(crate::disk::SEND_OVERHEAD))
    }

    /// Why the store failed, once it has (`None` until then). The receiver wakes when it fails.
    pub fn failure(&self) -> watch::Receiver<Option<Arc<str>>> {
        self.failure.subscribe()
    }

    /// Fails the store for good (the first reason is kept).
    pub fn fail(&self, reason: String) {
        fail(&self.failure, reason);
    }

    fn failed(&self) -> bool {
        self.failure.borrow().is_some()
    }

    /// Runs `f` on the writer thread and completes once its effects are on disk.
    pub async fn write<T, F>(&self, f: F) -> Result<T, RelayError>
    where
        F: FnOnce(&Trees) -> Result<T, RelayError> + Send + 'static,
        T: Send + 'static,
    {
        if self.failed() {
            return Err(StoreError::Failed.into());
        }
        let (tx, rx) = oneshot::channel();
        let job: PlainJob = Box::new(move |trees| {
            let result = f(trees);
            // sled itself failed (not a rule or a corrupt record): the store's state is unknown.
            let fatal = match &result {
                Err(RelayError::Store(e @ StoreError::Sled(_))) => Some(e.clone()),
                _ => None,
            };
            let complete: Completion = Box::new(move |flushed: Result<(), StoreError>| {
                let _ = tx.send(match (result, flushed) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(e)) => Err(RelayError::Store(e)),
                    (Err(e), _) => Err(e),
                });
            });
            (complete, fatal)
        });
        self.submit(Job::Plain(job), rx).await
    }

    /// Runs `f` in a sled transaction on the writer thread and completes once its effects are
    /// on disk. The transaction is shared with the other transactional writes of the batch (one
    /// commit instead of one each); a write `f` aborts changes nothing and gets its error, the
    /// others are unaffected. `f` may run more than once, so it must have no side effects
    /// besides the transaction's.
    pub async fn write_tx<T, F>(&self, f: F) -> Result<T, RelayError>
    where
        F: Fn(&Tx<'_>) -> TxResult<T> + Send + 'static,
        T: Send + 'static,
    {
        if self.failed() {
            return Err(StoreError::Failed.into());
        }
        let (tx, rx) = oneshot::channel();
        let job = Job::Tx(Box::new(TxJobOf {
            f,
            value: std::cell::RefCell::new(None),
            reply: tx,
        }));
        self.submit(job, rx).await
    }

    /// Queues `job` for the writer and waits for its answer on `rx`.
    async fn submit<T>(
        &self,
        job: Job,
        rx: oneshot::Receiver<Result<T, RelayError>>,
    ) -> Result<T, RelayError> {
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|jobs| jobs.send(job).is_ok())
            .unwrap_or(false);
        if !sent {
            return Err(self.closed_or_failed().into());
        }
        // Bounded: a writer stuck in sled (a full disk can hang a flush for ever) must not hang
        // the request, and a batch that takes this long means the store is in trouble. Time
        // spent queued behind other batches while the writer makes progress is not a failure.
        let mut rx = rx;
        loop {
            match tokio::time::timeout(self.write_timeout, &mut rx).await {
                Ok(Ok(result)) => return result,
                Ok(Err(_)) => return Err(self.closed_or_failed().into()),
                Err(_) => {
                    let since = self.busy_since.load(Ordering::SeqCst);
                    let now = self.epoch.elapsed().as_millis() as u64 + 1;
                    let stuck = since != 0
                        && now.saturating_sub(since) >= self.write_timeout.as_millis() as u64;
                    if !stuck && !self.failed() {
                        continue;
                    }
                    self.fail(format!(
                        "a batch of writes was not on disk within storage.write_timeout_ms ({} ms)",
                        self.write_timeout.as_millis()
                    ));
                    return Err(StoreError::TimedOut(self.write_timeout).into());
                }
            }
        }
    }

    /// Runs `f` on the writer thread after flushing everything committed before it, with no
    /// other write running until it returns: a consistent view of every tree that is on disk
    /// (for backups). Writes that arrive meanwhile queue and run afterwards; none is lost.
    ///
    /// `f` must call [`Frozen::progress`] while it makes progress: otherwise, after
    /// `storage.write_timeout_ms`, writers waiting behind it take the store for stuck and fail
    /// it. A sled error while reading fails the store like any write's; `f`'s own errors (the
    /// backup's target) go back to the caller only.
    pub async fn snapshot<T, F>(&self, f: F) -> Result<T, RelayError>
    where
        F: FnOnce(&Frozen<'_>) -> Result<T, RelayError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.db.clone();
        let since = self.busy_since.clone();
        let epoch = self.epoch;
        self.write(move |trees| {
            // Earlier jobs of this batch are committed but not yet flushed: a snapshot must hold
            // nothing that could still be lost. Keys first, as in the writer: a message on disk
            // never lacks its key.
            // The batch's events so far end a receipt batch here: a backup never splits one.
            end_receipt_batch(&trees.counters)?;
            trees.keyring.sync().map_err(key_io)?;
            db.flush()?;
            f(&Frozen {
                trees,
                busy: Busy { since, epoch },
            })
        })
        .await
    }

    fn closed_or_failed(&self) -> StoreError {
        if self.failed() {
            StoreError::Failed
        } else {
            StoreError::Closed
        }
    }

    /// Stops accepting writes, lets the writer finish what is queued, flushes, and waits for it
    /// (as [`Store::close`], with a failure only logged).
    pub fn shutdown(&self) {
        let _ = self.close();
    }

    /// Stops accepting writes, lets the writer finish what is queued, flushes, and waits for it.
    /// Blocks for as long as the writer does, which may be for ever if sled hangs: callers bound
    /// it (the relay runs it on a blocking thread with a deadline). A store that failed is not
    /// flushed again: [`StoreError::Failed`].
    pub fn close(&self) -> Result<(), StoreError> {
        drop(self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take());
        drop(
            self.space_stop
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        if let Some(handle) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = handle.join();
        }
        if self.failed() {
            return Err(StoreError::Failed);
        }
        let finish = || -> Result<(), StoreError> {
            // The writer has stopped: the withdrawal index is whole at this size (the next open
            // trusts it only at the same size; see build_withdrawal_index).
            let size = read_u64(self.trees.counters.get(COUNTER_EVENTS)?.as_deref())?;
            self.trees
                .counters
                .insert(WITHDRAWAL_INDEX_BUILT, &size.to_be_bytes())?;
            self.trees.keyring.sync().map_err(key_io)?;
            self.db.flush()?;
            Ok(())
        };
        finish().map_err(|e| {
            tracing::error!(error = %e, "final flush failed");
            self.fail(format!("the final flush failed: {e}"));
            e
        })?;
        Ok(())
    }

    /// The store's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.trees.clock
    }

    /// Now, by the store's clock, as a protobuf timestamp.
    pub fn now(&self) -> Timestamp {
        self.trees.clock.timestamp()
    }

    // ----- reads (any task) -----

    /// Is `principal` registered?
    pub fn principal_known(&self, principal: &Principal) -> Result<bool, StoreError> {
        Ok(self
            .trees
            .principals
            .contains_key(principal.to_string().as_bytes())?)
    }

    /// Metadata of a message.
    pub fn message(&self, message_id: &[u8]) -> Result<Option<MessageRecord>, StoreError> {
        self.trees
            .meta
            .get(message_id)?
            .map(|v| decode("msgid_meta", &v))
            .transpose()
    }

    /// The ciphertext of a message as it was sent (opened from its sealing at rest); `None`
    /// once purged.
    pub fn ciphertext(&self, message_id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(stored) = self.trees.ciphertext.get(message_id)? else {
            return Ok(None);
        };
        let slot = self.message(message_id)?.map(|m| m.key_slot).unwrap_or(0);
        if slot == 0 {
            return Ok(Some(stored.to_vec()));
        }
        let corrupt = |detail: &str| StoreError::Corrupt {
            tree: "msgid_ciphertext",
            detail: detail.into(),
        };
        let key = self
            .trees
            .keyring
            .get(slot - 1)
            .map_err(|e| StoreError::Sled(Arc::new(sled::Error::Io(e))))?;
        // A purge in flight erases the key first: gone.
        let Some(key) = key else {
            return Ok(None);
        };
        crate::keyring::open(&key, message_id, &stored)
            .map(Some)
            .ok_or_else(|| corrupt("a stored ciphertext does not open with its key"))
    }

    /// The stored bytes of a message's ciphertext as sealed at rest (tests and diagnostics).
    #[doc(hidden)]
    pub fn sealed_ciphertext(&self, message_id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.trees.ciphertext.get(message_id)?.map(|v| v.to_vec()))
    }

    /// Every recipient's state of a message, in recipient order.
    pub fn recipient_states(
        &self,
        message_id: &[u8],
    ) -> Result<Vec<(String, RecipientRecord)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.trees.state.scan_prefix(message_id) {
            let (k, v) = kv?;
            let recipient = String::from_utf8(k[message_id.len()..].to_vec()).map_err(|_| {
                StoreError::Corrupt {
                    tree: "msgidrecipient_state",
                    detail: "recipient is not UTF-8".into(),
                }
            })?;
            out.push((recipient, decode("msgidrecipient_state", &v)?));
        }
        Ok(out)
    }

    /// Up to `limit` items of `principal`'s mailbox with `after_seq < seq <= up_to`, in order.
    pub fn mailbox_items(
        &self,
        principal: &Principal,
        after_seq: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<(u64, ItemRecord)>, StoreError> {
        if up_to <= after_seq {
            return Ok(Vec::new());
        }
        let start = item_key(principal, after_seq.saturating_add(1));
        let end = item_key(principal, up_to.saturating_add(1));
        let mut out = Vec::new();
        for kv in self.trees.items.range(start..end).take(limit) {
            let (k, v) = kv?;
            let seq = u64::from_be_bytes(k[k.len() - 8..].try_into().map_err(|_| {
                StoreError::Corrupt {
                    tree: "principalseq_item",
                    detail: "short key".into(),
                }
            })?);
            out.push((seq, decode("principalseq_item", &v)?));
        }
        Ok(out)
    }

    /// Every registered principal with its record.
    pub fn principals(&self) -> Result<Vec<(String, PrincipalRecord)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.trees.principals.iter() {
            let (k, v) = kv?;
            let name = String::from_utf8(k.to_vec()).map_err(|_| StoreError::Corrupt {
                tree: "principal_record",
                detail: "principal is not UTF-8".into(),
            })?;
            out.push((name, decode("principal_record", &v)?));
        }
        Ok(out)
    }

    /// Up to `limit` registered principals whose name sorts after `after` (from the first if
    /// empty), in name order.
    pub fn principals_after(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, PrincipalRecord)>, StoreError> {
        let mut start = after.as_bytes().to_vec();
        if !start.is_empty() {
            // The smallest key after `after`.
            start.push(0);
        }
        let mut out = Vec::new();
        for kv in self.trees.principals.range(start..).take(limit) {
            let (k, v) = kv?;
            let name = String::from_utf8(k.to_vec()).map_err(|_| StoreError::Corrupt {
                tree: "principal_record",
                detail: "principal is not UTF-8".into(),
            })?;
            out.push((name, decode("principal_record", &v)?));
        }
        Ok(out)
    }

    /// The record of `principal`, if registered.
    pub fn principal(&self, principal: &Principal) -> Result<Option<PrincipalRecord>, StoreError> {
        self.trees
            .principals
            .get(principal.to_string().as_bytes())?
            .map(|v| decode("principal_record", &v))
            .transpose()
    }

    /// A digest of every key and value in every tree: equal digests mean equal contents.
    pub fn content_digest(&self) -> Result<[u8; 32], StoreError> {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        for (name, tree) in self.trees.named() {
            h.update(name.as_bytes());
            for kv in tree.iter() {
                let (k, v) = kv?;
                h.update((k.len() as u64).to_be_bytes());
                h.update(&k);
                h.update((v.len() as u64).to_be_bytes());
                h.update(&v);
            }
        }
        Ok(h.finalize().into())
    }

    /// Every device of `principal` with its record, by device id.
    pub fn devices(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(String, DeviceRecord)>, StoreError> {
        let mut prefix = principal.to_string().into_bytes();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.trees.devices.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let id =
                String::from_utf8(k[prefix.len()..].to_vec()).map_err(|_| StoreError::Corrupt {
                    tree: "principaldevice_device",
                    detail: "device id is not UTF-8".into(),
                })?;
            out.push((id, decode("principaldevice_device", &v)?));
        }
        Ok(out)
    }

    /// Every device of `principal` whose record reads, by device id; a record that does not
    /// decode is logged and left out (so one damaged record does not stop the principal's
    /// mailbox: such a device cannot be used anyway).
    pub fn readable_devices(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(String, DeviceRecord)>, StoreError> {
        let mut prefix = principal.to_string().into_bytes();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.trees.devices.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            match decode::<DeviceRecord>("principaldevice_device", &v) {
                Ok(d) => out.push((id, d)),
                Err(e) => {
                    tracing::error!(principal = %principal, device = ?id, error = %e, "a device record does not decode; left out");
                }
            }
        }
        Ok(out)
    }

    /// Has `principal` no device with published keys?
    pub fn devices_empty(&self, principal: &Principal) -> Result<bool, StoreError> {
        let mut prefix = principal.to_string().into_bytes();
        prefix.push(0);
        Ok(self
            .trees
            .devices
            .scan_prefix(&prefix)
            .next()
            .transpose()?
            .is_none())
    }

    /// One device of `principal`.
    pub fn device(
        &self,
        principal: &Principal,
        device: &str,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        self.trees
            .devices
            .get(device_key(principal, device))?
            .map(|v| decode("principaldevice_device", &v))
            .transpose()
    }

    /// The bundle `principal` published with `seq`.
    pub fn bundle(
        &self,
        principal: &Principal,
        seq: u64,
    ) -> Result<Option<BundleRecord>, StoreError> {
        self.trees
            .bundles
            .get(item_key(principal, seq))?
            .map(|v| decode("principalseq_bundle", &v))
            .transpose()
    }

    /// Bundles of `principal` from seq `from` on, in order, as `(seq, record)`, while `take`
    /// says so (it sees each record and returns false to stop before it).
    pub fn bundles_from(
        &self,
        principal: &Principal,
        from: u64,
        mut take: impl FnMut(&BundleRecord) -> bool,
    ) -> Result<(Vec<(u64, BundleRecord)>, bool), StoreError> {
        let start = item_key(principal, from.max(1));
        let end = item_key(principal, u64::MAX);
        let mut out = Vec::new();
        for kv in self.trees.bundles.range(start..=end) {
            let (k, v) = kv?;
            let record: BundleRecord = decode("principalseq_bundle", &v)?;
            if !take(&record) {
                return Ok((out, true));
            }
            let seq = u64::from_be_bytes(k[k.len() - 8..].try_into().map_err(|_| {
                StoreError::Corrupt {
                    tree: "principalseq_bundle",
                    detail: "short key".into(),
                }
            })?);
            out.push((seq, record));
        }
        Ok((out, false))
    }

    /// Up to `limit` entries of the retention schedule due at `now` (unix seconds) or before,
    /// earliest first, as keys of `timemsgid_due`.
    pub fn due_up_to(&self, now: i64, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let end = due_key(now.saturating_add(1), &[]);
        let mut out = Vec::new();
        for kv in self.trees.due.range(..end).take(limit) {
            out.push(kv?.0.to_vec());
        }
        Ok(out)
    }

    /// Number of events known to be on disk: the largest tree size a checkpoint may cover.
    pub fn durable_size(&self) -> u64 {
        self.durable_size.load(Ordering::SeqCst)
    }

    /// The tree size of the checkpoint in the receipt of the event at `index`: the log's size
    /// at the end of the writer batch that appended it, so every receipt of a batch shares one
    /// signed checkpoint (`index + 1` for events older than shared checkpoints, and for any
    /// event whose batch end is not recorded). The same answer every time: a resent receipt is
    /// byte-identical.
    pub fn receipt_size(&self, index: u64) -> Result<u64, StoreError> {
        let counters = &self.trees.counters;
        if index < read_u64(counters.get(RECEIPT_SIZES_FROM)?.as_deref())? {
            return Ok(index + 1);
        }
        let Some(entry) = counters.range(receipt_size_key(index + 1)..).next() else {
            return Ok(index + 1);
        };
        let (key, _) = entry?;
        Ok(match key.strip_prefix(RECEIPT_SIZE_PREFIX) {
            Some(size) => read_u64(Some(size))?,
            None => index + 1,
        })
    }

    /// The encoded event at `index` (the Merkle leaf), exactly as hashed.
    pub fn leaf(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .trees
            .events
            .get(index.to_be_bytes())?
            .map(|v| v.to_vec()))
    }

    /// Direct access to a tree, for tamper tests that edit a stopped relay's data offline.
    #[doc(hidden)]
    pub fn raw_tree(&self, name: &str) -> Option<sled::Tree> {
        if name == REF_INDEX_TREE {
            return Some(self.trees.refs.clone());
        }
        self.trees
            .named()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.clone())
    }

    /// The relay's record of a case, if it knows the case.
    pub fn case(&self, case_ref: &[u8]) -> Result<Option<crate::cases::CaseRecord>, StoreError> {
        self.trees
            .cases
            .get(case_ref)?
            .map(|v| decode("caseref_case", &v))
            .transpose()
    }

    /// The case references marked in the withdrawal index: every case whose record had a
    /// withdrawal under way when it was last written with one (a mark may outlive its
    /// withdrawal; read the record). A few keys, where scanning every case record at each
    /// start took most of a 1M-message relay's start-up.
    pub fn withdrawals_marked(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.trees
            .counters
            .scan_prefix(WITHDRAWAL_PREFIX)
            .map(|kv| Ok(kv?.0[WITHDRAWAL_PREFIX.len()..].to_vec()))
            .collect()
    }

    /// Number of events in the log.
    pub fn event_count(&self) -> Result<u64, StoreError> {
        read_u64(self.trees.counters.get(COUNTER_EVENTS)?.as_deref())
    }

    /// The event at `index`.
    pub fn event(&self, index: u64) -> Result<Option<pb::Event>, StoreError> {
        self.trees
            .events
            .get(index.to_be_bytes())?
            .map(|v| decode("index_event", &v))
            .transpose()
    }

    /// The indexes in `[from, to)` of the events whose `by` reference is `id` (of
    /// [`crate::mailbox::ID_LEN`] bytes), in order, from the index kept by
    /// [`Tx::append_event`]: reads only those events' keys, not the log.
    pub fn events_by(
        &self,
        by: EventRef,
        id: &[u8],
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = Result<u64, StoreError>> + use<> {
        let start = ref_key(by, id, from);
        let end = ref_key(by, id, to);
        let split = 1 + id.len();
        self.trees.refs.range(start..end).map(move |kv| {
            let (k, _) = kv?;
            k.get(split..)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt {
                    tree: REF_INDEX_TREE,
                    detail: "key of the wrong length".into(),
                })
        })
    }

    /// Sizes of every tree (entries), for tests and diagnostics.
    pub fn tree_sizes(&self) -> Vec<(&'static str, usize)> {
        self.trees
            .named()
            .map(|(name, tree)| (name, tree.len()))
            .collect()
    }

    // ----- writes -----

    /// Registers a principal (idempotent) and logs it.
    pub async fn register_principal(&self, principal: Principal) -> Result<(), RelayError> {
        self.seen_principal(principal, String::new(), 0)
            .await
            .map(|_| ())
    }

    /// Records that `principal` authenticated now with the certificate `serial` (hex, empty if
    /// unknown) expiring at `not_after` (unix seconds): registers it on its first
    /// authentication (with a PRINCIPAL_REGISTERED event), otherwise updates its last-seen time
    /// and certificate. Returns the record as written.
    pub async fn seen_principal(
        &self,
        principal: Principal,
        serial: String,
        not_after: i64,
    ) -> Result<PrincipalRecord, RelayError> {
        self.write(move |trees| {
            trees.transaction(|tx| {
                let key = principal.to_string();
                let time = tx.now();
                if let Some(mut record) = tx.principal(&key)? {
                    if !serial.is_empty() {
                        record.last_seen = Some(time);
                        record.cert_serial = serial.clone();
                        record.cert_not_after = not_after;
                        tx.put_principal(&key, &record)?;
                    }
                    return Ok(record);
                }
                let record = PrincipalRecord {
                    registered_at: Some(time),
                    next_seq: 1,
                    pending: 0,
                    next_bundle_seq: 1,
                    devices: 0,
                    last_seen: (!serial.is_empty()).then_some(time),
                    cert_serial: serial.clone(),
                    cert_not_after: not_after,
                    ..Default::default()
                };
                tx.principals
                    .insert(key.as_bytes(), record.encode_to_vec())?;
                tx.append_event(pb::Event {
                    r#type: pb::EventType::PrincipalRegistered.into(),
                    time: Some(time),
                    actor: key,
                    ..Default::default()
                })?;
                Ok(record)
            })
        })
        .await
    }
}

impl Trees {
    /// Every tree with its name, in the order of [`TREES`].
    fn named(&self) -> impl Iterator<Item = (&'static str, &sled::Tree)> {
        TREES.into_iter().zip([
            &self.meta,
            &self.ciphertext,
            &self.state,
            &self.items,
            &self.events,
            &self.principals,
            &self.counters,
            &self.bundles,
            &self.hashes,
            &self.devices,
            &self.due,
            &self.cases,
        ])
    }

    /// Runs `f` in one sled transaction over every tree. `f` may run more than once (sled retries
    /// on conflict), so it must have no side effects besides the transaction's.
    pub fn transaction<T>(
        &self,
        f: impl Fn(&Tx<'_>) -> Result<T, ConflictableTransactionError<RelayError>>,
    ) -> Result<T, RelayError> {
        let key_ops = std::cell::RefCell::new(Vec::new());
        let result = (
            &self.meta,
            &self.ciphertext,
            &self.state,
            &self.items,
            &self.events,
            &self.principals,
            &self.counters,
            &self.bundles,
            &self.hashes,
            &self.devices,
            &self.due,
            &self.cases,
            &self.refs,
        )
            .transaction(
                |(
                    meta,
                    ciphertext,
                    state,
                    items,
                    events,
                    principals,
                    counters,
                    bundles,
                    hashes,
                    devices,
                    due,
                    cases,
                    refs,
                )| {
                    // A retried attempt starts afresh.
                    key_ops.borrow_mut().clear();
                    f(&Tx {
                        key_ops: &key_ops,
                        meta,
                        ciphertext,
                        state,
                        items,
                        events,
                        principals,
                        counters,
                        bundles,
                        hashes,
                        devices,
                        due,
                        cases,
                        refs,
                        clock: self.clock.as_ref(),
                        keyring: &self.keyring,
                    })
                },
            )
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => RelayError::Store(e.into()),
            });
        // Committed (not yet flushed): now the key file, outside sled's lock. The writer syncs it
        // before it flushes sled, so on disk a message never lacks its key and a purge never
        // leaves its key behind. A failure here fails the store (the batch is not flushed).
        if result.is_ok() {
            for (slot, key) in key_ops.into_inner() {
                let written = match key {
                    Some(key) => self.keyring.put(slot, &key),
                    None => self.keyring.erase(slot),
                };
                written.map_err(|e| {
                    RelayError::Store(StoreError::Sled(Arc::new(sled::Error::Io(e))))
                })?;
            }
        }
        result
    }
}

/// A change to the key file a transaction asks for: written after the transaction commits.
type KeyOp = (u64, Option<[u8; crate::keyring::KEY_LEN]>);

/// The trees inside a transaction, with the helpers every change uses.
pub struct Tx<'a> {
    /// Key-file writes of this transaction, done once it committed: file I/O inside a sled
    /// transaction would hold sled's lock, and a hung disk would then stop every reader.
    key_ops: &'a std::cell::RefCell<Vec<KeyOp>>,
    /// `msgid_meta`
    pub meta: &'a TransactionalTree,
    /// `msgid_ciphertext`
    pub ciphertext: &'a TransactionalTree,
    /// `msgidrecipient_state`
    pub state: &'a TransactionalTree,
    /// `principalseq_item`
    pub items: &'a TransactionalTree,
    /// `index_event`
    pub events: &'a TransactionalTree,
    /// `principal_record`
    pub principals: &'a TransactionalTree,
    /// `name_counter`
    pub counters: &'a TransactionalTree,
    /// `principalseq_bundle`
    pub bundles: &'a TransactionalTree,
    /// `levelindex_hash`
    pub hashes: &'a TransactionalTree,
    /// `principaldevice_device`
    pub devices: &'a TransactionalTree,
    /// `timemsgid_due`
    pub due: &'a TransactionalTree,
    /// `caseref_case`
    pub cases: &'a TransactionalTree,
    /// [`REF_INDEX_TREE`], kept by [`Tx::append_event`].
    refs: &'a TransactionalTree,
    /// The store's clock.
    pub clock: &'a dyn Clock,
    /// The per-message key file.
    pub keyring: &'a Keyring,
}

/// Aborts the transaction with a relay error.
pub fn abort<T>(e: RelayError) -> Result<T, ConflictableTransactionError<RelayError>> {
    Err(ConflictableTransactionError::Abort(e))
}

/// What a step of a transaction returns.
pub type TxResult<T> = Result<T, ConflictableTransactionError<RelayError>>;

const COUNTER_EVENTS: &[u8] = b"events";
/// `receipt-size/` ‖ size (big-endian) → empty, in `name_counter`: the log's size at the end
/// of every writer batch that appended events, written before the batch's flush. A send's
/// receipt carries the checkpoint of the first such size above its event's index
/// ([`Store::receipt_size`]): one signed checkpoint serves every receipt of a batch, and a
/// retried send gets the same one later (its receipt stays byte-identical).
const RECEIPT_SIZE_PREFIX: &[u8] = b"receipt-size/";
/// In `name_counter`: the log's size when a relay that shares checkpoints between the receipts
/// of a batch first opened the data folder. Events below it keep receipts of exactly
/// `index + 1` entries, as they were issued.
const RECEIPT_SIZES_FROM: &[u8] = b"receipt-sizes-from";

fn receipt_size_key(size: u64) -> Vec<u8> {
    [RECEIPT_SIZE_PREFIX, &size.to_be_bytes()].concat()
}

/// Records the log's size now as the end of a receipt batch (see [`Store::receipt_size`]),
/// unless no event came in since the last one recorded. Called before every flush that may
/// make events durable (a writer batch, a backup's snapshot in the middle of one, the start
/// after a crash), so an event on disk always has the batch end its receipt names: a retry gets
/// the same checkpoint before and after later batches, restarts and restores.
fn end_receipt_batch(counters: &sled::Tree) -> Result<(), StoreError> {
    let size = read_u64(counters.get(COUNTER_EVENTS)?.as_deref())?;
    let from = read_u64(counters.get(RECEIPT_SIZES_FROM)?.as_deref())?;
    let last = match counters.scan_prefix(RECEIPT_SIZE_PREFIX).next_back() {
        Some(entry) => read_u64(entry?.0.get(RECEIPT_SIZE_PREFIX.len()..))?,
        None => 0,
    };
    if size > last.max(from) {
        counters.insert(receipt_size_key(size), &[])?;
    }
    Ok(())
}
/// `withdrawing/` ‖ case reference → empty, in `name_counter`: the withdrawal index (see
/// [`Store::withdrawals_marked`]).
const WITHDRAWAL_PREFIX: &[u8] = b"withdrawing/";

/// In `name_counter`: the log's size when the withdrawal index was last known whole (built at
/// open, or at this relay's clean stop; see `build_withdrawal_index`).
const WITHDRAWAL_INDEX_BUILT: &[u8] = b"withdrawal-index-built";

/// The key of case `case_ref` in the withdrawal index (in `name_counter`).
pub fn withdrawal_key(case_ref: &[u8]) -> Vec<u8> {
    [WITHDRAWAL_PREFIX, case_ref].concat()
}

/// Next free slot of the key file.
const COUNTER_KEY_SLOTS: &[u8] = b"message-key-slots";
/// The key file, in the database folder.
pub const KEY_FILE: &str = "message-keys";

impl Tx<'_> {
    /// Now, by the store's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.timestamp()
    }

    /// Has the retention sweeper look at `message_id` from `at` (unix seconds) on.
    pub fn schedule(&self, message_id: &[u8], at: i64) -> TxResult<()> {
        self.due.insert(due_key(at, message_id), &[])?;
        Ok(())
    }

    /// Stores a message's ciphertext `sealed` under `key` (see [`crate::keyring::seal`]),
    /// the key in a new slot of the key file, and records the slot in `record`. The key is
    /// durable before the transaction is (the writer syncs the key file before it flushes
    /// sled).
    pub fn store_ciphertext(
        &self,
        message_id: &[u8],
        record: &mut MessageRecord,
        key: &[u8; crate::keyring::KEY_LEN],
        sealed: &[u8],
    ) -> TxResult<()> {
        let slot = read_u64(self.counters.get(COUNTER_KEY_SLOTS)?.as_deref()).or_else(corrupt)?;
        self.key_ops.borrow_mut().push((slot, Some(*key)));
        self.counters
            .insert(COUNTER_KEY_SLOTS, &(slot + 1).to_be_bytes())?;
        record.key_slot = slot + 1;
        self.ciphertext.insert(message_id, sealed)?;
        Ok(())
    }

    /// Deletes a message's stored ciphertext and erases its key.
    pub fn purge_ciphertext(&self, message_id: &[u8], record: &MessageRecord) -> TxResult<()> {
        self.ciphertext.remove(message_id)?;
        if record.key_slot > 0 {
            self.key_ops.borrow_mut().push((record.key_slot - 1, None));
        }
        Ok(())
    }

    /// Removes a message's metadata.
    pub fn remove_message(&self, message_id: &[u8]) -> TxResult<()> {
        self.meta.remove(message_id)?;
        Ok(())
    }

    /// Writes a message's metadata.
    pub fn put_message(&self, message_id: &[u8], record: &MessageRecord) -> TxResult<()> {
        self.meta.insert(message_id, record.encode_to_vec())?;
        Ok(())
    }
    /// Appends an event at the next index (setting its `index`) and returns the index. The
    /// encoded event is the Merkle leaf; its hash and every subtree hash it completes are
    /// written in the same transaction.
    pub fn append_event(&self, mut event: pb::Event) -> TxResult<u64> {
        let index = read_u64(self.counters.get(COUNTER_EVENTS)?.as_deref()).or_else(corrupt)?;
        event.index = index;
        let bytes = event.encode_to_vec();
        let leaf = silta_proto::tlog::leaf_hash(&bytes);
        self.events.insert(&index.to_be_bytes(), bytes)?;
        for key in ref_keys(&event) {
            self.refs.insert(key, &[])?;
        }
        let entries = silta_proto::tlog::append_hashes(index, leaf, |level, i| {
            match self.hashes.get(hash_key(level, i))? {
                Some(v) => v.as_ref().try_into().map_err(|_| {
                    ConflictableTransactionError::Abort(RelayError::Store(StoreError::Corrupt {
                        tree: "levelindex_hash",
                        detail: "hash is not 32 bytes".into(),
                    }))
                }),
                None => abort(RelayError::Store(StoreError::Corrupt {
                    tree: "levelindex_hash",
                    detail: format!("missing subtree hash ({level}, {i})"),
                })),
            }
        })?;
        for (level, i, hash) in entries {
            // Written once: a different hash already there means the log's counter went back
            // (damage), and readers (and the subtree cache) may hold the old one.
            if let Some(old) = self.hashes.insert(&hash_key(level, i), &hash)?
                && old.as_ref() != hash.as_slice()
            {
                return abort(RelayError::Store(StoreError::Corrupt {
                    tree: "levelindex_hash",
                    detail: format!("subtree hash ({level}, {i}) would be rewritten"),
                }));
            }
        }
        self.counters
            .insert(COUNTER_EVENTS, &(index + 1).to_be_bytes())?;
        Ok(index)
    }

    /// The record of a registered principal.
    pub fn principal(&self, principal: &str) -> TxResult<Option<PrincipalRecord>> {
        self.principals
            .get(principal.as_bytes())?
            .map(|v| decode("principal_record", &v))
            .transpose()
            .or_else(corrupt)
    }

    /// Writes a principal's record.
    pub fn put_principal(&self, principal: &str, record: &PrincipalRecord) -> TxResult<()> {
        self.principals
            .insert(principal.as_bytes(), record.encode_to_vec())?;
        Ok(())
    }

    /// Appends an item to `principal`'s mailbox, returning its seq. `record` is updated.
    pub fn push_item(
        &self,
        principal: &Principal,
        record: &mut PrincipalRecord,
        item: &ItemRecord,
    ) -> TxResult<u64> {
        let seq = record.next_seq.max(1);
        record.next_seq = seq + 1;
        self.items
            .insert(item_key(principal, seq), item.encode_to_vec())?;
        Ok(seq)
    }

    /// A recipient's state record.
    pub fn recipient_state(
        &self,
        message_id: &[u8],
        recipient: &str,
    ) -> TxResult<Option<RecipientRecord>> {
        self.state
            .get(state_key(message_id, recipient))?
            .map(|v| decode("msgidrecipient_state", &v))
            .transpose()
            .or_else(corrupt)
    }

    /// Writes a recipient's state record.
    pub fn put_recipient_state(
        &self,
        message_id: &[u8],
        recipient: &str,
        record: &RecipientRecord,
    ) -> TxResult<()> {
        self.state
            .insert(state_key(message_id, recipient), record.encode_to_vec())?;
        Ok(())
    }

    /// A message's metadata.
    pub fn message(&self, message_id: &[u8]) -> TxResult<Option<MessageRecord>> {
        self.meta
            .get(message_id)?
            .map(|v| decode("msgid_meta", &v))
            .transpose()
            .or_else(corrupt)
    }

    /// A mailbox item.
    pub fn item(&self, principal: &Principal, seq: u64) -> TxResult<Option<ItemRecord>> {
        self.items
            .get(item_key(principal, seq))?
            .map(|v| decode("principalseq_item", &v))
            .transpose()
            .or_else(corrupt)
    }

    /// Writes a mailbox item back (its done marks changed).
    pub fn put_item(&self, principal: &Principal, seq: u64, item: &ItemRecord) -> TxResult<()> {
        self.items
            .insert(item_key(principal, seq), item.encode_to_vec())?;
        Ok(())
    }

    /// Removes a mailbox item.
    pub fn remove_item(&self, principal: &Principal, seq: u64) -> TxResult<()> {
        self.items.remove(item_key(principal, seq))?;
        Ok(())
    }

    /// Unacknowledged messages from `sender` waiting in `recipient`'s mailbox.
    pub fn pair_pending(&self, sender: &str, recipient: &str) -> TxResult<u64> {
        read_u64(self.counters.get(pair_key(sender, recipient))?.as_deref()).or_else(corrupt)
    }

    /// Sets that count (removing the counter at zero).
    pub fn set_pair_pending(&self, sender: &str, recipient: &str, n: u64) -> TxResult<()> {
        let key = pair_key(sender, recipient);
        if n == 0 {
            self.counters.remove(key)?;
        } else {
            self.counters.insert(key, &n.to_be_bytes())?;
        }
        Ok(())
    }

    /// A device's record.
    pub fn device(&self, principal: &Principal, device: &str) -> TxResult<Option<DeviceRecord>> {
        self.devices
            .get(device_key(principal, device))?
            .map(|v| decode("principaldevice_device", &v))
            .transpose()
            .or_else(corrupt)
    }

    /// Writes a device's record.
    pub fn put_device(
        &self,
        principal: &Principal,
        device: &str,
        record: &DeviceRecord,
    ) -> TxResult<()> {
        self.devices
            .insert(device_key(principal, device), record.encode_to_vec())?;
        Ok(())
    }

    /// The relay's record of a case.
    pub fn case(&self, case_ref: &[u8]) -> TxResult<Option<crate::cases::CaseRecord>> {
        self.cases
            .get(case_ref)?
            .map(|v| decode("caseref_case", &v))
            .transpose()
            .or_else(corrupt)
    }

    /// Writes a case's record. A record with a withdrawal under way is also marked in the
    /// withdrawal index ([`Store::withdrawals_marked`]), in the same transaction; the mark goes
    /// when the withdrawal is done ([`Tx::withdrawal_done`]).
    pub fn put_case(&self, case_ref: &[u8], record: &crate::cases::CaseRecord) -> TxResult<()> {
        if !record.withdrawing.is_empty() {
            self.counters.insert(withdrawal_key(case_ref), &[])?;
        }
        self.cases.insert(case_ref, record.encode_to_vec())?;
        Ok(())
    }

    /// Takes case `case_ref` out of the withdrawal index: its last withdrawal is done.
    pub fn withdrawal_done(&self, case_ref: &[u8]) -> TxResult<()> {
        self.counters.remove(withdrawal_key(case_ref))?;
        Ok(())
    }

    /// Writes a bundle of `principal` at seq.
    pub fn put_bundle(
        &self,
        principal: &Principal,
        seq: u64,
        record: &BundleRecord,
    ) -> TxResult<()> {
        self.bundles
            .insert(item_key(principal, seq), record.encode_to_vec())?;
        Ok(())
    }

    /// A published bundle.
    pub fn bundle(&self, principal: &Principal, seq: u64) -> TxResult<Option<BundleRecord>> {
        self.bundles
            .get(item_key(principal, seq))?
            .map(|v| decode("principalseq_bundle", &v))
            .transpose()
            .or_else(corrupt)
    }
}

/// `"pending\0" ‖ sender ‖ 0x00 ‖ recipient`, a counter in `name_counter`.
fn pair_key(sender: &str, recipient: &str) -> Vec<u8> {
    [
        b"pending\0".as_slice(),
        sender.as_bytes(),
        &[0],
        recipient.as_bytes(),
    ]
    .concat()
}

/// `principal ‖ 0x00 ‖ device id`.
pub fn device_key(principal: &Principal, device: &str) -> Vec<u8> {
    let mut k = principal.to_string().into_bytes();
    k.push(0);
    k.extend_from_slice(device.as_bytes());
    k
}

/// Builds the case records from the delivery log's ACCEPTED events if the database was written
/// before case records existed (see [`crate::cases::replay`]): a case opened then is bound by the
/// same rules as one opened now.
fn rebuild_case_index(trees: &Trees) -> Result<(), StoreError> {
    // The marker is written last: a build cut short by a crash is started again.
    const BUILT: &[u8] = b"case-index-built";
    if trees.counters.contains_key(BUILT)? {
        return Ok(());
    }
    trees.cases.clear()?;
    let events = trees.events.iter().map(|kv| {
        kv.map_err(StoreError::from)
            .and_then(|(_, v)| decode("index_event", &v))
    });
    let cases = crate::cases::replay(events)?;
    for (case_ref, record) in &cases {
        trees
            .cases
            .insert(case_ref.as_slice(), record.encode_to_vec())?;
    }
    // The rebuilt records may have withdrawals under way: the withdrawal index is built again
    // from them (build_withdrawal_index runs next).
    trees.counters.remove(WITHDRAWAL_INDEX_BUILT)?;
    trees.counters.insert(BUILT, &1u64.to_be_bytes())?;
    if !cases.is_empty() {
        tracing::info!(
            cases = cases.len(),
            "built the case records from the delivery log"
        );
    }
    Ok(())
}

/// Marks the cases with a withdrawal under way in the withdrawal index, once, in a database
/// written before the index existed (one read of every case record; later starts read only
/// the marks).
fn build_withdrawal_index(trees: &Trees) -> Result<(), StoreError> {
    // Trusted only as this relay's clean stop left it: marked with the log's size then, equal
    // to its size now ([`Store::close`]). After a crash, after a relay that does not keep the
    // index ran on the folder, or in a folder from before it, the index is built again from the
    // case records (every change of a case appends an event, so the size tells).
    let size = read_u64(trees.counters.get(COUNTER_EVENTS)?.as_deref())?;
    if let Some(at) = trees.counters.get(WITHDRAWAL_INDEX_BUILT)?
        && read_u64(Some(&at))? == size
    {
        return Ok(());
    }
    for kv in trees.counters.scan_prefix(WITHDRAWAL_PREFIX) {
        trees.counters.remove(kv?.0)?;
    }
    let mut marked = 0usize;
    for kv in trees.cases.iter() {
        let (case_ref, v) = kv?;
        // A record that does not decode is marked too: the start's own check reads it and says
        // so at every start, as it did when it read every record.
        let mark = decode::<crate::cases::CaseRecord>("caseref_case", &v)
            .map_or(true, |record| !record.withdrawing.is_empty());
        if mark {
            trees.counters.insert(withdrawal_key(&case_ref), &[])?;
            marked += 1;
        }
    }
    // Written last: a build cut short by a crash is started again.
    trees
        .counters
        .insert(WITHDRAWAL_INDEX_BUILT, &size.to_be_bytes())?;
    if marked > 0 {
        tracing::info!(
            cases = marked,
            "indexed the cases with a withdrawal under way"
        );
    }
    Ok(())
}

/// Builds the device index from the published bundles if a database written before the index
/// existed has bundles but no devices. Each device is bound to the certificate of its latest
/// bundle.
fn rebuild_device_index(trees: &Trees) -> Result<(), StoreError> {
    // The marker is written last: an index build cut short by a crash is started again.
    const BUILT: &[u8] = b"device-index-built";
    if trees.counters.contains_key(BUILT)? {
        return Ok(());
    }
    if trees.bundles.is_empty() {
        trees.counters.insert(BUILT, &1u64.to_be_bytes())?;
        return Ok(());
    }
    trees.devices.clear()?;
    let mut devices: std::collections::BTreeMap<Vec<u8>, DeviceRecord> = Default::default();
    let mut per_principal: std::collections::BTreeMap<Vec<u8>, u64> = Default::default();
    for kv in trees.bundles.iter() {
        let (k, v) = kv?;
        let record: BundleRecord = decode("principalseq_bundle", &v)?;
        let split = k.len().saturating_sub(9);
        let principal = k[..split].to_vec();
        let seq =
            u64::from_be_bytes(k[split + 1..].try_into().map_err(|_| StoreError::Corrupt {
                tree: "principalseq_bundle",
                detail: "short key".into(),
            })?);
        let leaf = record
            .bundle
            .as_ref()
            .and_then(|b| b.certificate_chain.first())
            .cloned()
            .unwrap_or_default();
        let serial = x509_parser::parse_x509_certificate(&leaf)
            .map(|(_, c)| hex::encode(c.raw_serial()))
            .unwrap_or_default();
        let mut key = principal.clone();
        key.push(0);
        key.extend_from_slice(record.device_id.as_bytes());
        let entry = devices.entry(key).or_insert_with(|| {
            *per_principal.entry(principal.clone()).or_default() += 1;
            DeviceRecord::default()
        });
        entry.bundles += 1;
        entry.latest_seq = seq;
        entry.cert_sha256 = sha2::Sha256::digest(&leaf).to_vec();
        entry.cert_serial = serial;
        entry.cert_not_after = record.cert_not_after;
        entry.key_fingerprint = record
            .bundle
            .as_ref()
            .and_then(|b| pb::KeyBundleContent::decode(b.content.as_slice()).ok())
            .map(|c| silta_proto::device_fingerprint(&c.age_recipient, &c.ed25519_public_key))
            .unwrap_or_default();
    }
    for (k, v) in &devices {
        trees.devices.insert(k.as_slice(), v.encode_to_vec())?;
    }
    for (principal, n) in per_principal {
        if let Some(v) = trees.principals.get(&principal)? {
            let mut rec: PrincipalRecord = decode("principal_record", &v)?;
            rec.devices = n;
            trees.principals.insert(principal, rec.encode_to_vec())?;
        }
    }
    trees.counters.insert(BUILT, &1u64.to_be_bytes())?;
    tracing::info!(
        devices = devices.len(),
        "built the key directory's device index"
    );
    Ok(())
}

/// The unacknowledged envelopes of an encoded [`PrincipalRecord`].
pub fn pending_of(record: &[u8]) -> Result<u64, StoreError> {
    Ok(decode::<PrincipalRecord>("principal_record", record)?.pending)
}

fn corrupt<T>(e: StoreError) -> TxResult<T> {
    abort(RelayError::Store(e))
}

impl From<StoreError> for ConflictableTransactionError<RelayError> {
    fn from(e: StoreError) -> Self {
        ConflictableTransactionError::Abort(RelayError::Store(e))
    }
}

/// `principal ‖ 0x00 ‖ seq`. Principals never contain 0x00, so a principal's items are exactly
/// the keys in `[principal‖0x00, principal‖0x01)`, in seq order (big-endian).
pub fn item_key(principal: &Principal, seq: u64) -> Vec<u8> {
    let mut k = principal.to_string().into_bytes();
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// `unix seconds (u64 BE, 0 before the epoch) ‖ message id`, a key of `timemsgid_due`: in
/// time order.
pub fn due_key(at: i64, message_id: &[u8]) -> Vec<u8> {
    let mut k = u64::try_from(at).unwrap_or(0).to_be_bytes().to_vec();
    k.extend_from_slice(message_id);
    k
}

/// Builds the delivery log's index by case and message ([`REF_INDEX_TREE`]) from the log if it
/// is not marked complete: a database written before the index existed, a restored backup (the
/// index is not in backups) or a build cut short by a crash (the marker is written last). Every
/// later event is indexed in the transaction that appends it.
fn build_ref_index(trees: &Trees) -> Result<(), StoreError> {
    if trees.refs.contains_key(REF_INDEX_BUILT)? {
        return Ok(());
    }
    trees.refs.clear()?;
    let mut batch = sled::Batch::default();
    let (mut pending, mut events) = (0usize, 0u64);
    for kv in trees.events.iter() {
        let (_, v) = kv?;
        let event: pb::Event = decode("index_event", &v)?;
        for key in ref_keys(&event) {
            batch.insert(key, &[]);
            pending += 1;
        }
        events += 1;
        if pending >= 4096 {
            trees.refs.apply_batch(std::mem::take(&mut batch))?;
            pending = 0;
        }
    }
    trees.refs.apply_batch(batch)?;
    trees.refs.insert(REF_INDEX_BUILT, &[])?;
    if events > 0 {
        tracing::info!(events, "indexed the delivery log by case and message");
    }
    Ok(())
}

/// Schedules every stored message for a look by the retention sweeper if the database was
/// written before the schedule existed (messages accepted then were never scheduled).
fn build_due_index(trees: &Trees) -> Result<(), StoreError> {
    const BUILT: &[u8] = b"due-index-built";
    if trees.counters.contains_key(BUILT)? {
        return Ok(());
    }
    let mut n = 0u64;
    for kv in trees.meta.iter() {
        let (id, v) = kv?;
        let record: MessageRecord = decode("msgid_meta", &v)?;
        let at = record.accepted_at.map(|t| t.seconds).unwrap_or(0);
        trees.due.insert(due_key(at, &id), &[])?;
        n += 1;
    }
    trees.counters.insert(BUILT, &1u64.to_be_bytes())?;
    if n > 0 {
        tracing::info!(
            messages = n,
            "scheduled stored messages for the retention sweeper"
        );
    }
    Ok(())
}

/// `level ‖ index` (big-endian), the key of a stored subtree hash.
pub fn hash_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = level;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

/// `message_id ‖ recipient`; message ids are fixed-size, so this is unambiguous.
pub fn state_key(message_id: &[u8], recipient: &str) -> Vec<u8> {
    let mut k = message_id.to_vec();
    k.extend_from_slice(recipient.as_bytes());
    k
}

fn decode<M: prost::Message + Default>(tree: &'static str, bytes: &[u8]) -> Result<M, StoreError> {
    M::decode(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        detail: e.to_string(),
    })
}

fn read_u64(bytes: Option<&[u8]>) -> Result<u64, StoreError> {
    match bytes {
        None => Ok(0),
        Some(b) => Ok(u64::from_be_bytes(b.try_into().map_err(|_| {
            StoreError::Corrupt {
                tree: "name_counter",
                detail: "counter is not 8 bytes".into(),
            }
        })?)),
    }
}

/// Fails the store if the writer thread ends by a panic.
struct WriterDeath(Arc<Failure>);

impl Drop for WriterDeath {
    fn drop(&mut self) {
        if std::thread::panicking() {
            fail(&self.0, "the storage writer thread died".into());
        }
    }
}

/// Every tree while the writer is held by [`Store::snapshot`]: nothing changes under it.
pub struct Frozen<'a> {
    trees: &'a Trees,
    busy: Busy,
}

impl Frozen<'_> {
    /// Every tree with its name, in the order of [`TREES`].
    pub fn trees(&self) -> impl Iterator<Item = (&'static str, &sled::Tree)> {
        self.trees.named()
    }

    /// Number of events in the log.
    pub fn event_count(&self) -> Result<u64, StoreError> {
        read_u64(self.trees.counters.get(COUNTER_EVENTS)?.as_deref())
    }

    /// The storage key of every message that has one ([`crate::keyring`]): its slot and the key.
    /// A backup must hold them, or its ciphertexts cannot be opened after a restore. Streamed
    /// (one message record at a time), saying [`Frozen::progress`] every
    /// [`PROGRESS_EVERY`] records.
    pub fn message_keys(
        &self,
    ) -> impl Iterator<Item = Result<(u64, [u8; crate::keyring::KEY_LEN]), StoreError>> + '_ {
        self.trees
            .meta
            .iter()
            .enumerate()
            .filter_map(move |(i, kv)| {
                if i % PROGRESS_EVERY == 0 {
                    self.progress();
                }
                let record: MessageRecord = match kv
                    .map_err(StoreError::from)
                    .and_then(|(_, v)| decode("msgid_meta", &v))
                {
                    Ok(r) => r,
                    Err(e) => return Some(Err(e)),
                };
                let slot = record.key_slot.checked_sub(1)?;
                // A purge in flight has erased it: the ciphertext goes too.
                self.trees
                    .keyring
                    .get(slot)
                    .map_err(key_io)
                    .map(|key| key.map(|k| (slot, k)))
                    .transpose()
            })
    }

    /// Says the writer is making progress, so writes queued behind a long snapshot do not take
    /// the store for stuck (see `storage.write_timeout_ms`).
    pub fn progress(&self) {
        self.busy.since.store(
            self.busy.epoch.elapsed().as_millis() as u64 + 1,
            Ordering::SeqCst,
        );
    }
}

/// How many records [`Frozen::message_keys`] reads between two [`Frozen::progress`] calls.
pub const PROGRESS_EVERY: usize = 1024;

/// An I/O error of the key file, as a storage error.
fn key_io(e: std::io::Error) -> StoreError {
    StoreError::Sled(Arc::new(sled::Error::Io(e)))
}

/// Where the writer says since when it works on its current batch (see `Store::busy_since`).
struct Busy {
    since: Arc<AtomicU64>,
    epoch: std::time::Instant,
}

fn writer_loop(
    db: &sled::Db,
    trees: &Trees,
    jobs: &mpsc::Receiver<Job>,
    sync: bool,
    durable: &AtomicU64,
    failure: &Failure,
    busy: &Busy,
) {
    // Block for the first job, then take whatever else queued up meanwhile: everything in the
    // batch shares one flush.
    while let Ok(first) = jobs.recv() {
        busy.since.store(
            busy.epoch.elapsed().as_millis() as u64 + 1,
            Ordering::SeqCst,
        );
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // In queue order; consecutive transactional jobs share one transaction.
        let mut fatal: Option<StoreError> = None;
        let mut completions = Vec::with_capacity(batch.len());
        let mut group: Vec<Box<dyn TxJob>> = Vec::new();
        let run_group = |group: &mut Vec<Box<dyn TxJob>>,
                         completions: &mut Vec<Completion>,
                         fatal: &mut Option<StoreError>| {
            if group.is_empty() {
                return;
            }
            let (done, error) = run_tx_jobs(trees, std::mem::take(group));
            completions.extend(done);
            *fatal = fatal.take().or(error);
        };
        let mut queued = batch.into_iter();
        for job in queued.by_ref() {
            if fatal.is_some() {
                // sled failed: nothing more runs. The jobs left are dropped unrun, so their
                // callers hear that the store failed, and no change of theirs can reach the
                // disk (sled flushes what is in memory when it is dropped).
                break;
            }
            match job {
                Job::Tx(job) => group.push(job),
                Job::Plain(job) => {
                    run_group(&mut group, &mut completions, &mut fatal);
                    if fatal.is_some() {
                        break;
                    }
                    let (complete, error) = job(trees);
                    fatal = fatal.take().or(error);
                    completions.push(complete);
                }
            }
        }
        if fatal.is_none() {
            run_group(&mut group, &mut completions, &mut fatal);
        }
        if let Some(e) = &fatal {
            // Failed before the jobs left are dropped: their callers hear `Failed`.
            fail(failure, format!("a write or flush failed: {e}"));
        }
        drop(group);
        drop(queued);
        // The batch's receipts share the checkpoint of the log's size after it (see
        // `Store::receipt_size`), recorded before the flush that makes the batch durable.
        if fatal.is_none() {
            fatal = end_receipt_batch(&trees.counters).err();
        }
        // After a sled error nothing of this batch is acknowledged, and nothing is flushed.
        let flushed = if let Some(e) = fatal {
            Err(e)
        } else if sync {
            // Keys first: a message on disk never lacks its key, and a purge on disk never
            // leaves its key behind.
            trees
                .keyring
                .sync()
                .map_err(|e| StoreError::Sled(Arc::new(sled::Error::Io(e))))
                .and_then(|()| db.flush().map(|_| ()).map_err(StoreError::from))
        } else {
            Ok(())
        };
        // Only a real fsync makes events durable; without one (sync = false, benchmarks only)
        // checkpoints stay where they were, so nothing unflushed is ever signed.
        if sync && flushed.is_ok() {
            // Every event committed so far is on disk now: checkpoints may cover them.
            if let Ok(n) = trees
                .counters
                .get(COUNTER_EVENTS)
                .map_err(StoreError::from)
                .and_then(|v| read_u64(v.as_deref()))
            {
                durable.fetch_max(n, Ordering::SeqCst);
            }
        }
        if let Err(e) = &flushed {
            tracing::error!(error = %e, batch = completions.len(), "write or flush failed; failing the batch");
            fail(failure, format!("a write or flush failed: {e}"));
        }
        busy.since.store(0, Ordering::SeqCst);
        for complete in completions {
            complete(flushed.clone());
        }
        if flushed.is_err() {
            // Fail-stop: queued and later writes are dropped unrun (their callers get
            // `Failed`); the database is not touched again.
            return;
        }
    }
}

impl silta_proto::tlog::HashSource for Store {
    type Error = StoreError;

    fn stored(&self, level: u8, index: u64) -> Result<silta_proto::tlog::Hash, StoreError> {
        if let Some(hash) = self.subtree_cache.get(level, index) {
            return Ok(hash);
        }
        let v = self
            .trees
            .hashes
            .get(hash_key(level, index))?
            .ok_or_else(|| StoreError::Corrupt {
                tree: "levelindex_hash",
                detail: format!("missing subtree hash ({level}, {index})"),
            })?;
        let hash = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
            tree: "levelindex_hash",
            detail: "hash is not 32 bytes".into(),
        })?;
        self.subtree_cache.put(level, index, hash);
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens the store in `dir`, again after a close: sled lets go of its file lock only once
    /// its background threads have let go of the database, a moment after the close under load
    /// (CI saw "could not acquire lock"). Bounded retry (5 s), as the restore's check does.
    fn open_store(dir: &std::path::Path) -> Store {
        for _ in 0..50 {
            match Store::open(dir, true) {
                Err(e) if e.to_string().contains("could not acquire lock") => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return other.unwrap(),
            }
        }
        Store::open(dir, true).unwrap()
    }

    #[test]
    fn item_keys_sort_by_principal_then_seq() {
        let a: Principal = "centre/a".parse().unwrap();
        let ab: Principal = "centre/a.b".parse().unwrap();
        assert_eq!(
            item_key(&a, 258),
            [b"centre/a".as_slice(), &[0], &[0, 0, 0, 0, 0, 0, 1, 2]].concat()
        );
        assert!(item_key(&a, 1) < item_key(&a, 2));
        assert!(item_key(&a, 255) < item_key(&a, 256));
        // A longer principal with the same prefix never falls inside a's range.
        assert!(item_key(&ab, 0) > [b"centre/a".as_slice(), &[1]].concat());
    }

    #[test]
    fn state_key_is_id_then_recipient() {
        assert_eq!(
            state_key(&[7; 16], "centre/x"),
            [[7u8; 16].as_slice(), b"centre/x"].concat()
        );
    }

    #[tokio::test]
    async fn events_are_contiguous_and_durable() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open_store(dir.path());
            for id in ["centre/a", "centre/b", "assistance/nas"] {
                store.register_principal(id.parse().unwrap()).await.unwrap();
            }
            // Registering twice is a no-op.
            store
                .register_principal("centre/a".parse().unwrap())
                .await
                .unwrap();
            assert_eq!(store.event_count().unwrap(), 3);
            store.close().unwrap();
            assert!(matches!(
                store.register_principal("centre/c".parse().unwrap()).await,
                Err(RelayError::Store(StoreError::Closed))
            ));
        }
        let store = open_store(dir.path());
        assert_eq!(store.event_count().unwrap(), 3);
        for i in 0..3 {
            assert_eq!(store.event(i).unwrap().unwrap().index, i);
        }
        assert!(store.principal_known(&"centre/b".parse().unwrap()).unwrap());
    }

    #[tokio::test]
    async fn messages_stored_before_the_schedule_existed_are_scheduled_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let id = [7u8; 16];
        {
            let store = open_store(dir.path());
            assert!(store.due_up_to(i64::MAX, 10).unwrap().is_empty());
            // As an older relay left it: a message, no schedule, no marker.
            let record = MessageRecord {
                accepted_at: Some(Timestamp {
                    seconds: 1_000,
                    nanos: 0,
                }),
                ..Default::default()
            };
            store
                .raw_tree("msgid_meta")
                .unwrap()
                .insert(id, record.encode_to_vec())
                .unwrap();
            store
                .raw_tree("name_counter")
                .unwrap()
                .remove(b"due-index-built")
                .unwrap();
            store.close().unwrap();
        }
        let store = open_store(dir.path());
        assert_eq!(store.due_up_to(999, 10).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(
            store.due_up_to(1_000, 10).unwrap(),
            vec![due_key(1_000, &id)]
        );
    }

    /// Transactional writes queued together share one transaction; one that aborts changes
    /// nothing and gets its error, the others commit as if each had run alone.
    #[tokio::test]
    async fn a_refused_write_in_a_shared_transaction_leaves_the_others_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open_store(dir.path()));
        // Holds the writer so the next writes queue up and run as one batch.
        let blocker = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(|_| {
                        std::thread::sleep(Duration::from_millis(300));
                        Ok(())
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let append = |refuse: bool| {
            let store = store.clone();
            async move {
                store
                    .write_tx(move |tx| {
                        let index = tx.append_event(pb::Event {
                            r#type: pb::EventType::Accepted.into(),
                            ..Default::default()
                        })?;
                        tx.counters
                            .insert(b"test-last".as_slice(), &index.to_be_bytes())?;
                        if refuse {
                            return abort(RelayError::NotFound(format!("refused at {index}")));
                        }
                        Ok(index)
                    })
                    .await
            }
        };
        let (a, b, c, d) = tokio::join!(append(false), append(true), append(false), append(true));
        blocker.await.unwrap().unwrap();
        let mut accepted = vec![a.unwrap(), c.unwrap()];
        accepted.sort();
        assert_eq!(accepted, vec![0, 1]);
        for refused in [b, d] {
            assert!(
                matches!(refused, Err(RelayError::NotFound(_))),
                "{refused:?}"
            );
        }
        // Only the accepted writes are in the log, contiguous, with their hashes.
        assert_eq!(store.event_count().unwrap(), 2);
        assert_eq!(store.durable_size(), 2);
        for i in 0..2 {
            assert_eq!(store.event(i).unwrap().unwrap().index, i);
        }
        assert!(store.event(2).unwrap().is_none());
        let root = silta_proto::tlog::root(store.as_ref(), 2).unwrap();
        let leaves: Vec<_> = (0..2)
            .map(|i| silta_proto::tlog::leaf_hash(&store.leaf(i).unwrap().unwrap()))
            .collect();
        assert_eq!(root, silta_proto::tlog::node_hash(&leaves[0], &leaves[1]));
        let last = store
            .raw_tree("name_counter")
            .unwrap()
            .get(b"test-last")
            .unwrap()
            .unwrap();
        // The later accepted write's, not a refused one's (their changes are gone).
        assert_eq!(last.as_ref(), 1u64.to_be_bytes());
    }

    /// Roots and proofs read through the subtree cache agree with a tree built in memory at
    /// every size as the log grows (a cached hash is never stale), and the cache never answers
    /// for a subtree it was not given, whatever shares its slot.
    #[tokio::test]
    async fn roots_and_proofs_through_the_subtree_cache_match_the_tree_as_it_grows() {
        use silta_proto::tlog::{self, HashSource as _, MemoryTree};
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open_store(dir.path()));
        let mut memory = MemoryTree::default();
        for n in 1..=70u64 {
            append_one(&store).await;
            memory.push(tlog::leaf_hash(&store.leaf(n - 1).unwrap().unwrap()));
            for size in [n, n.div_ceil(2), 1] {
                // Twice: the first read fills the cache, the second is answered from it.
                for _ in 0..2 {
                    assert_eq!(tlog::root(store.as_ref(), size).unwrap(), memory.root(size));
                    for index in [0, size / 2, size - 1] {
                        assert_eq!(
                            tlog::inclusion_proof(store.as_ref(), index, size).unwrap(),
                            tlog::inclusion_proof(&memory, index, size).unwrap(),
                            "index {index} in {size} after {n} appends"
                        );
                    }
                    assert_eq!(
                        tlog::consistency_proof(store.as_ref(), size.div_ceil(3), n).unwrap(),
                        tlog::consistency_proof(&memory, size.div_ceil(3), n).unwrap(),
                        "{} to {n}",
                        size.div_ceil(3)
                    );
                }
            }
            // The root's left subtree was read, so the cache holds it, with the right hash.
            let level = 63 - n.leading_zeros() as u8;
            assert_eq!(
                store.subtree_cache.get(level, 0),
                Some(memory.stored(level, 0).unwrap())
            );
        }
        // A hash is never rewritten: the log's counter wound back (damage) makes the next
        // append refuse, instead of leaving a cached hash stale.
        store
            .write_tx(|tx| {
                tx.counters.insert(COUNTER_EVENTS, &68u64.to_be_bytes())?;
                Ok(())
            })
            .await
            .unwrap();
        let rewrite = store
            .write_tx(|tx| {
                tx.append_event(pb::Event {
                    r#type: pb::EventType::Rejected.into(),
                    ..Default::default()
                })
            })
            .await;
        assert!(
            matches!(rewrite, Err(RelayError::Store(StoreError::Corrupt { .. }))),
            "{rewrite:?}"
        );

        let cache = SubtreeCache::new();
        let h = |b: u8| [b; 32];
        cache.put(3, 7, h(1));
        assert_eq!(cache.get(3, 7), Some(h(1)));
        assert_eq!(cache.get(3, 8), None);
        assert_eq!(cache.get(4, 7), None);
        // Find another subtree in the same slot: it replaces the first, and neither answers
        // for the other.
        let other = (0..u64::MAX)
            .find(|&i| std::ptr::eq(cache.slot(0, i), cache.slot(3, 7)))
            .unwrap();
        cache.put(0, other, h(2));
        assert_eq!(cache.get(3, 7), None);
        assert_eq!(cache.get(0, other), Some(h(2)));
    }

    /// The withdrawal index: a case record written with a withdrawal under way is marked in the
    /// same transaction and unmarked when it is done; a database from before the index gets it
    /// built once at open, from the case records.
    #[tokio::test]
    async fn the_withdrawal_index_follows_the_case_records_and_is_built_for_older_folders() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = ([1u8; 16], [2u8; 16]);
        {
            let store = open_store(dir.path());
            store
                .write_tx(move |tx| {
                    tx.put_case(&a, &crate::cases::CaseRecord::default())?;
                    let moving = crate::cases::CaseRecord {
                        withdrawing: vec!["centre/old".into()],
                        ..Default::default()
                    };
                    tx.put_case(&b, &moving)
                })
                .await
                .unwrap();
            assert_eq!(store.withdrawals_marked().unwrap(), vec![b.to_vec()]);
            store
                .write_tx(move |tx| {
                    tx.put_case(&b, &crate::cases::CaseRecord::default())?;
                    tx.withdrawal_done(&b)
                })
                .await
                .unwrap();
            assert!(store.withdrawals_marked().unwrap().is_empty());
            // As an older relay left it: a withdrawal under way, no index.
            let moving = crate::cases::CaseRecord {
                withdrawing: vec!["centre/old".into()],
                ..Default::default()
            };
            store.trees.cases.insert(a, moving.encode_to_vec()).unwrap();
            store.close().unwrap();
            // Closed cleanly, the index is trusted at this size...
            assert_eq!(
                read_u64(
                    store
                        .trees
                        .counters
                        .get(WITHDRAWAL_INDEX_BUILT)
                        .unwrap()
                        .as_deref()
                )
                .unwrap(),
                store.event_count().unwrap()
            );
            // ...and not at any other size (the log moved on after it: an older relay ran, or
            // the relay crashed).
            let other = store.event_count().unwrap() + 1;
            store
                .trees
                .counters
                .insert(WITHDRAWAL_INDEX_BUILT, &other.to_be_bytes())
                .unwrap();
            store.db.flush().unwrap();
        }
        let store = open_store(dir.path());
        assert_eq!(store.withdrawals_marked().unwrap(), vec![a.to_vec()]);
        assert_eq!(
            crate::cases::unfinished_withdrawals(&store).unwrap(),
            vec![a.to_vec()]
        );
        store.close().unwrap();
    }

    /// Holds the writer in a batch of its own until `release` gets a message: the writes queued
    /// meanwhile then run as one batch. Returns once the writer is inside it.
    async fn hold_writer(
        store: &Arc<Store>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), RelayError>>,
    ) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |_| {
                        started.send(()).unwrap();
                        let _ = wait.recv();
                        Ok(())
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || running.recv().unwrap())
            .await
            .unwrap();
        (release, blocker)
    }

    /// Appends one event in a transactional write; returns its index.
    async fn append_one(store: &Store) -> u64 {
        append_one_result(store).await.unwrap()
    }

    async fn append_one_result(store: &Store) -> Result<u64, RelayError> {
        store
            .write_tx(|tx| {
                tx.append_event(pb::Event {
                    r#type: pb::EventType::Accepted.into(),
                    ..Default::default()
                })
            })
            .await
    }

    #[tokio::test]
    async fn a_batch_shares_one_receipt_size_kept_across_batches_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Arc::new(open_store(dir.path()));
            assert_eq!(append_one(&store).await, 0);
            assert_eq!(store.receipt_size(0).unwrap(), 1, "alone in its batch");
            // Holds the writer (in a batch of its own) until three appends are queued: they
            // then run as one batch.
            let (release, blocker) = hold_writer(&store).await;
            let (a, b, c, ()) = tokio::join!(
                append_one(&store),
                append_one(&store),
                append_one(&store),
                async { release.send(()).unwrap() }
            );
            blocker.await.unwrap().unwrap();
            let mut batch = vec![a, b, c];
            batch.sort();
            assert_eq!(batch, vec![1, 2, 3]);
            for i in 1..=3 {
                assert_eq!(store.receipt_size(i).unwrap(), 4, "index {i}");
            }
            assert_eq!(append_one(&store).await, 4);
            assert_eq!(store.receipt_size(4).unwrap(), 5);
            assert_eq!(
                store.receipt_size(2).unwrap(),
                4,
                "unchanged by a later batch"
            );
            assert!(store.durable_size() >= 5);
            store.close().unwrap();
        }
        {
            let store = open_store(dir.path());
            assert_eq!(store.receipt_size(0).unwrap(), 1);
            assert_eq!(store.receipt_size(3).unwrap(), 4, "kept across a restart");
            // A data folder from before shared checkpoints: no sizes recorded.
            let counters = store.raw_tree("name_counter").unwrap();
            for key in counters.scan_prefix(RECEIPT_SIZE_PREFIX).keys() {
                counters.remove(key.unwrap()).unwrap();
            }
            counters.remove(RECEIPT_SIZES_FROM).unwrap();
            store.close().unwrap();
        }
        {
            let store = open_store(dir.path());
            // Its events keep the receipts they were issued: exactly index + 1 entries.
            for i in 0..5 {
                assert_eq!(store.receipt_size(i).unwrap(), i + 1);
            }
            let store = Arc::new(store);
            let (release, blocker) = hold_writer(&store).await;
            let (a, b, ()) = tokio::join!(append_one(&store), append_one(&store), async {
                release.send(()).unwrap()
            });
            blocker.await.unwrap().unwrap();
            assert_eq!((a, b), (5, 6));
            assert_eq!(store.receipt_size(5).unwrap(), 7);
            // A crash after sled wrote the batch but before its end was recorded: the end is
            // missing on disk.
            store
                .raw_tree("name_counter")
                .unwrap()
                .remove(receipt_size_key(7))
                .unwrap();
            store.close().unwrap();
        }
        let store = open_store(dir.path());
        // The start ends the unanswered tail as one batch, before anything is appended ...
        assert_eq!(store.receipt_size(5).unwrap(), 7);
        assert_eq!(append_one(&store).await, 7);
        // ... so a retry gets the same checkpoint after later batches too.
        assert_eq!(store.receipt_size(5).unwrap(), 7);
        assert_eq!(store.receipt_size(6).unwrap(), 7);
        assert_eq!(store.receipt_size(7).unwrap(), 8);
    }

    #[tokio::test]
    async fn a_snapshot_in_the_middle_of_a_batch_ends_a_receipt_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open_store(dir.path()));
        let (release, blocker) = hold_writer(&store).await;
        // One batch: an append, a backup's snapshot (which sees the log at 1), an append.
        let (first, seen, second, ()) = tokio::join!(
            append_one(&store),
            store.snapshot(|frozen| Ok(frozen.event_count()?)),
            append_one(&store),
            async { release.send(()).unwrap() }
        );
        blocker.await.unwrap().unwrap();
        assert_eq!((first, seen.unwrap(), second), (0, 1, 1));
        // The backup holds event 0 with the checkpoint its receipt names; event 1 is not in it.
        assert_eq!(store.receipt_size(0).unwrap(), 1);
        assert_eq!(store.receipt_size(1).unwrap(), 2);
    }

    fn store_with_timeout(dir: &std::path::Path, ms: u64) -> Store {
        let options = StoreOptions {
            write_timeout: Duration::from_millis(ms),
            ..StoreOptions::default()
        };
        Store::open_with(dir, &options).unwrap()
    }

    #[tokio::test]
    async fn a_late_write_fails_the_store_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_timeout(dir.path(), 100);
        let failure = store.failure();
        assert!(failure.borrow().is_none());
        // A writer stuck (as in a flush on a full disk) for longer than the timeout.
        let late = store
            .write(|_| {
                std::thread::sleep(Duration::from_millis(400));
                Ok(())
            })
            .await;
        assert!(matches!(
            late,
            Err(RelayError::Store(StoreError::TimedOut(_)))
        ));
        let reason = failure.borrow().clone().expect("failed");
        assert!(reason.contains("storage.write_timeout_ms"), "{reason}");
        // Every later write fails at once, without reaching the writer.
        let started = std::time::Instant::now();
        let next = store.register_principal("centre/a".parse().unwrap()).await;
        assert!(matches!(next, Err(RelayError::Store(StoreError::Failed))));
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(matches!(store.close(), Err(StoreError::Failed)));
    }

    #[tokio::test]
    async fn nothing_after_a_sled_error_in_a_batch_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open_store(dir.path()));
        // Hold the writer in a batch of its own while the next three queue up as one batch.
        let (release, blocker) = hold_writer(&store).await;
        let broken = store.write(|_| -> Result<(), RelayError> {
            Err(RelayError::Store(StoreError::Sled(Arc::new(
                sled::Error::Io(std::io::Error::other("disk gone")),
            ))))
        });
        let (broken, appended, marked, ()) = tokio::join!(
            broken,
            append_one_result(&store),
            store.write(|trees| {
                trees.counters.insert(b"test-after", &[1])?;
                Ok(())
            }),
            async { release.send(()).unwrap() }
        );
        blocker.await.unwrap().unwrap();
        assert!(
            matches!(broken, Err(RelayError::Store(StoreError::Sled(_)))),
            "{broken:?}"
        );
        assert!(appended.is_err(), "{appended:?}");
        assert!(marked.is_err(), "{marked:?}");
        // Neither ran: nothing of theirs is in sled, not even in memory.
        assert!(store.event(0).unwrap().is_none());
        assert!(
            store
                .raw_tree("name_counter")
                .unwrap()
                .get(b"test-after")
                .unwrap()
                .is_none()
        );
        assert!(store.failure().borrow().is_some());
    }

    #[tokio::test]
    async fn a_dead_writer_fails_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_timeout(dir.path(), 5_000);
        let mut failure = store.failure();
        let died = store
            .write(|_| -> Result<(), RelayError> { panic!("writer bug") })
            .await;
        assert!(died.is_err());
        let reason =
            tokio::time::timeout(Duration::from_secs(5), failure.wait_for(Option::is_some))
                .await
                .expect("the store noticed")
                .unwrap()
                .clone()
                .unwrap();
        assert!(reason.contains("writer thread died"), "{reason}");
        assert!(matches!(
            store.register_principal("centre/a".parse().unwrap()).await,
            Err(RelayError::Store(StoreError::Failed))
        ));
    }
}

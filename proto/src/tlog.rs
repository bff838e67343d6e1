//! The delivery log's Merkle tree (RFC 9162 §2.1, identical to RFC 6962) and its signed
//! checkpoints (C2SP tlog-checkpoint in the C2SP signed-note format, Ed25519).
//!
//! Hashes: leaf `SHA-256(0x00 || data)`, node `SHA-256(0x01 || left || right)`, empty tree
//! `SHA-256("")`. A tree of `n > 1` leaves splits at the largest power of two below `n`.
//!
//! Storage keeps the hash of every *perfect, aligned* subtree, addressed by (level, index): the
//! subtree of `2^level` leaves starting at leaf `index * 2^level`. Appending leaf `n` stores its
//! leaf hash and every parent it completes ([`append_hashes`]). The hash of any range, and so
//! every root and proof, is then a handful of lookups ([`HashSource`]); nothing ever needs all
//! leaves in memory.
//!
//! Verification follows the RFC 9162 algorithms (§2.1.3.2 inclusion, §2.1.4.2 consistency)
//! literally; they are what auditors and evidence checks run.

use sha2::{Digest as _, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Hash of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// Leaf hash of `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(data)
        .finalize()
        .into()
}

/// Interior node hash.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// Reads stored perfect-subtree hashes.
pub trait HashSource {
    /// The error of the underlying store.
    type Error;
    /// The hash of the perfect subtree at (`level`, `index`), which must exist.
    fn stored(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

/// The (level, index) → hash entries to store when leaf `n` (0-based) with hash `leaf` is
/// appended: the leaf itself and each parent it completes. `sibling` reads an already stored
/// hash (the left siblings along the way).
pub fn append_hashes<E>(
    n: u64,
    leaf: Hash,
    sibling: impl Fn(u8, u64) -> Result<Hash, E>,
) -> Result<Vec<(u8, u64, Hash)>, E> {
    let mut out = vec![(0u8, n, leaf)];
    let (mut level, mut index, mut hash) = (0u8, n, leaf);
    while index & 1 == 1 {
        let left = sibling(level, index - 1)?;
        hash = node_hash(&left, &hash);
        level += 1;
        index >>= 1;
        out.push((level, index, hash));
    }
    Ok(out)
}

/// Largest power of two strictly less than `n` (n > 1).
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// Hash of leaves `[start, end)`, where `start` is aligned to the largest power of two
/// not above `end - start` (true for every range the RFC recursion visits).
pub fn range_hash<S: HashSource>(s: &S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let n = end - start;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return s.stored(n.trailing_zeros() as u8, start / n);
    }
    let k = split(n);
    let left = range_hash(s, start, start + k)?;
    let right = range_hash(s, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// Root of the tree of the first `size` leaves.
pub fn root<S: HashSource>(s: &S, size: u64) -> Result<Hash, S::Error> {
    range_hash(s, 0, size)
}

/// Inclusion proof (audit path, leaf to root) of leaf `index` in the tree of `size` leaves:
/// RFC 9162 §2.1.3.1. Requires `index < size`.
pub fn inclusion_proof<S: HashSource>(s: &S, index: u64, size: u64) -> Result<Vec<Hash>, S::Error> {
    let mut path = Vec::new();
    path_rec(s, index, 0, size, &mut path)?;
    Ok(path)
}

fn path_rec<S: HashSource>(
    s: &S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path_rec(s, m, start, start + k, out)?;
        out.push(range_hash(s, start + k, end)?);
    } else {
        path_rec(s, m - k, start + k, end, out)?;
        out.push(range_hash(s, start, start + k)?);
    }
    Ok(())
}

/// Consistency proof between the trees of `old` and `new` leaves: RFC 9162 §2.1.4.1. Requires
/// `0 < old <= new`.
pub fn consistency_proof<S: HashSource>(s: &S, old: u64, new: u64) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    if old < new {
        subproof(s, old, 0, new, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof<S: HashSource>(
    s: &S,
    m: u64,
    start: u64,
    end: u64,
    b: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !b {
            out.push(range_hash(s, start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(s, m, start, start + k, b, out)?;
        out.push(range_hash(s, start + k, end)?);
    } else {
        subproof(s, m - k, start + k, end, false, out)?;
        out.push(range_hash(s, start, start + k)?);
    }
    Ok(())
}

/// Why a proof did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// Index or sizes out of range.
    #[error("index or tree sizes out of range")]
    OutOfRange,
    /// The proof has the wrong number of hashes.
    #[error("proof has the wrong length")]
    WrongLength,
    /// The recomputed root differs.
    #[error("recomputed root does not match")]
    RootMismatch,
}

/// RFC 9162 §2.1.3.2: does `leaf` at `index` belong to the tree of `size` with `root`?
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange);
    }
    let (mut fnn, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnn & 1 == 1 || fnn == sn {
            r = node_hash(p, &r);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: is the tree (`old`, `old_root`) a prefix of (`new`, `new_root`)?
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::OutOfRange);
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if old == 0 {
        // Everything extends the empty tree; nothing to prove but that it is the empty tree.
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if *old_root == empty_root() {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if old.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let (mut fnn, mut sn) = (old - 1, new - 1);
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnn & 1 == 1 || fnn == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// An in-memory tree of leaf hashes (for auditors replaying the log, and for tests).
#[derive(Debug, Default, Clone)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let n = self.len();
        let entries = append_hashes::<std::convert::Infallible>(n, leaf, |l, i| {
            Ok(self.levels[l as usize][i as usize])
        })
        .unwrap_or_default();
        for (level, index, hash) in entries {
            if self.levels.len() <= level as usize {
                self.levels.push(Vec::new());
            }
            debug_assert_eq!(self.levels[level as usize].len() as u64, index);
            self.levels[level as usize].push(hash);
        }
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels.first()?.get(index as usize).copied()
    }

    /// Root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Hash {
        root(self, size).unwrap_or_else(|e| match e {})
    }
}

impl HashSource for MemoryTree {
    type Error = std::convert::Infallible;

    fn stored(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        Ok(self.levels[level as usize][index as usize])
    }
}

// ----- checkpoints: C2SP signed note + tlog-checkpoint -----

/// Signature type byte of Ed25519 in C2SP signed notes.
const ED25519_TYPE: u8 = 0x01;

/// A checkpoint's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (also the key name).
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size, base64 root, each ending in a newline.
    pub fn body(&self) -> String {
        use base64::Engine as _;
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            base64::engine::general_purpose::STANDARD.encode(self.root)
        )
    }
}

/// The key ID of a signed-note key: SHA-256(name || 0x0A || type || public key)[:4].
pub fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let d = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([0x0a, ED25519_TYPE])
        .chain_update(public)
        .finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The verifier key string, as Go's `note` package prints it: `name+hexid+base64(type||key)`.
pub fn verifier_key(name: &str, public: &[u8; 32]) -> String {
    use base64::Engine as _;
    let mut typed = vec![ED25519_TYPE];
    typed.extend_from_slice(public);
    format!(
        "{name}+{}+{}",
        hex::encode(key_id(name, public)),
        base64::engine::general_purpose::STANDARD.encode(typed)
    )
}

/// Signs a checkpoint: the note body, a blank line, and one signature line.
pub fn sign_checkpoint(cp: &Checkpoint, key: &ed25519_dalek::SigningKey) -> String {
    sign_checkpoint_with(cp, &[key])
}

/// Signs a checkpoint with every key in `keys`: the note body, a blank line, and one signature
/// line per key, in order. All lines carry the origin as key name; the key ID (the first four
/// bytes of each signature) tells them apart. A relay whose log key is being rotated signs with
/// the old and the new key, so auditors holding either verifier key go on verifying.
pub fn sign_checkpoint_with(cp: &Checkpoint, keys: &[&ed25519_dalek::SigningKey]) -> String {
    use base64::Engine as _;
    use ed25519_dalek::Signer as _;
    let body = cp.body();
    let mut note = format!("{body}\n");
    for key in keys {
        let public = key.verifying_key().to_bytes();
        let mut sig = key_id(&cp.origin, &public).to_vec();
        sig.extend_from_slice(&key.sign(body.as_bytes()).to_bytes());
        note.push_str(&format!(
            "\u{2014} {} {}\n",
            cp.origin,
            base64::engine::general_purpose::STANDARD.encode(sig)
        ));
    }
    note
}

/// Why a signed checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The verifier key string is malformed.
    #[error("malformed verifier key: {0}")]
    BadKey(String),
    /// The note is not a well-formed signed checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// No signature by the given key, or it does not verify.
    #[error("checkpoint is not signed by {0}")]
    NotSigned(String),
}

/// Parses a verifier key string into (name, public key).
pub fn parse_verifier_key(s: &str) -> Result<(String, [u8; 32]), NoteError> {
    use base64::Engine as _;
    let bad = || NoteError::BadKey(s.chars().take(100).collect());
    let mut parts = s.trim().splitn(3, '+');
    let (name, id, key) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    let typed = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| bad())?;
    if typed.len() != 33 || typed[0] != ED25519_TYPE {
        return Err(bad());
    }
    let public: [u8; 32] = typed[1..].try_into().map_err(|_| bad())?;
    if name.is_empty()
        || name.contains(char::is_whitespace)
        || !hex::encode(key_id(name, &public)).eq_ignore_ascii_case(id)
    {
        return Err(bad());
    }
    Ok((name.to_owned(), public))
}

/// Verifies a signed checkpoint against one or more verifier key strings (separated by white
/// space) and returns its content.
///
/// The note is good when it carries a valid signature by **any** of the keys. Each configured key
/// is one the auditor trusts to speak for the log on its own, so accepting any is no weaker than
/// configuring that key alone; requiring all would leave a gap in a rotation, since the relay
/// signs with the old key only before `log-key rotate` and with the new key only after
/// `log-key finish`. Every key must parse: a mistyped key is an error, not a key skipped.
pub fn verify_checkpoint(note: &str, verifiers: &str) -> Result<Checkpoint, NoteError> {
    let keys: Vec<(String, [u8; 32])> = verifiers
        .split_whitespace()
        .map(parse_verifier_key)
        .collect::<Result<_, _>>()?;
    if keys.is_empty() {
        return Err(NoteError::BadKey("no verifier key".into()));
    }
    let mut last = None;
    for (name, public) in &keys {
        match verify_with(note, name, public) {
            Ok(cp) => return Ok(cp),
            Err(e @ NoteError::NotSigned(_)) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| NoteError::NotSigned(String::new())))
}

fn verify_with(note: &str, name: &str, public: &[u8; 32]) -> Result<Checkpoint, NoteError> {
    use base64::Engine as _;
    let (name, public) = (name.to_owned(), *public);
    if !note.ends_with('\n') {
        return Err(NoteError::Malformed("a note ends with a newline".into()));
    }
    // As Go's note package: the signatures follow the *last* blank line.
    let (body, sigs) = note
        .rsplit_once("\n\n")
        .ok_or_else(|| NoteError::Malformed("no blank line before signatures".into()))?;
    if body.contains('\r') {
        return Err(NoteError::Malformed("carriage return in note".into()));
    }
    let body = format!("{body}\n");
    let mut lines = body.lines();
    let origin = lines.next().unwrap_or_default().to_owned();
    let size: u64 = lines
        .next()
        .and_then(|l| {
            (!l.is_empty()
                && l.bytes().all(|b| b.is_ascii_digit())
                && (l == "0" || !l.starts_with('0')))
            .then_some(l)
        })
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| NoteError::Malformed("tree size".into()))?;
    let root: Hash = lines
        .next()
        .and_then(|l| base64::engine::general_purpose::STANDARD.decode(l).ok())
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| NoteError::Malformed("root hash".into()))?;
    if origin != name {
        return Err(NoteError::NotSigned(name));
    }
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&public)
        .map_err(|_| NoteError::BadKey(verifier_key(&name, &public)))?;
    let id = key_id(&name, &public);
    for line in sigs.lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            continue;
        };
        let Some((n, sig)) = rest.split_once(' ') else {
            continue;
        };
        if n != name {
            continue;
        }
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(sig) else {
            continue;
        };
        if raw.len() != 68 || raw[..4] != id {
            continue;
        }
        let sig = ed25519_dalek::Signature::from_bytes(raw[4..].try_into().unwrap_or(&[0; 64]));
        if vk.verify_strict(body.as_bytes(), &sig).is_ok() {
            return Ok(Checkpoint { origin, size, root });
        }
    }
    Err(NoteError::NotSigned(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// The reference leaves and roots of RFC 6962 test data, as used by Google's
    /// certificate-transparency `merkle_tree_test.cc` and transparency-dev/merkle's tests.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn tree() -> MemoryTree {
        let mut t = MemoryTree::default();
        for l in LEAVES {
            t.push(leaf_hash(&hex::decode(l).unwrap()));
        }
        t
    }

    #[test]
    fn known_roots() {
        let t = tree();
        for (n, r) in ROOTS.iter().enumerate() {
            assert_eq!(t.root(n as u64), h(r), "size {n}");
        }
    }

    #[test]
    fn known_inclusion_proofs() {
        let t = tree();
        // (0-based index, size, path) from the same test data.
        let cases: [(u64, u64, &[&str]); 4] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, path) in cases {
            let proof = inclusion_proof(&t, index, size).unwrap();
            assert_eq!(
                proof,
                path.iter().map(|p| h(p)).collect::<Vec<_>>(),
                "{index}/{size}"
            );
            verify_inclusion(
                index,
                size,
                &t.leaf(index).unwrap(),
                &proof,
                &h(ROOTS[size as usize]),
            )
            .unwrap();
        }
    }

    #[test]
    fn known_consistency_proofs() {
        let t = tree();
        let cases: [(u64, u64, &[&str]); 4] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (old, new, path) in cases {
            let proof = consistency_proof(&t, old, new).unwrap();
            assert_eq!(
                proof,
                path.iter().map(|p| h(p)).collect::<Vec<_>>(),
                "{old}->{new}"
            );
            verify_consistency(
                old,
                new,
                &proof,
                &h(ROOTS[old as usize]),
                &h(ROOTS[new as usize]),
            )
            .unwrap();
        }
    }

    #[test]
    fn checkpoints_sign_and_verify() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let cp = Checkpoint {
            origin: "silta.example/log".into(),
            size: 8,
            root: h(ROOTS[8]),
        };
        let note = sign_checkpoint(&cp, &key);
        assert!(note.starts_with("silta.example/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n\u{2014} silta.example/log "), "{note}");
        let vkey = verifier_key("silta.example/log", &key.verifying_key().to_bytes());
        assert_eq!(verify_checkpoint(&note, &vkey).unwrap(), cp);
        // Any change breaks it.
        let tampered = note.replacen("\n8\n", "\n9\n", 1);
        assert!(matches!(
            verify_checkpoint(&tampered, &vkey),
            Err(NoteError::NotSigned(_))
        ));
        let other = verifier_key(
            "silta.example/log",
            &ed25519_dalek::SigningKey::from_bytes(&[8; 32])
                .verifying_key()
                .to_bytes(),
        );
        assert!(verify_checkpoint(&note, &other).is_err());
        assert!(parse_verifier_key("nonsense").is_err());
    }

    #[test]
    fn a_note_signed_by_two_keys_verifies_with_either_and_any_of_several_keys() {
        let (old, new) = (
            ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
            ed25519_dalek::SigningKey::from_bytes(&[8; 32]),
        );
        let third = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let name = "silta.example/log";
        let v = |k: &ed25519_dalek::SigningKey| verifier_key(name, &k.verifying_key().to_bytes());
        let cp = Checkpoint {
            origin: name.into(),
            size: 8,
            root: h(ROOTS[8]),
        };
        let both = sign_checkpoint_with(&cp, &[&old, &new]);
        assert_eq!(both.matches('\u{2014}').count(), 2, "{both}");
        // The first signature line is what a single-key signer writes.
        assert!(both.starts_with(&sign_checkpoint(&cp, &old)), "{both}");
        for key in [v(&old), v(&new), format!("{}\n{}", v(&old), v(&new))] {
            assert_eq!(verify_checkpoint(&both, &key).unwrap(), cp, "{key}");
        }
        assert!(matches!(
            verify_checkpoint(&both, &v(&third)),
            Err(NoteError::NotSigned(_))
        ));
        // Any configured key that signed is enough.
        let only_new = sign_checkpoint(&cp, &new);
        assert_eq!(
            verify_checkpoint(&only_new, &format!("{} {}", v(&old), v(&new))).unwrap(),
            cp
        );
        assert!(verify_checkpoint(&only_new, &v(&old)).is_err());
        // A mistyped key among good ones is an error, not skipped; no key at all is one too.
        assert!(matches!(
            verify_checkpoint(&only_new, &format!("{} nonsense", v(&new))),
            Err(NoteError::BadKey(_))
        ));
        assert!(matches!(
            verify_checkpoint(&only_new, " "),
            Err(NoteError::BadKey(_))
        ));
    }
}

//! Per-message storage keys, kept outside sled so that a purge can really destroy them.
//!
//! sled is log-structured: a removed value stays in its old segment until sled happens to reuse
//! that segment for new writes, and nothing in sled 0.34 forces that (measured: ciphertext bytes
//! were still in the data files after removal and flush, and went only once about as much new
//! data had been written again). So the relay stores each ciphertext encrypted at rest with
//! AES-256-GCM under a random key of its own, and keeps that key in a slot of this file:
//! 32 bytes at offset `32 × slot`, overwritten in place. The purge zeroes the slot in the same
//! write that deletes the ciphertext, and the writer makes the file durable before it flushes
//! sled, so a purge on disk never leaves its key behind, and an accepted message never lacks its
//! key. Whatever sled keeps of a purged message afterwards is sealed under a key that no longer
//! exists.
//!
//! What this does not cover: a filesystem that writes elsewhere instead of in place
//! (copy-on-write such as btrfs or ZFS, or snapshots) or an SSD's remapped blocks can keep the
//! old slot contents out of reach of the relay; on such storage use full-disk encryption and
//! keep backups on the same retention.

use std::{
    fs::File,
    os::unix::fs::{FileExt as _, OpenOptionsExt as _},
    path::Path,
};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

/// Bytes of a key.
pub const KEY_LEN: usize = 32;

/// The key file (see the module documentation).
pub struct Keyring {
    file: File,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").finish_non_exhaustive()
    }
}

impl Keyring {
    /// Opens (or creates, mode 0600) the key file at `path`. A file it creates is made durable
    /// together with its folder entry, so a power loss cannot leave a database without it.
    pub fn open(path: &Path) -> std::io::Result<Keyring> {
        let options = |create_new: bool| {
            let mut o = std::fs::OpenOptions::new();
            o.read(true).write(true).create_new(create_new).mode(0o600);
            o
        };
        let file = match options(true).open(path) {
            Ok(file) => {
                file.sync_all()?;
                let folder = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                File::open(folder)?.sync_all()?;
                file
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => options(false).open(path)?,
            Err(e) => return Err(e),
        };
        Ok(Keyring { file })
    }

    /// Writes `key` into `slot` (durable after [`Keyring::sync`]).
    pub fn put(&self, slot: u64, key: &[u8; KEY_LEN]) -> std::io::Result<()> {
        self.file.write_all_at(key, offset(slot)?)
    }

    /// The key in `slot`; `None` once erased (or never written).
    pub fn get(&self, slot: u64) -> std::io::Result<Option<[u8; KEY_LEN]>> {
        let mut key = [0u8; KEY_LEN];
        match self.file.read_exact_at(&mut key, offset(slot)?) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        Ok((key != [0u8; KEY_LEN]).then_some(key))
    }

    /// Overwrites `slot` with zeros (durable after [`Keyring::sync`]).
    pub fn erase(&self, slot: u64) -> std::io::Result<()> {
        self.file.write_all_at(&[0u8; KEY_LEN], offset(slot)?)
    }

    /// Makes every `put` and `erase` so far durable.
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

fn offset(slot: u64) -> std::io::Result<u64> {
    slot.checked_mul(KEY_LEN as u64)
        .ok_or_else(|| std::io::Error::other("key slot out of range"))
}

/// A fresh random key.
pub fn new_key() -> std::io::Result<[u8; KEY_LEN]> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(key)
}

fn sealing_key(key: &[u8; KEY_LEN]) -> LessSafeKey {
    // AES-256 takes any 32 bytes.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key"))
}

/// Seals `data` under `key` (used for this one message only, so a fixed nonce is safe), bound
/// to `message_id`.
pub fn seal(key: &[u8; KEY_LEN], message_id: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    sealing_key(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key([0u8; 12]),
            Aad::from(message_id),
            &mut out,
        )
        .expect("AES-GCM sealing of a message within its size limit");
    out
}

/// Opens what [`seal`] sealed; `None` if it does not authenticate.
pub fn open(key: &[u8; KEY_LEN], message_id: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let mut buf = sealed.to_vec();
    let n = sealing_key(key)
        .open_in_place(
            Nonce::assume_unique_for_key([0u8; 12]),
            Aad::from(message_id),
            &mut buf,
        )
        .ok()?
        .len();
    buf.truncate(n);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why the keys exist: sled keeps a removed value's bytes in its files after the removal is
    /// flushed (it reuses the segment later, when it needs the space). If this ever fails, sled
    /// erases on removal and the module documentation should say so.
    #[test]
    fn sled_keeps_removed_values_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path())
            .flush_every_ms(None)
            .open()
            .unwrap();
        let tree = db.open_tree("t").unwrap();
        let value = |i: u32| {
            let mut v = format!("REMOVED-VALUE-{i:08}").into_bytes();
            v.resize(2000, b'x');
            v
        };
        for i in 0..500u32 {
            tree.insert(i.to_be_bytes(), value(i)).unwrap();
        }
        db.flush().unwrap();
        for i in 0..500u32 {
            tree.remove(i.to_be_bytes()).unwrap();
        }
        db.flush().unwrap();
        assert!(tree.is_empty());
        let mut found = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                found += bytes
                    .windows(14)
                    .filter(|w| *w == b"REMOVED-VALUE-")
                    .count();
            }
        }
        assert!(found >= 500, "only {found} removed values left on disk");
    }

    #[test]
    fn keys_are_stored_erased_and_bind_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(&dir.path().join("keys")).unwrap();
        let (a, b) = (new_key().unwrap(), new_key().unwrap());
        ring.put(3, &a).unwrap();
        ring.put(0, &b).unwrap();
        ring.sync().unwrap();
        assert_eq!(ring.get(3).unwrap(), Some(a));
        assert_eq!(ring.get(1).unwrap(), None);
        assert_eq!(ring.get(9).unwrap(), None);
        let sealed = seal(&a, b"id-1", b"ciphertext");
        assert!(!sealed.windows(10).any(|w| w == b"ciphertext"));
        assert_eq!(open(&a, b"id-1", &sealed).unwrap(), b"ciphertext");
        assert!(open(&a, b"id-2", &sealed).is_none());
        assert!(open(&b, b"id-1", &sealed).is_none());
        ring.erase(3).unwrap();
        ring.sync().unwrap();
        assert_eq!(ring.get(3).unwrap(), None);
        // The file no longer holds the key's bytes.
        let bytes = std::fs::read(dir.path().join("keys")).unwrap();
        assert!(!bytes.windows(KEY_LEN).any(|w| w == a));
    }
}

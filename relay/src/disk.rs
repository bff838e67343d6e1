//! Free space on the data folder's filesystem, so that a send is refused with a clear
//! `RESOURCE_EXHAUSTED` before the database ever meets a full disk.
//!
//! sled 0.34 does not survive `ENOSPC` gracefully: its error sticks (every later write fails
//! until a restart, even after space is freed), or a flush hangs for ever. So the relay keeps a
//! reserve (`storage.min_free_bytes`) that sends may not eat into. Measuring is a `statvfs`
//! system call; it is done every [`REFRESH`] by a background thread, and between measurements
//! the bytes admitted since are subtracted, so a burst of sends cannot overshoot by much.
//! Only sends are checked: acknowledgements, key publications and registrations are small and
//! bounded, and refusing acknowledgements would keep full mailboxes from draining.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

use crate::error::RelayError;

/// How often free space is measured.
pub const REFRESH: Duration = Duration::from_millis(500);

/// Bytes a send stores besides its ciphertext (envelope, mailbox items, states, log event and
/// hashes), rounded up generously.
pub const SEND_OVERHEAD: u64 = 4096;

/// The reserve and the cached measurement.
#[derive(Debug)]
pub struct DiskSpace {
    path: PathBuf,
    min_free: u64,
    /// Bytes available to the relay at the last measurement.
    free: AtomicU64,
    /// Bytes admitted since the last measurement.
    admitted: AtomicU64,
    /// Whether sends are being refused (to log the change once, not every refusal).
    refusing: AtomicBool,
}

impl DiskSpace {
    /// A reserve of `min_free` bytes (0: no check) on the filesystem holding `path`, measured
    /// once now.
    pub fn new(path: &Path, min_free: u64) -> std::io::Result<Self> {
        let space = DiskSpace {
            path: path.to_owned(),
            min_free,
            free: AtomicU64::new(u64::MAX),
            admitted: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
        };
        space.refresh()?;
        Ok(space)
    }

    /// Bytes available to an unprivileged writer on the filesystem now.
    pub fn measure(path: &Path) -> std::io::Result<u64> {
        let s = rustix::fs::statvfs(path)?;
        Ok(s.f_bavail.saturating_mul(s.f_frsize))
    }

    /// Measures again; the bytes admitted so far are in the new figure.
    pub fn refresh(&self) -> std::io::Result<()> {
        let free = Self::measure(&self.path)?;
        self.free.store(free, Ordering::SeqCst);
        self.admitted.store(0, Ordering::SeqCst);
        if self.min_free > 0 && free >= self.min_free && self.refusing.swap(false, Ordering::SeqCst)
        {
            tracing::info!(
                free,
                "free space is above storage.min_free_bytes again; accepting sends"
            );
        }
        Ok(())
    }

    /// Admits a write of about `bytes`, or refuses it naming the limit.
    pub fn admit(&self, bytes: u64) -> Result<(), RelayError> {
        if self.min_free == 0 {
            return Ok(());
        }
        let free = self.free.load(Ordering::SeqCst);
        let admitted = self
            .admitted
            .fetch_add(bytes, Ordering::SeqCst)
            .saturating_add(bytes);
        let left = free.saturating_sub(admitted);
        if left >= self.min_free {
            return Ok(());
        }
        self.admitted.fetch_sub(bytes, Ordering::SeqCst);
        if !self.refusing.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                free,
                min_free = self.min_free,
                "the data folder's filesystem is nearly full; refusing sends until space is freed"
            );
        }
        Err(RelayError::RateLimited {
            message: format!(
                "the relay's storage is nearly full (limit storage.min_free_bytes = {}); the message was not accepted: retry later",
                self.min_free
            ),
            retry_after: std::time::Duration::from_secs(60),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// A reserve of 8 MiB with 10 MiB free (as if just measured).
    fn space(free: u64) -> DiskSpace {
        DiskSpace {
            path: PathBuf::from("."),
            min_free: 8 * MIB,
            free: AtomicU64::new(free),
            admitted: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
        }
    }

    #[test]
    fn admits_down_to_the_reserve_counting_what_was_admitted() {
        let s = space(10 * MIB);
        s.admit(MIB).unwrap();
        s.admit(MIB).unwrap();
        // 8 MiB would be left after this one: refused, and not counted.
        let e = s.admit(1).unwrap_err();
        assert!(
            matches!(&e, RelayError::RateLimited { message: m, .. } if m.contains("storage.min_free_bytes = 8388608")),
            "{e}"
        );
        assert_eq!(s.admitted.load(Ordering::SeqCst), 2 * MIB);
        // More than is free at all.
        assert!(space(MIB).admit(u64::MAX).is_err());
    }

    #[test]
    fn a_refresh_measures_again_and_forgets_what_was_admitted() {
        let dir = tempfile::tempdir().unwrap();
        let s = DiskSpace::new(dir.path(), 1).unwrap();
        assert!(s.free.load(Ordering::SeqCst) > 0);
        s.admit(1024).unwrap();
        s.refresh().unwrap();
        assert_eq!(s.admitted.load(Ordering::SeqCst), 0);
        // No reserve: never refused.
        let off = DiskSpace::new(dir.path(), 0).unwrap();
        off.admit(u64::MAX).unwrap();
    }
}

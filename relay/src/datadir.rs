//! The data folder is private to the relay's user: it holds the message database, the
//! delivery-log signing key and, in development mode, a CA key.
//!
//! Nothing here depends on the umask. sled creates its files with the process umask (0644 under
//! the usual 022) and takes no mode, so the relay creates the folder 0700, refuses to start on a
//! folder that other users can enter, and once its files exist sets every folder under it to
//! 0700 and every file to 0600 ([`restrict`]). Files the relay writes itself are created 0600.

use std::{
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

/// Why the data folder cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// Other users can enter or read the folder: refused (a configuration mistake to fix).
    #[error(
        "data folder {} is accessible to other users (mode {mode:o}); it holds the message database and the delivery-log signing key. Fix: `chmod 700 {}` (the folder must belong to the relay's user), then start again",
        path.display(),
        path.display()
    )]
    OpenToOthers {
        /// The folder.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Another silta-relay process holds the folder's lock ([`lock`]).
    #[error(
        "data folder {} is in use by another silta-relay process (a relay serving, starting or still writing its recovery snapshot after a stop; a restore; an offline backup or log-key step): wait for it to finish, or stop that relay, then try again",
        path.display()
    )]
    InUse {
        /// The folder.
        path: PathBuf,
    },
    /// The folder or a file in it could not be created, read or changed.
    #[error("data folder {}: {message}", path.display())]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn io_err(path: &Path, e: impl ToString) -> DataDirError {
    DataDirError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Creates `dir` with mode 0700 if it is missing (missing parents too); refuses an existing one
/// that anyone but its owner can access (any group or other bit, including a sticky shared
/// folder such as /tmp). Never changes an existing folder's mode: an operator who made it open
/// should learn about it.
pub fn prepare(dir: &Path) -> Result<(), DataDirError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_err(dir, e))?;
    let meta = std::fs::metadata(dir).map_err(|e| io_err(dir, e))?;
    if !meta.is_dir() {
        return Err(io_err(dir, "not a folder"));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(DataDirError::OpenToOthers {
            path: dir.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// The lock file in the data folder ([`lock`]).
pub const LOCK_FILE: &str = "relay.lock";

/// The data folder's lock, held while a process uses the folder's database; released when
/// dropped (or when the process dies, however it dies: the kernel drops an `flock`).
#[derive(Debug)]
pub struct FolderLock {
    _file: std::fs::File,
}

impl FolderLock {
    /// Whether `dir`'s lock file is still the one this lock holds: false once the folder (or
    /// the file) was moved or replaced, e.g. a new data folder put in its place. A process
    /// about to write into `dir` by path after a long while checks this first.
    pub fn still_in(&self, dir: &Path) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        match (
            self._file.metadata(),
            std::fs::metadata(dir.join(LOCK_FILE)),
        ) {
            (Ok(held), Ok(now)) => held.dev() == now.dev() && held.ino() == now.ino(),
            _ => false,
        }
    }
}

/// Takes the data folder's exclusive lock ([`LOCK_FILE`], created 0600), without waiting.
///
/// sled's own lock covers only the time its database is open. A relay lets go of it when it
/// stops serving and then opens the database once more to write its recovery snapshot; a
/// restore works in the folder without ever opening the database there. So `serve` (for its
/// whole run, the snapshot included), `restore`, a backup of a stopped relay and the offline
/// log-key steps each take this lock first: none of them can start while another is using the
/// folder, and a late snapshot can never land in a database restored meanwhile.
pub fn lock(dir: &Path) -> Result<FolderLock, DataDirError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(FolderLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(DataDirError::InUse {
            path: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path, e)),
    }
}

/// Sets every folder under `dir` (and `dir` itself) to 0700 and every file to 0600. Symbolic
/// links are neither followed nor changed.
pub fn restrict(dir: &Path) -> Result<(), DataDirError> {
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        set_mode(&d, 0o700)?;
        for entry in std::fs::read_dir(&d).map_err(|e| io_err(&d, e))? {
            let entry = entry.map_err(|e| io_err(&d, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| io_err(&path, e))?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                set_mode(&path, 0o600)?;
            }
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), DataDirError> {
    let now = std::fs::symlink_metadata(path)
        .map_err(|e| io_err(path, e))?
        .permissions()
        .mode()
        & 0o7777;
    if now != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_err(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_missing_folder_is_created_private_and_an_open_one_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("a/b");
        prepare(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);

        for open in [0o750, 0o705, 0o1777, 0o770] {
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(open)).unwrap();
            match prepare(&data) {
                Err(DataDirError::OpenToOthers { path, mode: m }) => {
                    assert_eq!(path, data);
                    assert_eq!(m, open);
                }
                other => panic!("{open:o}: {other:?}"),
            }
            // Left as it was: the operator fixes it.
            assert_eq!(mode(&data), open);
        }
    }

    #[test]
    fn the_folder_lock_is_exclusive_until_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let first = lock(tmp.path()).unwrap();
        assert_eq!(mode(&tmp.path().join(LOCK_FILE)), 0o600);
        match lock(tmp.path()) {
            Err(DataDirError::InUse { path }) => assert_eq!(path, tmp.path()),
            other => panic!("{other:?}"),
        }
        assert!(first.still_in(tmp.path()));
        drop(first);
        let again = lock(tmp.path()).unwrap();
        // A new folder put in the old one's place is not the one locked.
        std::fs::rename(tmp.path(), tmp.path().with_extension("old")).unwrap();
        std::fs::create_dir(tmp.path()).unwrap();
        assert!(!again.still_in(tmp.path()));
        let other = lock(tmp.path()).unwrap();
        assert!(other.still_in(tmp.path()));
        drop((again, other));
        std::fs::remove_dir_all(tmp.path().with_extension("old")).unwrap();
    }

    #[test]
    fn restrict_makes_everything_private_and_leaves_links_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("db/blobs")).unwrap();
        std::fs::write(d.join("db/conf"), b"x").unwrap();
        std::fs::write(d.join("db/blobs/1"), b"x").unwrap();
        std::fs::set_permissions(d.join("db/conf"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        std::fs::set_permissions(d.join("db/blobs"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.join("db/link")).unwrap();

        restrict(d).unwrap();
        assert_eq!(mode(d), 0o700);
        assert_eq!(mode(&d.join("db")), 0o700);
        assert_eq!(mode(&d.join("db/blobs")), 0o700);
        assert_eq!(mode(&d.join("db/conf")), 0o600);
        assert_eq!(mode(&d.join("db/blobs/1")), 0o600);
        assert_eq!(
            mode(outside.path()),
            0o644,
            "a link's target is not touched"
        );
    }
}

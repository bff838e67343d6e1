//! Writing files so that a crash leaves either the old file or the whole new one.

use std::path::Path;

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn create_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Writes `data` to `path` atomically: a temporary file (mode 0600) beside it, fsync, rename,
/// fsync of the folder. Replaces an existing file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    silta_certs::files::write_new(&tmp, data, silta_certs::files::SECRET_MODE)
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    sync_dir_of(path)
}

/// Moves `from` to `to` (same file system) and syncs both folders.
pub(crate) fn move_file(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::rename(from, to)
        .map_err(|e| format!("moving {} to {}: {e}", from.display(), to.display()))?;
    sync_dir_of(to)?;
    sync_dir_of(from)
}

/// Fsyncs the folder holding `path`.
pub(crate) fn sync_dir_of(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Makes sure `dir` exists and only its owner can enter it (mode 0700): the state folder holds
/// keys, received messages and queued forms, and sled creates its files readable by all.
pub fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    create_private_dir(dir)?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o1000 != 0 {
        // A sticky, shared folder such as /tmp is never taken over.
        return Err(format!(
            "{} is a shared folder; give this installation a folder of its own",
            dir.display()
        ));
    }
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            format!(
                "{} is open to other users (mode {:o}) and cannot be made private: {e}",
                dir.display(),
                mode & 0o777
            )
        })?;
    }
    Ok(())
}

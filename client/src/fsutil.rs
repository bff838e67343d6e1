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
pub fn move_file(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::rename(from, to)
        .map_err(|e| format!("moving {} to {}: {e}", from.display(), to.display()))?;
    sync_dir_of(to)?;
    sync_dir_of(from)
}

/// Fsyncs the folder holding `path`.
pub fn sync_dir_of(path: &Path) -> Result<(), String> {
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

//! Writing key and certificate files safely.

use std::{fs::OpenOptions, io::Write as _, os::unix::fs::OpenOptionsExt as _, path::Path};

use crate::CertsError;

/// Mode for private keys: owner read/write only.
pub const SECRET_MODE: u32 = 0o600;
/// Mode for certificates, CRLs and other public files.
pub const PUBLIC_MODE: u32 = 0o644;

/// Writes a new file with `mode`, failing with [`CertsError::AlreadyExists`] if it exists: a key
/// is never silently overwritten. The data is fsynced before returning.
pub fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertsError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => CertsError::AlreadyExists(path.to_owned()),
            _ => CertsError::io(path, e),
        })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| CertsError::io(path, e))
}

/// Replaces a public file atomically (temporary file, fsync, rename). For CRLs and the registry,
/// which change over time; never for keys.
pub fn replace_public(path: &Path, contents: &[u8]) -> Result<(), CertsError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, contents, PUBLIC_MODE)?;
    std::fs::rename(&tmp, path).map_err(|e| CertsError::io(path, e))?;
    // Make the rename itself durable: otherwise a power loss could bring back the old CRL or
    // registry, silently undoing a revocation.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CertsError::io(dir, e))
}

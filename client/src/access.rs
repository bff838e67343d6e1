//! The client-side access log: who opened or disclosed which case's messages, when, and why.
//!
//! Finnish law (906/2019 s. 17) asks an authority to log every use and disclosure of its data,
//! and a person may ask for the dates and purposes of access to their data (GDPR Art. 15, CJEU
//! C-579/21). The relay never sees content, so this log lives where content is: on the client.
//!
//! The log is one file, `STATE_DIR/access.log`, of JSON lines (mode 0600). It is append-only:
//! entries are only ever added, under an exclusive file lock (the daemon and people at the inbox
//! may write at the same time), each written with one `write` and synced before the content is
//! shown. Each entry carries the SHA-256 of the line before it, so removing, changing or
//! reordering entries breaks the chain, and [`read`] says where.

use std::{
    fs::{File, OpenOptions},
    io::{BufRead as _, BufReader, Write as _},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// The hash a first entry names as its predecessor.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What was done with a case's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Messages were received, decrypted and stored (by a process: the daemon, `inbox sync`).
    Received,
    /// A list of messages (case, kind, sender; no content) was shown.
    Listed,
    /// A message's content was shown.
    Shown,
    /// A message's content was made into a page to print or keep (`inbox show --format text` or
    /// `html`): a copy that may leave the screen.
    Printed,
    /// A case's thread (all its messages' content) was shown.
    Thread,
    /// A message was sent: content disclosed to its recipients.
    Disclosed,
    /// The access report of a case was printed.
    Reported,
    /// A case was closed here (its messages are deleted after the retention period).
    Closed,
    /// A closed case was reopened before its messages were deleted.
    Reopened,
    /// This desk's access-log entries of a case were shared with the organisation's other desks
    /// (an access-log share, end to end; no message content).
    Shared,
    /// Messages were deleted here by the retention rules (ids only; the purpose names the rule
    /// and where they were).
    Purged,
    /// A device identity kept after a key rotation was deleted by the retention rules: messages
    /// sealed to it no longer open here (no case, no ids; the purpose names the key's
    /// fingerprint and the rule).
    KeyDeleted,
}

impl Action {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Received => "received",
            Action::Listed => "listed",
            Action::Shown => "shown",
            Action::Printed => "printed",
            Action::Thread => "thread",
            Action::Disclosed => "disclosed",
            Action::Reported => "reported",
            Action::Closed => "closed",
            Action::Reopened => "reopened",
            Action::Shared => "shared",
            Action::Purged => "purged",
            Action::KeyDeleted => "key-deleted",
        }
    }
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// SHA-256 (hex) of the previous line of the log; zeros for the first. Written first, so
    /// even a write cut short carries it and stays checkable.
    pub prev: String,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// The person or process (`process:silta-daemon`, or the person's user name).
    pub who: String,
    /// The installation's principal (`role/id`).
    pub principal: String,
    /// What was done.
    pub action: Action,
    /// The case (32 hex digits; empty for messages without a case).
    pub case: String,
    /// The messages concerned (UUIDs).
    pub messages: Vec<String>,
    /// Why, as stated by the person (or configured for the process).
    pub purpose: String,
    /// For a disclosure: to whom.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// The operating-system user id of the process that wrote the entry (`who` can be set by
    /// the person; this cannot).
    #[serde(default)]
    pub uid: Option<u32>,
    /// The operating-system user name of that uid, from the passwd database (empty in entries
    /// written before it was recorded).
    #[serde(default)]
    pub os_user: String,
    /// `$SILTA_USER` as the person declared it, if set: recorded beside the OS user, never
    /// instead of it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub declared_user: String,
}

impl Entry {
    /// Who, as reports show it: `anna (uid 1000; says: Anna K.)`, a process as
    /// `process:silta-daemon (anna, uid 1000)`; entries written before the OS user was recorded
    /// as they were (`who`, with the uid if known).
    pub fn person(&self) -> String {
        let uid = self.uid.map(|u| format!("uid {u}"));
        let says =
            (!self.declared_user.is_empty()).then(|| format!("says: {}", self.declared_user));
        if self.os_user.is_empty() {
            return match uid {
                Some(uid) => format!("{} ({uid})", self.who),
                None => self.who.clone(),
            };
        }
        let detail: Vec<String> = uid.into_iter().chain(says).collect();
        if self.who == self.os_user || self.who.is_empty() {
            format!("{} ({})", self.os_user, detail.join("; "))
        } else {
            format!("{} ({}, {})", self.who, self.os_user, detail.join("; "))
        }
    }
}

/// An access-log failure.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// Reading or writing the file failed.
    #[error("access log {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        error: std::io::Error,
    },
    /// The file does not hold what this program wrote.
    #[error("access log {path}, line {line}: {problem}")]
    Broken {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
}

/// The access log of one installation.
#[derive(Debug, Clone)]
pub struct AccessLog {
    path: PathBuf,
}

/// What is recorded (the log fills in time and chain).
#[derive(Debug, Clone)]
pub struct Access<'a> {
    /// Who.
    pub who: &'a str,
    /// The installation's principal.
    pub principal: &'a str,
    /// What.
    pub action: Action,
    /// Which case (16 bytes, or empty).
    pub case: &'a [u8],
    /// Which messages (16-byte ids).
    pub messages: &'a [Vec<u8>],
    /// Why.
    pub purpose: &'a str,
    /// To whom (disclosures).
    pub recipients: &'a [String],
}

impl AccessLog {
    /// The log in `state_dir`.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        AccessLog {
            path: state_dir.join("access.log"),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an entry and syncs it to disk. Call before showing the content.
    pub fn record(&self, access: &Access<'_>) -> Result<Entry, AccessLogError> {
        let io = |error| AccessLogError::Io {
            path: self.path.clone(),
            error,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io)?;
        // Another writer may append between our read of the last line and our write.
        file.lock().map_err(io)?;
        // A last line without its newline is a write cut short: end it, and chain from it.
        let torn = ends_without_newline(&file).map_err(io)?;
        let prev = match last_line(&file).map_err(io)? {
            Some(line) => hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &line)),
            None => GENESIS.to_owned(),
        };
        let os = os_user();
        let entry = Entry {
            time: crate::times::now_rfc3339(),
            who: access.who.to_owned(),
            principal: access.principal.to_owned(),
            action: access.action,
            // "No case yet" is one spelling: empty.
            case: if access.case.iter().all(|&b| b == 0) {
                String::new()
            } else {
                hex::encode(access.case)
            },
            messages: access
                .messages
                .iter()
                .map(|m| {
                    uuid::Uuid::from_slice(m)
                        .map(|u| u.to_string())
                        .unwrap_or_else(|_| hex::encode(m))
                })
                .collect(),
            purpose: access.purpose.to_owned(),
            recipients: access.recipients.to_vec(),
            uid: Some(os.uid),
            os_user: os.name,
            declared_user: declared_user().unwrap_or_default(),
            prev,
        };
        let mut line = if torn { vec![b'\n'] } else { Vec::new() };
        line.extend(serde_json::to_vec(&entry).expect("an entry serialises"));
        line.push(b'\n');
        let before = file.metadata().map_err(io)?.len();
        if let Err(e) = file.write_all(&line).and_then(|()| file.sync_data()) {
            // A full disk: take the partial line back (we still hold the lock), so retries do
            // not pile up fragments.
            let _ = file.set_len(before);
            let _ = file.sync_data();
            return Err(io(e));
        }
        Ok(entry)
    }

    /// Reads every entry, checking the chain. A missing file is an empty log.
    pub fn read(&self) -> Result<Vec<Entry>, AccessLogError> {
        Ok(self.read_all()?.0)
    }

    /// Line numbers of incomplete entries: writes cut short by a crash or power loss. They stay
    /// in the chain (the next entry names their hash), so they cannot hide a removal.
    pub fn incomplete_lines(&self) -> Result<Vec<usize>, AccessLogError> {
        Ok(self.read_all()?.1)
    }

    fn read_all(&self) -> Result<(Vec<Entry>, Vec<usize>), AccessLogError> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), Vec::new()));
            }
            Err(error) => {
                return Err(AccessLogError::Io {
                    path: self.path.clone(),
                    error,
                });
            }
        };
        let mut prev = GENESIS.to_owned();
        let mut out = Vec::new();
        let mut incomplete = Vec::new();
        for (n, line) in BufReader::new(file).split(b'\n').enumerate() {
            let line = line.map_err(|error| AccessLogError::Io {
                path: self.path.clone(),
                error,
            })?;
            let broken = |problem: String| AccessLogError::Broken {
                path: self.path.clone(),
                line: n + 1,
                problem,
            };
            let entry: Entry = match serde_json::from_slice(&line) {
                Ok(e) => e,
                Err(e) if e.is_eof() || e.is_syntax() => {
                    // A write cut short. It must name the line before it (`prev` is written
                    // first); one cut before even that is accepted only if the line before it
                    // is whole. And the next entry must name its hash. So nothing before or
                    // after it can be removed or changed unnoticed.
                    match cut_prev(&line) {
                        Some(p) if p == prev => {}
                        Some(_) => {
                            return Err(broken(
                                "the chain is broken before a write cut short".into(),
                            ));
                        }
                        None if incomplete.last() != Some(&n) => {}
                        None => {
                            return Err(broken(
                                "two writes cut short in a row, the second without its chain"
                                    .into(),
                            ));
                        }
                    }
                    incomplete.push(n + 1);
                    prev =
                        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &line));
                    continue;
                }
                Err(e) => return Err(broken(format!("not an access-log entry: {e}"))),
            };
            if entry.prev != prev {
                return Err(broken(
                    "the chain is broken: the line before it was changed, removed or reordered"
                        .into(),
                ));
            }
            prev = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &line));
            out.push(entry);
        }
        Ok((out, incomplete))
    }

    /// The entries about `case`: recorded under it, or naming one of `messages` (UUIDs: the
    /// case's messages, including those from before the case reference existed).
    pub fn for_case(&self, case: &[u8], messages: &[String]) -> Result<Vec<Entry>, AccessLogError> {
        let case = hex::encode(case);
        Ok(self
            .read()?
            .into_iter()
            .filter(|e| e.case == case || e.messages.iter().any(|m| messages.contains(m)))
            .collect())
    }
}

/// The `prev` of a line cut short, if the cut came after it.
fn cut_prev(line: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(b"{\"prev\":\"")?;
    let hash = rest.get(..64)?;
    (rest.get(64) == Some(&b'"') && hash.iter().all(u8::is_ascii_hexdigit))
        .then(|| String::from_utf8_lossy(hash).into_owned())
}

/// Whether `file` is non-empty and does not end with a newline.
fn ends_without_newline(file: &File) -> std::io::Result<bool> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = file;
    let len = f.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(false);
    }
    f.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// The last line of `file` (without its newline), if any.
fn last_line(file: &File) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = file;
    let len = f.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    // Read backwards in blocks until the newline before the last line is found.
    let mut tail = Vec::new();
    let mut pos = len;
    loop {
        let step = pos.min(4096);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        let mut block = vec![0; step as usize];
        f.read_exact(&mut block)?;
        block.extend_from_slice(&tail);
        tail = block;
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if let Some(i) = body.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(body[i + 1..].to_vec()));
        }
        if pos == 0 {
            return Ok(Some(body.to_vec()));
        }
    }
}

/// The operating-system user of this process: its real uid and that uid's name in the passwd
/// database (not `$USER`, which anyone can set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsUser {
    /// The user name (`uid:1000` if the passwd database has no entry for the uid).
    pub name: String,
    /// The real user id.
    pub uid: u32,
}

/// The operating-system user of this process ([`OsUser`]).
pub fn os_user() -> OsUser {
    let uid = nix::unistd::getuid();
    let name = match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid:{uid}"),
    };
    OsUser {
        name,
        uid: uid.as_raw(),
    }
}

/// The name the person declared in `$SILTA_USER`, if any (shown beside the OS user, never
/// instead of it; control characters removed).
pub fn declared_user() -> Option<String> {
    std::env::var("SILTA_USER")
        .ok()
        .map(|s| crate::text::printable_line(s.trim()))
        .filter(|s| !s.is_empty())
}

/// The person at the keyboard as the access log names them: the operating-system user name
/// ([`os_user`]); `$SILTA_USER` is recorded beside it ([`declared_user`]).
pub fn current_user() -> String {
    os_user().name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access<'a>(action: Action, case: &'a [u8], ids: &'a [Vec<u8>]) -> Access<'a> {
        Access {
            who: "aino",
            principal: "assistance/nas",
            action,
            case,
            messages: ids,
            purpose: "assessing the referral",
            recipients: &[],
        }
    }

    #[test]
    fn entries_chain_and_filter_by_case() {
        let dir = tempfile::tempdir().unwrap();
        let log = AccessLog::in_state_dir(dir.path());
        assert!(log.read().unwrap().is_empty());
        let ids = vec![vec![7; 16]];
        log.record(&access(Action::Shown, &[1; 16], &ids)).unwrap();
        log.record(&access(Action::Thread, &[2; 16], &ids)).unwrap();
        log.record(&access(Action::Shown, &[1; 16], &[])).unwrap();
        let all = log.read().unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].prev, GENESIS);
        assert_ne!(all[1].prev, GENESIS);
        assert_eq!(
            all[0].messages,
            vec![uuid::Uuid::from_bytes([7; 16]).to_string()]
        );
        let case1 = log.for_case(&[1; 16], &[]).unwrap();
        assert_eq!(case1.len(), 2);
        assert!(case1.iter().all(|e| e.purpose == "assessing the referral"));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(log.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_removed_or_changed_entry_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let log = AccessLog::in_state_dir(dir.path());
        for _ in 0..3 {
            log.record(&access(Action::Shown, &[1; 16], &[])).unwrap();
        }
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Remove the second entry.
        std::fs::write(log.path(), format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        match log.read() {
            Err(AccessLogError::Broken { line: 2, .. }) => {}
            other => panic!("expected a broken chain at line 2, got {other:?}"),
        }
        // Change a purpose in the first entry.
        let changed = lines[0].replace("assessing", "browsing");
        std::fs::write(
            log.path(),
            format!("{changed}\n{}\n{}\n", lines[1], lines[2]),
        )
        .unwrap();
        match log.read() {
            Err(AccessLogError::Broken { line: 2, .. }) => {}
            other => panic!("expected a broken chain at line 2, got {other:?}"),
        }
        // Intact again, and appending continues the chain.
        std::fs::write(log.path(), &text).unwrap();
        log.record(&access(Action::Shown, &[1; 16], &[])).unwrap();
        assert_eq!(log.read().unwrap().len(), 4);
    }

    #[test]
    fn a_write_cut_short_stays_in_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = AccessLog::in_state_dir(dir.path());
        for _ in 0..3 {
            log.record(&access(Action::Shown, &[1; 16], &[])).unwrap();
        }
        // Power lost in the middle of the third write.
        let text = std::fs::read_to_string(log.path()).unwrap();
        let third = text.lines().nth(2).unwrap().len() as u64;
        let len = text.len() as u64;
        std::fs::OpenOptions::new()
            .write(true)
            .open(log.path())
            .unwrap()
            .set_len(len - 1 - third / 2)
            .unwrap();
        assert_eq!(log.read().unwrap().len(), 2);
        assert_eq!(log.incomplete_lines().unwrap(), [3]);
        // Appending goes on after it; the cut line stays in the chain.
        log.record(&access(Action::Thread, &[1; 16], &[])).unwrap();
        let entries = log.read().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2].action, Action::Thread);
        assert_eq!(log.incomplete_lines().unwrap(), [3]);
        // Removing the cut line now breaks the chain.
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(
            log.path(),
            format!("{}\n{}\n{}\n", lines[0], lines[1], lines[3]),
        )
        .unwrap();
        assert!(matches!(
            log.read(),
            Err(AccessLogError::Broken { line: 3, .. })
        ));
        // Entries before a cut line cannot be removed either: it names the line before it.
        std::fs::write(
            log.path(),
            format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]),
        )
        .unwrap();
        assert!(log.read().is_err());
        // So does replacing a complete entry with garbage.
        std::fs::write(
            log.path(),
            format!("{}\n{{\"x\n{}\n{}\n", lines[0], lines[2], lines[3]),
        )
        .unwrap();
        assert!(log.read().is_err());
    }

    #[test]
    fn entries_record_the_os_user_and_uid_of_the_process() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let log = AccessLog::in_state_dir(dir.path());
        let entry = log.record(&access(Action::Shown, &[1; 16], &[])).unwrap();
        // The process's real uid, as the kernel reports it, not anything from the environment.
        let uid = std::fs::metadata("/proc/self").unwrap().uid();
        assert_eq!(entry.uid, Some(uid));
        let read = log.read().unwrap();
        assert_eq!(read[0].uid, Some(uid));
        assert!(!read[0].os_user.is_empty());
        assert_eq!(read[0].os_user, os_user().name);
        if uid == 0 {
            assert_eq!(read[0].os_user, "root");
        }
        // `who` is what the caller said; the OS user is beside it.
        assert_eq!(read[0].who, "aino");
        assert!(
            read[0].person().contains(&format!("uid {uid}")),
            "{}",
            read[0].person()
        );
    }

    #[test]
    fn entries_written_before_the_os_user_was_recorded_still_read_and_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = AccessLog::in_state_dir(dir.path());
        // As the previous version wrote it: no os_user, no declared_user.
        let old = format!(
            "{{\"prev\":\"{GENESIS}\",\"time\":\"2026-11-20T09:00:00Z\",\"who\":\"Anna K.\",\"principal\":\"assistance/nas\",\"action\":\"shown\",\"case\":\"{}\",\"messages\":[],\"purpose\":\"assessing\",\"uid\":1000}}\n",
            hex::encode([1u8; 16])
        );
        std::fs::write(log.path(), &old).unwrap();
        log.record(&access(Action::Thread, &[1; 16], &[])).unwrap();
        let entries = log.read().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].os_user, "");
        assert_eq!(entries[0].declared_user, "");
        assert_eq!(entries[0].person(), "Anna K. (uid 1000)");
        assert_eq!(
            entries[1].prev,
            hex::encode(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                old.trim_end().as_bytes()
            ))
        );
        let person = Entry {
            os_user: "anna".into(),
            who: "anna".into(),
            uid: Some(1000),
            declared_user: "Anna K.".into(),
            ..entries[0].clone()
        };
        assert_eq!(person.person(), "anna (uid 1000; says: Anna K.)");
        let process = Entry {
            who: "process:silta-daemon".into(),
            declared_user: String::new(),
            ..person
        };
        assert_eq!(process.person(), "process:silta-daemon (anna, uid 1000)");
    }

    #[test]
    fn concurrent_writers_keep_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = AccessLog::in_state_dir(dir.path());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..25 {
                        log.record(&access(Action::Received, &[3; 16], &[]))
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(log.read().unwrap().len(), 100);
    }
}

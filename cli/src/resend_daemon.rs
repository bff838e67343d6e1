//! `silta resend` at a centre whose daemon sent the message: the request is left for the daemon
//! ([`silta_client::daemon::resend`]), which owns the queue and the sent/ files.

use silta_client::{
    ClientConfig, access::current_user, daemon::resend::request, text::printable_line,
};

use crate::Failure;

/// `Some(what was done)` if the daemon of this installation sent `id` (a request for it is left
/// in its resend/ folder); `None` otherwise.
pub(crate) fn hand_to_daemon(config: &ClientConfig, id: &str) -> Result<Option<String>, Failure> {
    let folder = &config.daemon.folder;
    if !folder.join("sent").is_dir() {
        return Ok(None);
    }
    let Some(r) = request(folder, id, &current_user()).map_err(Failure::failed)? else {
        return Ok(None);
    };
    let running = silta_client::retention::daemon_running(config);
    let when = if running {
        "the daemon re-sends it at its next scan"
    } else {
        "the daemon is not running: it re-sends it when it starts"
    };
    Ok(Some(format!(
        "asked the daemon to re-send {} ({}): {when}. sent/{} then lists the new message under \"resent_as\"; if it cannot be done, {} says why",
        r.message_id,
        printable_line(&r.file),
        printable_line(&r.status_file),
        printable_line(&r.path.with_extension("error").display().to_string())
    )))
}

//! What a failed command tells the person at the keyboard: a message, a hint, an exit code.

use silta_client::client::ClientError;

pub(crate) const EX_USAGE: u8 = 64;
pub(crate) const EX_DATAERR: u8 = 65;
pub(crate) const EX_UNAVAILABLE: u8 = 69;
pub(crate) const EX_NOPERM: u8 = 77;

/// A failure, with the exit code and a hint for the person at the keyboard.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: EX_USAGE,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
            hint: None,
        }
    }
}

impl From<silta_client::state::StateError> for Failure {
    fn from(e: silta_client::state::StateError) -> Self {
        Failure::failed(e.to_string())
    }
}

impl From<ClientError> for Failure {
    /// The exit code follows [`ClientError::kind`]; the message and hint name the case.
    fn from(e: ClientError) -> Self {
        use silta_client::ErrorKind;
        let (code, message, hint) = match e.kind() {
            ErrorKind::Certificate => certificate(&e),
            ErrorKind::Retry { reconnect } => retry(&e, reconnect),
            _ => other(&e),
        };
        Failure {
            code,
            message,
            hint,
        }
    }
}

/// Exit code, message and hint of a failure.
type Said = (u8, String, Option<String>);

/// A certificate problem ([`silta_client::ErrorKind::Certificate`]): ours refused, or theirs
/// not trusted.
fn certificate(e: &ClientError) -> Said {
    use silta_client::ConnectError;
    match e {
        ClientError::Connect(ConnectError::CertificateRejected { alert }) => (
            EX_NOPERM,
            format!(
                "the relay rejected this installation's certificate: {}",
                rejected_because(alert)
            ),
            Some("ask your administrator for a valid certificate (silta-certs issue) and point `cert`/`key` in the configuration at it".into()),
        ),
        ClientError::Connect(ConnectError::RelayCertificate(why)) => (
            EX_NOPERM,
            format!("the relay's certificate is not trusted: {why}"),
            Some("check `ca` and `relay` (or `server_name`) in the configuration".into()),
        ),
        ClientError::Relay(s) => (
            EX_NOPERM,
            format!("the relay no longer accepts this certificate: {}", s.message()),
            Some("it was probably revoked; ask your administrator".into()),
        ),
        _ => (EX_NOPERM, e.to_string(), Some(e.hint().into())),
    }
}

/// Why the relay refused our certificate, from the TLS alert it sent.
fn rejected_because(alert: &str) -> String {
    match alert {
        "CertificateRevoked" => "it has been REVOKED".to_owned(),
        "CertificateExpired" => {
            "it has EXPIRED or is NOT YET VALID (check this machine's clock too)".to_owned()
        }
        "UnknownCA" | "BadCertificate" | "DecryptError" => {
            "it was not issued by the relay's CA".to_owned()
        }
        "AccessDenied" | "UnsupportedCertificate" => {
            "it is not a Silta role certificate (wrong role, identity or key usage)".to_owned()
        }
        "CertificateRequired" => "no certificate was sent".to_owned(),
        other => format!("TLS alert {other}"),
    }
}

/// A passing failure ([`silta_client::ErrorKind::Retry`]): try again later.
fn retry(e: &ClientError, reconnect: bool) -> Said {
    use silta_client::ConnectError;
    match e {
        ClientError::Connect(ConnectError::Unreachable(why)) => (
            EX_UNAVAILABLE,
            format!("cannot reach the relay: {why}"),
            Some("is the relay running, and is `relay` in the configuration right? (`silta daemon` retries by itself)".into()),
        ),
        ClientError::Relay(s) if s.code() == tonic::Code::Unavailable => (
            EX_UNAVAILABLE,
            format!("the relay is unavailable: {}", s.message()),
            Some("try again shortly".into()),
        ),
        ClientError::Connect(_) => (1, e.to_string(), None),
        // The connection broke or the answer did not come: whether the relay took it is
        // not known. A rerun of the same command sends the same message, never a copy.
        _ if reconnect => (
            EX_UNAVAILABLE,
            format!("no answer from the relay: {e}"),
            Some(e.hint().into()),
        ),
        _ => (1, e.to_string(), Some(e.hint().into())),
    }
}

/// Every other kind: no device keys, a recipient without keys, a form or request to fix,
/// something local, a relay fault.
fn other(e: &ClientError) -> Said {
    use silta_client::{ErrorKind, seal::SealError};
    use tonic::Code;
    let relay_code = match e {
        ClientError::Relay(s) => Some(s.code()),
        _ => None,
    };
    match (e.kind(), e) {
        (ErrorKind::NoDeviceKeys, _) => (
            1,
            e.to_string(),
            Some("create and publish keys with `silta init` (or `silta keys init` then `silta keys publish`)".into()),
        ),
        (ErrorKind::NoRecipientKeys, ClientError::Seal(SealError::NoKeys(p))) => (
            1,
            format!("{p} has not published keys, so nothing can be sealed for it"),
            Some(format!("{p} must run `silta init` (or `silta keys publish`) first")),
        ),
        (ErrorKind::FixInput, ClientError::Seal(SealError::Invalid(_))) => (
            EX_DATAERR,
            e.to_string(),
            Some("nothing was sent; fix the form and try again".into()),
        ),
        (ErrorKind::FixInput, _) if relay_code == Some(Code::NotFound) => (
            1,
            format!("the relay does not know it: {}", relay_message(e)),
            Some("check the recipient (<role>/<id>) or the message id".into()),
        ),
        (ErrorKind::FixInput, _) if relay_code == Some(Code::PermissionDenied) => (
            1,
            format!("the relay refused: {}", relay_message(e)),
            Some("your role may not do this; see the README's \"who may send what\"".into()),
        ),
        (ErrorKind::Local, ClientError::Config(_)) => (EX_USAGE, e.to_string(), None),
        _ => (1, e.to_string(), None),
    }
}

fn relay_message(e: &ClientError) -> &str {
    match e {
        ClientError::Relay(s) => s.message(),
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use silta_client::{ConnectError, seal::SealError};
    use tonic::{Code, Status};

    #[test]
    fn exit_codes_follow_the_kind() {
        let code = |e: ClientError| Failure::from(e).code;
        for c in [
            Code::Unavailable,
            Code::Unknown,
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
        ] {
            assert_eq!(code(Status::new(c, "x").into()), EX_UNAVAILABLE, "{c:?}");
        }
        assert_eq!(
            code(ConnectError::Unreachable("x".into()).into()),
            EX_UNAVAILABLE
        );
        assert_eq!(code(Status::unauthenticated("x").into()), EX_NOPERM);
        assert_eq!(
            code(
                ConnectError::CertificateRejected {
                    alert: "CertificateRevoked".into()
                }
                .into()
            ),
            EX_NOPERM
        );
        assert_eq!(
            code(ConnectError::RelayCertificate("x".into()).into()),
            EX_NOPERM
        );
        assert_eq!(code(ClientError::Config("x".into())), EX_USAGE);
        assert_eq!(
            code(SealError::Invalid(silta_client::payload::PayloadError("x".into())).into()),
            EX_DATAERR
        );
        for c in [
            Code::NotFound,
            Code::PermissionDenied,
            Code::InvalidArgument,
            Code::AlreadyExists,
            Code::ResourceExhausted,
            Code::Internal,
        ] {
            assert_eq!(code(Status::new(c, "x").into()), 1, "{c:?}");
        }
        assert_eq!(code(ConnectError::Other("x".into()).into()), 1);
        assert_eq!(code(SealError::NoKeys("assistance/nas".into()).into()), 1);
        // A passing failure says that a rerun sends the same message.
        let f = Failure::from(ClientError::from(Status::unknown("connection reset")));
        assert!(f.hint.unwrap().contains("same message"));
        let f = Failure::from(ClientError::from(Status::resource_exhausted("full")));
        assert!(f.hint.unwrap().contains("try again later"));
    }
}

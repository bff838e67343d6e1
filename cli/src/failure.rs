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
            t!("err-cert-rejected", why = rejected_because(alert)),
            Some(t!("hint-cert-rejected")),
        ),
        ClientError::Connect(ConnectError::RelayCertificate(why)) => (
            EX_NOPERM,
            t!("err-relay-cert", why = why),
            Some(t!("hint-relay-cert")),
        ),
        ClientError::Relay(s) => (
            EX_NOPERM,
            t!("err-cert-no-longer", why = s.message()),
            Some(t!("hint-cert-no-longer")),
        ),
        _ => (EX_NOPERM, e.to_string(), Some(e.hint().into())),
    }
}

/// Why the relay refused our certificate, from the TLS alert it sent.
fn rejected_because(alert: &str) -> String {
    match alert {
        "CertificateRevoked" => t!("cert-revoked"),
        "CertificateExpired" => t!("cert-expired"),
        "UnknownCA" | "BadCertificate" | "DecryptError" => t!("cert-other-ca"),
        "AccessDenied" | "UnsupportedCertificate" => t!("cert-wrong-role"),
        "CertificateRequired" => t!("cert-none-sent"),
        other => t!("cert-tls-alert", alert = other),
    }
}

/// A passing failure ([`silta_client::ErrorKind::Retry`]): try again later.
fn retry(e: &ClientError, reconnect: bool) -> Said {
    use silta_client::ConnectError;
    match e {
        ClientError::Connect(ConnectError::Unreachable(why)) => (
            EX_UNAVAILABLE,
            t!("err-unreachable", why = why),
            Some(t!("hint-unreachable")),
        ),
        ClientError::Relay(s) if s.code() == tonic::Code::Unavailable => (
            EX_UNAVAILABLE,
            t!("err-unavailable", why = s.message()),
            Some(t!("hint-try-again-shortly")),
        ),
        ClientError::Connect(_) => (1, e.to_string(), None),
        // The connection broke or the answer did not come: whether the relay took it is
        // not known. A rerun of the same command sends the same message, never a copy.
        _ if reconnect => (
            EX_UNAVAILABLE,
            t!("err-no-answer", why = e.to_string()),
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
        (ErrorKind::NoDeviceKeys, _) => (1, e.to_string(), Some(t!("hint-no-device-keys"))),
        (ErrorKind::NoRecipientKeys, ClientError::Seal(SealError::NoKeys(p))) => (
            1,
            t!("err-no-recipient-keys", principal = p),
            Some(t!("hint-no-recipient-keys", principal = p)),
        ),
        (ErrorKind::FixInput, ClientError::Seal(SealError::Invalid(_))) => {
            (EX_DATAERR, e.to_string(), Some(t!("hint-fix-form")))
        }
        (ErrorKind::FixInput, _) if relay_code == Some(Code::NotFound) => (
            1,
            t!("err-not-found", why = relay_message(e)),
            Some(t!("hint-not-found")),
        ),
        (ErrorKind::FixInput, _) if relay_code == Some(Code::PermissionDenied) => (
            1,
            t!("err-permission-denied", why = relay_message(e)),
            Some(t!("hint-permission-denied")),
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

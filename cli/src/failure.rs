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
    fn from(e: ClientError) -> Self {
        use silta_client::ConnectError;
        use tonic::Code;
        let (code, message, hint): (u8, String, Option<String>) = match &e {
            ClientError::Connect(ConnectError::Unreachable(why)) => (
                EX_UNAVAILABLE,
                format!("cannot reach the relay: {why}"),
                Some("is the relay running, and is `relay` in the configuration right? (`silta daemon` retries by itself)".into()),
            ),
            ClientError::Connect(ConnectError::CertificateRejected { alert }) => {
                let why = match alert.as_str() {
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
                };
                (
                    EX_NOPERM,
                    format!("the relay rejected this installation's certificate: {why}"),
                    Some("ask your administrator for a valid certificate (silta-certs issue) and point `cert`/`key` in the configuration at it".into()),
                )
            }
            ClientError::Connect(ConnectError::RelayCertificate(why)) => (
                EX_NOPERM,
                format!("the relay's certificate is not trusted: {why}"),
                Some("check `ca` and `relay` (or `server_name`) in the configuration".into()),
            ),
            ClientError::Keys(_) => (
                1,
                e.to_string(),
                Some("create and publish keys with `silta init` (or `silta keys init` then `silta keys publish`)".into()),
            ),
            ClientError::Seal(silta_client::seal::SealError::NoKeys(p)) => (
                1,
                format!("{p} has not published keys, so nothing can be sealed for it"),
                Some(format!("{p} must run `silta init` (or `silta keys publish`) first")),
            ),
            ClientError::Seal(silta_client::seal::SealError::Invalid(_)) => (
                EX_DATAERR,
                e.to_string(),
                Some("nothing was sent; fix the form and try again".into()),
            ),
            ClientError::Config(_) => (EX_USAGE, e.to_string(), None),
            ClientError::Relay(s) if s.code() == Code::NotFound => (
                1,
                format!("the relay does not know it: {}", s.message()),
                Some("check the recipient (<role>/<id>) or the message id".into()),
            ),
            ClientError::Relay(s) if s.code() == Code::PermissionDenied => (
                1,
                format!("the relay refused: {}", s.message()),
                Some("your role may not do this; see the README's \"who may send what\"".into()),
            ),
            ClientError::Relay(s) if s.code() == Code::Unauthenticated => (
                EX_NOPERM,
                format!("the relay no longer accepts this certificate: {}", s.message()),
                Some("it was probably revoked; ask your administrator".into()),
            ),
            ClientError::Relay(s) if s.code() == Code::Unavailable => (
                EX_UNAVAILABLE,
                format!("the relay is unavailable: {}", s.message()),
                Some("try again shortly".into()),
            ),
            _ => (1, e.to_string(), None),
        };
        Failure {
            code,
            message,
            hint,
        }
    }
}

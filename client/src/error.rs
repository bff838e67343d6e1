//! What can go wrong in the client, and — decided once, here — what it means for the caller:
//! try again later with the same message, fix the form, fix the certificate, and so on.
//! The daemon's retry policy, the outbox's "end this message" rule and the `silta` program's
//! exit codes and hints all read [`ClientError::kind`].

use crate::state::StateError;
use crate::{bundle::BundleError, connection::ConnectError, keys::KeyError, seal::SealError};

/// A client failure, by kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Device keys are missing or unusable.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A message could not be sealed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A key bundle is not trusted.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// Local state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The relay refused a request.
    #[error("relay refused: {} ({})", .0.message(), .0.code())]
    Relay(#[from] tonic::Status),
    /// A received message could not be stored here (it was not acknowledged; it comes again).
    #[error("{0}")]
    Store(String),
    /// The relay's receipt does not prove the message was logged (keep the message; report it).
    #[error("the relay's receipt does not check out: {0}")]
    Receipt(String),
    /// The access log could not be written, so nothing was disclosed.
    #[error("{0}")]
    Access(String),
    /// The relay's answer cannot be used (e.g. its paging never ends).
    #[error("the relay's answer is unusable: {0}")]
    RelayAnswer(String),
}

/// What a failure means for the one who asked: the single classification every caller uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Passing (relay away, connection lost, no answer, over a limit): try again later, with
    /// the same message id and bytes. `reconnect`: the connection itself is in doubt.
    Retry {
        /// Open a new connection before trying again.
        reconnect: bool,
    },
    /// The request is wrong (invalid form, unknown recipient, not allowed for this role, id
    /// taken by other content): sending the same again cannot succeed; fix it.
    FixInput,
    /// A recipient has no valid published keys: nothing can be sealed for it until it
    /// publishes some.
    NoRecipientKeys,
    /// This installation has no usable device keys (`silta init`).
    NoDeviceKeys,
    /// A certificate problem: the relay refuses ours (revoked, expired, another CA), or we do
    /// not trust the relay's. An administrator must act; then the same message can go.
    Certificate,
    /// Something on this machine: configuration, local state, storage.
    Local,
    /// The relay answered wrongly (internal error, lost data, a receipt that does not check
    /// out): keep everything and report it.
    RelayFault,
}

impl ErrorKind {
    /// The kind of a refusal with gRPC `code`.
    pub fn of_code(code: tonic::Code) -> Self {
        use tonic::Code;
        match code {
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::NotFound
            | Code::PermissionDenied
            | Code::AlreadyExists => ErrorKind::FixInput,
            Code::Unavailable
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Aborted => ErrorKind::Retry { reconnect: true },
            Code::ResourceExhausted => ErrorKind::Retry { reconnect: false },
            Code::Unauthenticated => ErrorKind::Certificate,
            Code::Internal | Code::DataLoss | Code::Unimplemented | Code::Ok => {
                ErrorKind::RelayFault
            }
        }
    }

    /// Whether the same request can never succeed as it is: a message refused so is ended,
    /// and a corrected one is a new message.
    pub fn is_permanent(self) -> bool {
        matches!(self, ErrorKind::FixInput | ErrorKind::NoRecipientKeys)
    }

    /// Whether trying the same again later may work (by itself, or once an administrator has
    /// fixed a certificate or the relay): what the daemon keeps retrying.
    pub fn is_retryable(self) -> bool {
        !self.is_permanent()
    }

    /// Whether the connection should be dropped and opened again before the next try.
    pub fn needs_reconnect(self) -> bool {
        !matches!(
            self,
            ErrorKind::Retry { reconnect: false }
                | ErrorKind::FixInput
                | ErrorKind::NoRecipientKeys
        )
    }
}

impl ClientError {
    /// What this failure means for the caller ([`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Config(_)
            | ClientError::State(_)
            | ClientError::Store(_)
            | ClientError::Access(_) => ErrorKind::Local,
            ClientError::Connect(c) => match c {
                ConnectError::Unreachable(_) | ConnectError::Other(_) => {
                    ErrorKind::Retry { reconnect: true }
                }
                ConnectError::CertificateRejected { .. } | ConnectError::RelayCertificate(_) => {
                    ErrorKind::Certificate
                }
                ConnectError::Config(_) => ErrorKind::Local,
            },
            ClientError::Keys(_) => ErrorKind::NoDeviceKeys,
            ClientError::Seal(SealError::Invalid(_)) => ErrorKind::FixInput,
            ClientError::Seal(SealError::NoKeys(_)) => ErrorKind::NoRecipientKeys,
            ClientError::Seal(SealError::Encrypt(_)) => ErrorKind::Local,
            // The CA or CRL files of this installation (a relay's bad bundle is skipped, never
            // an error).
            ClientError::Bundle(_) => ErrorKind::Local,
            ClientError::Relay(s) => ErrorKind::of_code(s.code()),
            ClientError::Receipt(_) | ClientError::RelayAnswer(_) => ErrorKind::RelayFault,
        }
    }

    /// Whether a failure to open a message is the message's own (its sender's keys could not be
    /// fetched: an oversized or broken directory answer), so it is skipped and retried while the
    /// messages behind it go on; or one that stops every message alike (the connection is down or
    /// reset, our certificate is refused, we are over our own rate limit, local storage failed),
    /// so receiving stops for now and nothing is counted against the message: a sender must not be
    /// able to get other senders' messages rejected by making the recipient hit its own limits.
    ///
    /// A relay's answer is the message's own when [`ClientError::kind`] says it is to be fixed
    /// (refused: not found, invalid, not allowed) or the relay's fault (internal error, lost
    /// data); never when it is passing ([`ErrorKind::Retry`]: unavailable, over a limit, no
    /// answer) or about our certificate. A key bundle or sealing problem is the message's; any
    /// other failure (local storage, the access log, the connection) is not.
    pub(crate) fn is_per_message(&self) -> bool {
        match self {
            ClientError::Relay(_) => {
                matches!(self.kind(), ErrorKind::FixInput | ErrorKind::RelayFault)
            }
            ClientError::Bundle(_) | ClientError::Seal(_) => true,
            _ => false,
        }
    }

    /// What to do about it, in plain words, for a person or a log reader.
    pub fn hint(&self) -> &'static str {
        match (self, self.kind()) {
            (ClientError::Connect(ConnectError::Unreachable(_)), _) => {
                "relay unreachable; is it running, and is `relay` in the configuration right? Trying again sends the same message"
            }
            (_, ErrorKind::Retry { reconnect: true }) => {
                "the relay could not be reached or its answer was lost; try again (the same message is sent again, never a second copy)"
            }
            (_, ErrorKind::Retry { reconnect: false }) => {
                "the relay is over a limit for now; try again later (the same message is sent again)"
            }
            (ClientError::Seal(SealError::NoKeys(_)), _) => {
                "the recipient must publish keys first (`silta init` or `silta keys publish`)"
            }
            (_, ErrorKind::FixInput) => {
                "the relay or the form rules refused it; sending the same again will not work: fix it and send it as a new message"
            }
            (_, ErrorKind::NoRecipientKeys) => {
                "the recipient must publish keys first (`silta init` or `silta keys publish`)"
            }
            (_, ErrorKind::NoDeviceKeys) => {
                "this installation has no device keys; run `silta init` (or `silta keys init` and `silta keys publish`)"
            }
            (_, ErrorKind::Certificate) => {
                "a certificate is not accepted; an administrator must issue a valid one (silta-certs issue) or fix `ca`/`relay` in the configuration"
            }
            (_, ErrorKind::Local) => "local configuration or state is unusable; check it",
            (_, ErrorKind::RelayFault) => {
                "the relay answered wrongly; keep everything as it is and report it"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    const ALL_CODES: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    #[test]
    fn every_grpc_code_has_one_kind() {
        let expected = |c: Code| match c {
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::NotFound
            | Code::PermissionDenied
            | Code::AlreadyExists => ErrorKind::FixInput,
            Code::Unavailable
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Aborted => ErrorKind::Retry { reconnect: true },
            Code::ResourceExhausted => ErrorKind::Retry { reconnect: false },
            Code::Unauthenticated => ErrorKind::Certificate,
            Code::Internal | Code::DataLoss | Code::Unimplemented | Code::Ok => {
                ErrorKind::RelayFault
            }
        };
        for code in ALL_CODES {
            let e = ClientError::Relay(tonic::Status::new(code, "x"));
            assert_eq!(e.kind(), expected(code), "{code:?}");
            assert_eq!(ErrorKind::of_code(code), expected(code), "{code:?}");
            assert!(!e.hint().is_empty());
        }
        // i32 codes 0..=16 are all of them.
        for i in 0..=16 {
            assert!(ALL_CODES.contains(&Code::from_i32(i)));
        }
    }

    #[test]
    fn permanent_only_for_what_resending_cannot_fix() {
        let permanent: Vec<Code> = ALL_CODES
            .into_iter()
            .filter(|c| ErrorKind::of_code(*c).is_permanent())
            .collect();
        assert_eq!(
            permanent,
            [
                Code::InvalidArgument,
                Code::NotFound,
                Code::AlreadyExists,
                Code::PermissionDenied,
                Code::FailedPrecondition,
                Code::OutOfRange,
            ]
        );
        assert!(!ErrorKind::of_code(Code::ResourceExhausted).needs_reconnect());
        assert!(ErrorKind::of_code(Code::Unavailable).needs_reconnect());
        assert!(ErrorKind::of_code(Code::Unauthenticated).needs_reconnect());
        assert!(ErrorKind::of_code(Code::Unauthenticated).is_retryable());
    }

    #[test]
    fn every_variant_has_one_kind() {
        let invalid = crate::payload::PayloadError("x".into());
        let cases: Vec<(ClientError, ErrorKind)> = vec![
            (ClientError::Config("x".into()), ErrorKind::Local),
            (
                ConnectError::Unreachable("x".into()).into(),
                ErrorKind::Retry { reconnect: true },
            ),
            (
                ConnectError::Other("x".into()).into(),
                ErrorKind::Retry { reconnect: true },
            ),
            (
                ConnectError::CertificateRejected {
                    alert: "CertificateRevoked".into(),
                }
                .into(),
                ErrorKind::Certificate,
            ),
            (
                ConnectError::RelayCertificate("x".into()).into(),
                ErrorKind::Certificate,
            ),
            (ConnectError::Config("x".into()).into(), ErrorKind::Local),
            (
                KeyError::DeviceId("x".into()).into(),
                ErrorKind::NoDeviceKeys,
            ),
            (SealError::Invalid(invalid).into(), ErrorKind::FixInput),
            (
                SealError::NoKeys("centre/a".into()).into(),
                ErrorKind::NoRecipientKeys,
            ),
            (SealError::Encrypt("x".into()).into(), ErrorKind::Local),
            (BundleError::Untrusted("x".into()).into(), ErrorKind::Local),
            (ClientError::Store("x".into()), ErrorKind::Local),
            (ClientError::Access("x".into()), ErrorKind::Local),
            (ClientError::Receipt("x".into()), ErrorKind::RelayFault),
            (ClientError::RelayAnswer("x".into()), ErrorKind::RelayFault),
            (
                tonic::Status::unavailable("x").into(),
                ErrorKind::Retry { reconnect: true },
            ),
        ];
        for (e, kind) in cases {
            assert_eq!(e.kind(), kind, "{e}");
            assert!(!e.hint().is_empty());
        }
        let state: ClientError = StateError::from(sled::Error::Unsupported("x".into())).into();
        assert_eq!(state.kind(), ErrorKind::Local);
    }

    // Which failures to open a message count against it (ClientError::is_per_message).
    use crate::{bundle::BundleError, state::StateError};

    fn relay(code: Code) -> ClientError {
        ClientError::Relay(tonic::Status::new(code, "x"))
    }

    #[test]
    fn passing_relay_failures_do_not_count_against_the_message() {
        for code in [
            Code::Unavailable,
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Unauthenticated,
            Code::ResourceExhausted,
            Code::Aborted,
            Code::Unknown,
        ] {
            assert!(!relay(code).is_per_message(), "{code:?}");
        }
    }

    #[test]
    fn a_bad_directory_answer_counts_against_the_message() {
        for code in [
            Code::InvalidArgument,
            Code::FailedPrecondition,
            Code::OutOfRange,
            Code::NotFound,
            Code::PermissionDenied,
            Code::AlreadyExists,
            Code::Internal,
            Code::DataLoss,
            Code::Unimplemented,
            Code::Ok,
        ] {
            assert!(relay(code).is_per_message(), "{code:?}");
        }
        assert!(ClientError::Bundle(BundleError::BadSignature).is_per_message());
        assert!(ClientError::Seal(SealError::NoKeys("centre/x".into())).is_per_message());
        assert!(ClientError::Seal(SealError::Encrypt("x".into())).is_per_message());
    }

    #[test]
    fn local_and_connection_failures_do_not_count_against_the_message() {
        let local = [
            ClientError::State(StateError::from(sled::Error::Unsupported("x".into()))),
            ClientError::Store("disk full".into()),
            ClientError::Access("access log".into()),
            ClientError::Config("x".into()),
            ClientError::Receipt("x".into()),
            ClientError::RelayAnswer("x".into()),
            ClientError::Connect(ConnectError::Unreachable("x".into())),
            ClientError::Connect(ConnectError::Other("reset".into())),
            ClientError::Connect(ConnectError::CertificateRejected {
                alert: "CertificateRevoked".into(),
            }),
        ];
        for e in &local {
            assert!(!e.is_per_message(), "{e}");
        }
    }
}

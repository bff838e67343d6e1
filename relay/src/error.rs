//! The relay's error type and its mapping to gRPC status codes — the only place that mapping is
//! written. Messages for the caller say what was wrong with the request; storage and other
//! internal faults become `INTERNAL` with a generic message, and the detail goes to the log.

use tonic::{Code, Status};

/// Everything a relay operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The request is malformed (a field is missing, too long, of the wrong size...).
    #[error("{0}")]
    InvalidArgument(String),
    /// A configured limit was exceeded that waiting does not lift (devices, bundles per device);
    /// the message names the limit. `FAILED_PRECONDITION`: `RESOURCE_EXHAUSTED` means "try
    /// again later" to clients and is kept for passing limits.
    #[error("{0}")]
    LimitExceeded(String),
    /// A passing limit (request rate, unacknowledged messages, the disk reserve, open
    /// subscriptions): `RESOURCE_EXHAUSTED` with google.rpc `RetryInfo`, the caller may try again
    /// after `retry_after`. The relay answers `RESOURCE_EXHAUSTED` for these only, always with
    /// `RetryInfo`. A request that can never fit (a message over a size limit) is
    /// `InvalidArgument` naming the limit.
    #[error("{message}")]
    RateLimited {
        /// Names the limit and says when to retry.
        message: String,
        /// When a request will be allowed again.
        retry_after: std::time::Duration,
    },
    /// The policy does not allow this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller's certificate is no longer valid (revoked since the connection was made).
    #[error("{0}")]
    Unauthenticated(String),
    /// No such message, recipient or item (for this caller).
    #[error("{0}")]
    NotFound(String),
    /// The message id is already taken by different content.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request conflicts with the current state (e.g. rejecting an acknowledged message).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The relay is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed; nothing is reported to the caller but "internal error".
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl From<RelayError> for Status {
    fn from(e: RelayError) -> Status {
        let (code, message) = match e {
            RelayError::RateLimited {
                message,
                retry_after,
            } => {
                use tonic_types::{ErrorDetails, StatusExt as _};
                return Status::with_error_details(
                    Code::ResourceExhausted,
                    message,
                    ErrorDetails::with_retry_info(Some(retry_after)),
                );
            }
            RelayError::InvalidArgument(m) => (Code::InvalidArgument, m),
            RelayError::LimitExceeded(m) => (Code::FailedPrecondition, m),
            RelayError::PermissionDenied(m) => (Code::PermissionDenied, m),
            RelayError::Unauthenticated(m) => (Code::Unauthenticated, m),
            RelayError::NotFound(m) => (Code::NotFound, m),
            RelayError::AlreadyExists(m) => (Code::AlreadyExists, m),
            RelayError::FailedPrecondition(m) => (Code::FailedPrecondition, m),
            RelayError::Unavailable(m) => (Code::Unavailable, m),
            // Fail-stop: the write was not attempted, and the relay is on its way down.
            RelayError::Store(crate::store::StoreError::Failed) => (
                Code::Unavailable,
                "the relay's storage failed and the relay is stopping; nothing was stored: retry later (sends are idempotent)".to_owned(),
            ),
            RelayError::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                (
                    Code::Internal,
                    "internal storage error; the request may not have been applied: retry it (sends are idempotent)".to_owned(),
                )
            }
        };
        Status::new(code, message)
    }
}

impl From<crate::store::StoreError> for Status {
    fn from(e: crate::store::StoreError) -> Status {
        RelayError::Store(e).into()
    }
}

impl From<crate::authz::Denied> for RelayError {
    fn from(d: crate::authz::Denied) -> Self {
        RelayError::PermissionDenied(d.0)
    }
}

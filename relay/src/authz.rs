//! Authorization: who may call which RPC, and who may send which kind of message to whom.
//!
//! Deny by default. The policy is the table in DESIGN §5, written once here as data:
//! [`Rpc::allowed_roles`] for calls and [`may_send`] for messages. A tower layer in front of every
//! service checks the call and puts a [`Permit`] in the request; handlers refuse to run without
//! one, and the send path asks [`Permit::check_send`] for each recipient. Every decision is
//! logged with structured fields.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use silta_certs::{Principal, Role};
use silta_proto::pb::MessageKind;
use tonic::body::Body;

use crate::{metrics::Metrics, quota::RateLimiter, registry::Registry, tls::PeerIdentity};

/// Every RPC the relay serves. A path not listed here is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rpc {
    /// `silta.v1.Mailbox/Send`
    MailboxSend,
    /// `silta.v1.Mailbox/Subscribe`
    MailboxSubscribe,
    /// `silta.v1.Mailbox/Ack`
    MailboxAck,
    /// `silta.v1.Mailbox/Status`
    MailboxStatus,
    /// `silta.v1.Directory/PublishKeys`
    DirectoryPublishKeys,
    /// `silta.v1.Directory/GetKeys`
    DirectoryGetKeys,
    /// `silta.v1.AuditLog/Checkpoint`
    AuditCheckpoint,
    /// `silta.v1.AuditLog/Entries`
    AuditEntries,
    /// `silta.v1.AuditLog/InclusionProof`
    AuditInclusionProof,
    /// `silta.v1.AuditLog/ConsistencyProof`
    AuditConsistencyProof,
    /// `silta.v1.AuditLog/Query`
    AuditQuery,
    /// `silta.v1.Admin/ListPrincipals`
    AdminListPrincipals,
    /// `silta.v1.Admin/Expiring`
    AdminExpiring,
    /// `silta.v1.Admin/DisablePrincipal`
    AdminDisablePrincipal,
    /// `silta.v1.Admin/EnablePrincipal`
    AdminEnablePrincipal,
    /// `silta.v1.Admin/RetireDevices`
    AdminRetireDevices,
    /// `grpc.health.v1.Health/*`
    Health,
    /// `grpc.reflection.v1{,alpha}.ServerReflection/*`
    Reflection,
}

use Role::{Admin, Assistance, Auditor, Centre};

impl Rpc {
    /// Every RPC, for exhaustive tests.
    pub const ALL: [Rpc; 18] = [
        Rpc::MailboxSend,
        Rpc::MailboxSubscribe,
        Rpc::MailboxAck,
        Rpc::MailboxStatus,
        Rpc::DirectoryPublishKeys,
        Rpc::DirectoryGetKeys,
        Rpc::AuditCheckpoint,
        Rpc::AuditEntries,
        Rpc::AuditInclusionProof,
        Rpc::AuditConsistencyProof,
        Rpc::AuditQuery,
        Rpc::AdminListPrincipals,
        Rpc::AdminExpiring,
        Rpc::AdminDisablePrincipal,
        Rpc::AdminEnablePrincipal,
        Rpc::AdminRetireDevices,
        Rpc::Health,
        Rpc::Reflection,
    ];

    /// The Admin service's RPCs.
    pub const ADMIN: [Rpc; 5] = [
        Rpc::AdminListPrincipals,
        Rpc::AdminExpiring,
        Rpc::AdminDisablePrincipal,
        Rpc::AdminEnablePrincipal,
        Rpc::AdminRetireDevices,
    ];

    /// The RPC for a gRPC request path, if it is one the relay serves.
    pub fn from_path(path: &str) -> Option<Rpc> {
        Some(match path {
            "/silta.v1.Mailbox/Send" => Rpc::MailboxSend,
            "/silta.v1.Mailbox/Subscribe" => Rpc::MailboxSubscribe,
            "/silta.v1.Mailbox/Ack" => Rpc::MailboxAck,
            "/silta.v1.Mailbox/Status" => Rpc::MailboxStatus,
            "/silta.v1.Directory/PublishKeys" => Rpc::DirectoryPublishKeys,
            "/silta.v1.Directory/GetKeys" => Rpc::DirectoryGetKeys,
            "/silta.v1.AuditLog/Checkpoint" => Rpc::AuditCheckpoint,
            "/silta.v1.AuditLog/Entries" => Rpc::AuditEntries,
            "/silta.v1.AuditLog/InclusionProof" => Rpc::AuditInclusionProof,
            "/silta.v1.AuditLog/ConsistencyProof" => Rpc::AuditConsistencyProof,
            "/silta.v1.AuditLog/Query" => Rpc::AuditQuery,
            "/silta.v1.Admin/ListPrincipals" => Rpc::AdminListPrincipals,
            "/silta.v1.Admin/Expiring" => Rpc::AdminExpiring,
            "/silta.v1.Admin/DisablePrincipal" => Rpc::AdminDisablePrincipal,
            "/silta.v1.Admin/EnablePrincipal" => Rpc::AdminEnablePrincipal,
            "/silta.v1.Admin/RetireDevices" => Rpc::AdminRetireDevices,
            "/grpc.health.v1.Health/Check" | "/grpc.health.v1.Health/Watch" => Rpc::Health,
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
            | "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo" => Rpc::Reflection,
            _ => return None,
        })
    }

    /// The roles that may call this RPC (DESIGN §5). Object-level rules (only your own mailbox,
    /// only your own messages) are enforced by the handlers on top of this.
    pub fn allowed_roles(self) -> &'static [Role] {
        match self {
            // Only the two parties of a case exchange messages.
            Rpc::MailboxSend | Rpc::MailboxSubscribe | Rpc::MailboxAck | Rpc::MailboxStatus => {
                &[Centre, Assistance]
            }
            Rpc::DirectoryPublishKeys => &[Centre, Assistance],
            // Auditors read keys to check acknowledgement signatures.
            Rpc::DirectoryGetKeys => &[Centre, Assistance, Auditor],
            // Checkpoints and proofs reveal no event content; everyone who holds a receipt
            // needs them to check it.
            Rpc::AuditCheckpoint | Rpc::AuditInclusionProof | Rpc::AuditConsistencyProof => {
                &[Centre, Assistance, Auditor]
            }
            // Queries are filtered to the caller's own messages unless the caller is an auditor.
            Rpc::AuditQuery => &[Centre, Assistance, Auditor],
            // Raw leaves hold every principal's metadata: auditors only.
            Rpc::AuditEntries => &[Auditor],
            // Principals, their certificates and devices, and disabling them: the operator's
            // administrator only (never a participant, never the auditor, who only reads the
            // log that records every admin call).
            Rpc::AdminListPrincipals
            | Rpc::AdminExpiring
            | Rpc::AdminDisablePrincipal
            | Rpc::AdminEnablePrincipal
            | Rpc::AdminRetireDevices => &[Admin],
            Rpc::Health | Rpc::Reflection => &[Centre, Assistance, Auditor, Admin],
        }
    }

    /// Short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Rpc::MailboxSend => "Mailbox.Send",
            Rpc::MailboxSubscribe => "Mailbox.Subscribe",
            Rpc::MailboxAck => "Mailbox.Ack",
            Rpc::MailboxStatus => "Mailbox.Status",
            Rpc::DirectoryPublishKeys => "Directory.PublishKeys",
            Rpc::DirectoryGetKeys => "Directory.GetKeys",
            Rpc::AuditCheckpoint => "AuditLog.Checkpoint",
            Rpc::AuditEntries => "AuditLog.Entries",
            Rpc::AuditInclusionProof => "AuditLog.InclusionProof",
            Rpc::AuditConsistencyProof => "AuditLog.ConsistencyProof",
            Rpc::AuditQuery => "AuditLog.Query",
            Rpc::AdminListPrincipals => "Admin.ListPrincipals",
            Rpc::AdminExpiring => "Admin.Expiring",
            Rpc::AdminDisablePrincipal => "Admin.DisablePrincipal",
            Rpc::AdminEnablePrincipal => "Admin.EnablePrincipal",
            Rpc::AdminRetireDevices => "Admin.RetireDevices",
            Rpc::Health => "Health",
            Rpc::Reflection => "Reflection",
        }
    }
}

/// May a principal of role `sender` send a message of `kind` to a principal of role `recipient`?
/// The message-level half of the policy table in DESIGN §5, shared with clients through
/// [`silta_proto::policy`].
pub fn may_send(sender: Role, kind: MessageKind, recipient: Role) -> bool {
    silta_proto::policy::may_send(sender.as_str(), kind, recipient.as_str())
}

/// Proof that the authorization layer allowed this request. Only this module can make one.
#[derive(Debug, Clone)]
pub struct Permit {
    peer: PeerIdentity,
    rpc: Rpc,
}

/// A refusal, with the reason given to the caller.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

impl Permit {
    /// The authenticated caller.
    pub fn principal(&self) -> &Principal {
        self.peer.principal()
    }

    /// The connection's identity.
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    /// The RPC this permit is for.
    pub fn rpc(&self) -> Rpc {
        self.rpc
    }

    /// Checks that the caller may send `kind` to `recipient`.
    pub fn check_send(&self, kind: MessageKind, recipient: &Principal) -> Result<(), Denied> {
        let sender = self.principal();
        let ok = self.rpc == Rpc::MailboxSend && may_send(sender.role(), kind, recipient.role());
        tracing::info!(
            principal = %sender,
            recipient = %recipient,
            kind = kind.as_str_name(),
            decision = if ok { "allow" } else { "deny" },
            "send authorization"
        );
        if ok {
            Ok(())
        } else {
            Err(Denied(format!(
                "role {} may not send {} to role {}",
                sender.role(),
                kind.as_str_name(),
                recipient.role()
            )))
        }
    }
}

/// Decides whether `peer` may call the RPC at `path`.
pub fn check_rpc(peer: &PeerIdentity, path: &str) -> Result<Permit, Denied> {
    let principal = peer.principal();
    let Some(rpc) = Rpc::from_path(path) else {
        tracing::info!(principal = %principal, path, decision = "deny", "unknown RPC");
        return Err(Denied(format!("unknown method {path}")));
    };
    let ok = rpc.allowed_roles().contains(&principal.role());
    tracing::info!(
        principal = %principal,
        rpc = rpc.name(),
        decision = if ok { "allow" } else { "deny" },
        "call authorization"
    );
    if ok {
        Ok(Permit {
            peer: peer.clone(),
            rpc,
        })
    } else {
        Err(Denied(format!(
            "role {} may not call {}",
            principal.role(),
            rpc.name()
        )))
    }
}

/// Takes the permit that the layer put in the request; a handler without one fails closed.
pub fn permit<T>(req: &tonic::Request<T>) -> Result<Permit, tonic::Status> {
    req.extensions()
        .get::<Permit>()
        .cloned()
        .ok_or_else(|| tonic::Status::unauthenticated("no authenticated identity"))
}

/// Tower layer that authorizes every request before it reaches a service, and applies the
/// per-principal rate limits.
#[derive(Clone)]
pub struct AuthzLayer {
    tls: Arc<crate::tls::TlsState>,
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
    reflection: bool,
    max_ciphertext_bytes: u64,
    requests: Arc<RateLimiter>,
    audit_reads: Arc<RateLimiter>,
    clock: Arc<dyn crate::clock::Clock>,
}

impl AuthzLayer {
    pub(crate) fn new(
        tls: Arc<crate::tls::TlsState>,
        metrics: Arc<Metrics>,
        registry: Arc<Registry>,
        reflection: bool,
        limits: &crate::config::LimitsConfig,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Self {
        AuthzLayer {
            clock,
            tls,
            metrics,
            registry,
            reflection,
            max_ciphertext_bytes: limits.max_ciphertext_bytes,
            requests: Arc::new(RateLimiter::new(
                f64::from(limits.requests_per_second),
                limits.request_burst.into(),
            )),
            audit_reads: Arc::new(RateLimiter::new(
                f64::from(limits.audit_queries_per_minute) / 60.0,
                limits.audit_queries_per_minute.into(),
            )),
        }
    }

    /// Takes a token from each bucket that applies to a call of `rpc` (`None`: a path the relay
    /// does not serve); refuses with the time to wait. Runs before the authorization decision,
    /// so refused calls count too.
    fn rate_limit(
        &self,
        principal: &Principal,
        rpc: Option<Rpc>,
    ) -> Result<(), crate::error::RelayError> {
        let now = std::time::Instant::now();
        let name = rpc.map(Rpc::name).unwrap_or("unknown method");
        let limited = |key: &str, wait: std::time::Duration| {
            tracing::debug!(principal = %principal, rpc = name, limit = key, "rate limited");
            crate::error::RelayError::RateLimited {
                message: format!(
                    "{principal} is over limit {key}; retry in {} ms",
                    wait.as_millis().max(1)
                ),
                retry_after: wait,
            }
        };
        self.requests
            .take(principal, now)
            .map_err(|w| limited("limits.requests_per_second", w))?;
        // Admin calls each write an event, reads included: limited like audit reads.
        if matches!(rpc, Some(Rpc::AuditQuery | Rpc::AuditEntries))
            || rpc.is_some_and(|r| Rpc::ADMIN.contains(&r))
        {
            self.audit_reads
                .take(principal, now)
                .map_err(|w| limited("limits.audit_queries_per_minute", w))?;
        }
        Ok(())
    }
}

impl<S> tower::Layer<S> for AuthzLayer {
    type Service = AuthzService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthzService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`AuthzLayer`].
#[derive(Clone)]
pub struct AuthzService<S> {
    inner: S,
    layer: AuthzLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<Body>> for AuthzService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        // Take the ready service, leave a clone (the tower pattern for async call bodies).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let Some(peer) = req.extensions().get::<PeerIdentity>().cloned() else {
                // Every connection comes through the mTLS accept loop; fail closed regardless.
                layer.metrics.request_denied();
                return Ok(tonic::Status::unauthenticated("no client certificate").into_http());
            };
            // Every call counts against its principal's rate, refused ones too (each refusal
            // costs a log line).
            if let Err(e) = layer.rate_limit(peer.principal(), Rpc::from_path(req.uri().path())) {
                layer.metrics.request_limited();
                return Ok(tonic::Status::from(e).into_http());
            }
            // A connection made before its certificate was revoked gets nothing more; nor one
            // whose certificate has expired since, nor anyone while the CRLs are stale.
            if layer.tls.is_revoked(peer.serial()) {
                layer.metrics.request_denied();
                tracing::info!(principal = %peer.principal(), serial = peer.serial(), "request on a connection whose certificate was revoked");
                return Ok(tonic::Status::unauthenticated("certificate revoked").into_http());
            }
            let now = layer.clock.now();
            if peer.not_after() <= now {
                layer.metrics.request_denied();
                tracing::info!(principal = %peer.principal(), serial = peer.serial(), "request on a connection whose certificate has expired");
                return Ok(tonic::Status::unauthenticated("certificate expired").into_http());
            }
            if layer.tls.crl_stale(now) {
                layer.metrics.request_denied();
                tracing::warn!(principal = %peer.principal(), "request refused: the CRL in force is past its nextUpdate (tls.enforce_crl_expiry)");
                return Ok(tonic::Status::unavailable(
                    "the relay's CRL is out of date (tls.enforce_crl_expiry): nothing is served until the operator installs a fresh one",
                )
                .into_http());
            }
            if Rpc::from_path(req.uri().path()).is_none() {
                layer.metrics.request_denied();
                tracing::info!(principal = %peer.principal(), path_bytes = req.uri().path().len(), "unknown method");
                return Ok(tonic::Status::unimplemented("unknown method").into_http());
            }
            let decision = check_rpc(&peer, req.uri().path()).and_then(|permit| {
                if permit.rpc() == Rpc::Reflection && !layer.reflection {
                    Err(Denied("reflection is disabled on this relay".into()))
                } else {
                    Ok(permit)
                }
            });
            let permit = match decision {
                Ok(p) => p,
                Err(Denied(reason)) => {
                    layer.metrics.request_denied();
                    return Ok(tonic::Status::permission_denied(reason).into_http());
                }
            };
            // A principal becomes a known recipient the first time it authenticates; the relay
            // remembers when it last saw it and with which certificate. One the admin disabled
            // gets nothing (PERMISSION_DENIED).
            if let Err(e) = layer.registry.ensure(&peer).await {
                if matches!(e, crate::error::RelayError::PermissionDenied(_)) {
                    layer.metrics.request_denied();
                } else {
                    tracing::error!(error = %e, "could not register principal");
                }
                return Ok(tonic::Status::from(e).into_http());
            }
            let rpc = permit.rpc();
            layer.metrics.request_allowed();
            req.extensions_mut().insert(permit);
            let response = inner.call(req).await?;
            // tonic refuses a message above its decoding limit with OUT_OF_RANGE before our
            // handler runs; say which of our limits it broke instead.
            if rpc == Rpc::MailboxSend
                && response.headers().get("grpc-status").map(|v| v.as_bytes()) == Some(b"11")
            {
                // Never fits: INVALID_ARGUMENT (RESOURCE_EXHAUSTED is for passing limits).
                return Ok(tonic::Status::invalid_argument(format!(
                    "envelope is far larger than limit limits.max_ciphertext_bytes ({} bytes)",
                    layer.max_ciphertext_bytes
                ))
                .into_http());
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_exactly_one_direction_except_status_updates_and_withdrawals() {
        for kind in 1..=21 {
            let kind = MessageKind::try_from(kind).unwrap();
            let c2a = may_send(Centre, kind, Assistance);
            let a2c = may_send(Assistance, kind, Centre);
            if silta_proto::policy::is_internal(kind) {
                assert!(!c2a && !a2c, "{kind:?}");
            } else if matches!(
                kind,
                MessageKind::StatusUpdate | MessageKind::ConsentWithdrawal
            ) {
                assert!(c2a && a2c);
            } else {
                assert!(c2a ^ a2c, "{kind:?}");
            }
        }
        assert!(!may_send(Centre, MessageKind::Unspecified, Assistance));
    }

    #[test]
    fn nobody_else_sends() {
        for kind in 0..=21 {
            let kind = MessageKind::try_from(kind).unwrap();
            let internal = silta_proto::policy::is_internal(kind);
            for s in Role::ALL {
                for r in Role::ALL {
                    let to_itself = internal && s == r && matches!(s, Centre | Assistance);
                    if !matches!((s, r), (Centre, Assistance) | (Assistance, Centre)) && !to_itself
                    {
                        assert!(!may_send(s, kind, r), "{s} -> {r} {kind:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_rpc_has_a_path() {
        let paths = [
            "/silta.v1.Mailbox/Send",
            "/silta.v1.Mailbox/Subscribe",
            "/silta.v1.Mailbox/Ack",
            "/silta.v1.Mailbox/Status",
            "/silta.v1.Directory/PublishKeys",
            "/silta.v1.Directory/GetKeys",
            "/silta.v1.AuditLog/Checkpoint",
            "/silta.v1.AuditLog/Entries",
            "/silta.v1.AuditLog/InclusionProof",
            "/silta.v1.AuditLog/ConsistencyProof",
            "/silta.v1.AuditLog/Query",
            "/silta.v1.Admin/ListPrincipals",
            "/silta.v1.Admin/Expiring",
            "/silta.v1.Admin/DisablePrincipal",
            "/silta.v1.Admin/EnablePrincipal",
            "/silta.v1.Admin/RetireDevices",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ];
        for (rpc, path) in Rpc::ALL.iter().zip(paths) {
            assert_eq!(Rpc::from_path(path), Some(*rpc));
        }
        assert_eq!(Rpc::from_path("/silta.v1.Mailbox/Admin"), None);
    }

    #[test]
    fn only_the_admin_calls_the_admin_service_and_the_admin_calls_nothing_else() {
        for rpc in Rpc::ALL {
            let admin_only = Rpc::ADMIN.contains(&rpc);
            for role in Role::ALL {
                let allowed = rpc.allowed_roles().contains(&role);
                if admin_only {
                    assert_eq!(allowed, role == Admin, "{rpc:?} {role}");
                } else if role == Admin {
                    assert_eq!(
                        allowed,
                        matches!(rpc, Rpc::Health | Rpc::Reflection),
                        "{rpc:?}"
                    );
                }
            }
        }
    }
}

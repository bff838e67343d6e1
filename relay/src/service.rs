//! The tonic service implementations. They only convert between protobuf and the domain and
//! call into [`crate::mailbox`]; every one starts by taking the [`Permit`](crate::authz::Permit)
//! that the authorization layer attached, and fails closed without it.

use std::sync::Arc;

use silta_proto::pb::{self, audit_log_server::AuditLog, mailbox_server};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::{authz::permit, directory::Directory, mailbox::Mailbox};

/// `silta.v1.Mailbox`.
pub struct MailboxService {
    pub(crate) mailbox: Arc<Mailbox>,
}

#[tonic::async_trait]
impl mailbox_server::Mailbox for MailboxService {
    #[tracing::instrument(skip_all)]
    async fn send(&self, request: Request<pb::Envelope>) -> Result<Response<pb::Receipt>, Status> {
        let permit = permit(&request)?;
        Ok(Response::new(
            self.mailbox.send(&permit, request.into_inner()).await?,
        ))
    }

    type SubscribeStream = ReceiverStream<Result<pb::MailboxItem, Status>>;

    #[tracing::instrument(skip_all)]
    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let permit = permit(&request)?;
        let request = request.into_inner();
        Ok(Response::new(self.mailbox.subscribe(
            &permit,
            request.after_seq,
            &request.device_id,
        )?))
    }

    #[tracing::instrument(skip_all)]
    async fn ack(
        &self,
        request: Request<pb::AckRequest>,
    ) -> Result<Response<pb::AckResponse>, Status> {
        let permit = permit(&request)?;
        Ok(Response::new(
            self.mailbox.ack(&permit, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let permit = permit(&request)?;
        Ok(Response::new(
            self.mailbox
                .status(&permit, &request.into_inner().message_id)?,
        ))
    }
}

/// `silta.v1.Directory`.
pub struct DirectoryService {
    pub(crate) directory: Arc<Directory>,
}

#[tonic::async_trait]
impl pb::directory_server::Directory for DirectoryService {
    #[tracing::instrument(skip_all)]
    async fn publish_keys(
        &self,
        request: Request<pb::KeyBundle>,
    ) -> Result<Response<pb::PublishKeysResponse>, Status> {
        let permit = permit(&request)?;
        let log_index = self
            .directory
            .publish(&permit, request.into_inner())
            .await?;
        Ok(Response::new(pb::PublishKeysResponse { log_index }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_keys(
        &self,
        request: Request<pb::GetKeysRequest>,
    ) -> Result<Response<pb::GetKeysResponse>, Status> {
        permit(&request)?;
        Ok(Response::new(self.directory.get(request.get_ref())?))
    }
}

/// `silta.v1.AuditLog`.
pub struct AuditLogService {
    pub(crate) audit: Arc<crate::audit::AuditLog>,
}

#[tonic::async_trait]
impl AuditLog for AuditLogService {
    async fn checkpoint(
        &self,
        request: Request<pb::CheckpointRequest>,
    ) -> Result<Response<pb::CheckpointResponse>, Status> {
        permit(&request)?;
        Ok(Response::new(self.audit.checkpoint()?))
    }

    async fn entries(
        &self,
        request: Request<pb::EntriesRequest>,
    ) -> Result<Response<pb::EntriesResponse>, Status> {
        let permit = permit(&request)?;
        Ok(Response::new(
            self.audit.entries(&permit, request.into_inner()).await?,
        ))
    }

    async fn inclusion_proof(
        &self,
        request: Request<pb::InclusionProofRequest>,
    ) -> Result<Response<pb::InclusionProofResponse>, Status> {
        permit(&request)?;
        let r = request.into_inner();
        Ok(Response::new(pb::InclusionProofResponse {
            hashes: self.audit.inclusion(r.index, r.tree_size)?,
        }))
    }

    async fn consistency_proof(
        &self,
        request: Request<pb::ConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProofResponse>, Status> {
        permit(&request)?;
        let r = request.into_inner();
        Ok(Response::new(pb::ConsistencyProofResponse {
            hashes: self.audit.consistency(r.old_size, r.new_size)?,
        }))
    }

    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<pb::QueryResponse>, Status> {
        let permit = permit(&request)?;
        Ok(Response::new(
            self.audit.query(&permit, request.into_inner()).await?,
        ))
    }
}

/// `silta.v1.Admin`.
pub struct AdminService {
    pub(crate) admin: Arc<crate::admin::Admin>,
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    #[tracing::instrument(skip_all)]
    async fn list_principals(
        &self,
        request: Request<pb::ListPrincipalsRequest>,
    ) -> Result<Response<pb::ListPrincipalsResponse>, Status> {
        let permit = permit(&request)?;
        Ok(Response::new(
            self.admin
                .list_principals(&permit, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn expiring(
        &self,
        request: Request<pb::ExpiringRequest>,
    ) -> Result<Response<pb::ExpiringResponse>, Status> {
        let permit = permit(&request)?;
        Ok(Response::new(
            self.admin.expiring(&permit, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn disable_principal(
        &self,
        request: Request<pb::DisablePrincipalRequest>,
    ) -> Result<Response<pb::DisablePrincipalResponse>, Status> {
        let permit = permit(&request)?;
        Ok(Response::new(
            self.admin.disable(&permit, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn enable_principal(
        &self,
        request: Request<pb::EnablePrincipalRequest>,
    ) -> Result<Response<pb::EnablePrincipalResponse>, Status> {
        let permit = permit(&request)?;
        Ok(Response::new(
            self.admin.enable(&permit, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn retire_devices(
        &self,
        request: Request<pb::RetireDevicesRequest>,
    ) -> Result<Response<pb::RetireDevicesResponse>, Status> {
        let permit = permit(&request)?;
        Ok(Response::new(
            self.admin
                .retire_devices(&permit, request.into_inner())
                .await?,
        ))
    }
}

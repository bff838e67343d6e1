//! The relay's Admin service, for role `admin`: principals and their certificates, devices and
//! quota use; what expires soon; disabling and enabling a principal; retiring devices.
//!
//! The administrator's installation is an ordinary client configuration (`relay`, `ca`,
//! `cert`, `key`, `state_dir`) with an `admin` role certificate; it needs no device keys
//! (nothing is sealed or opened). Every call is recorded in the relay's delivery log with the
//! stated reason, which therefore must never hold personal data.

use silta_proto::pb;

use crate::{ClientConfig, Connection, error::ClientError};

/// Longest reason the relay accepts, in bytes.
pub const MAX_REASON: usize = silta_proto::purpose::MAX_NOTE;
/// Most ListPrincipals pages read for one listing (100 principals or 2 MiB each).
const MAX_PAGES: usize = 1000;

/// A connection to the relay's Admin service.
pub struct AdminClient {
    conn: Connection,
}

fn reason(text: &str) -> Option<pb::AdminReason> {
    (!text.is_empty()).then(|| pb::AdminReason {
        text: text.to_owned(),
    })
}

impl AdminClient {
    /// Connects with the configuration's certificate (role `admin`; no device keys needed).
    pub async fn connect(config: &ClientConfig) -> Result<Self, ClientError> {
        Ok(AdminClient {
            conn: config.connect().await?,
        })
    }

    /// Over an open connection.
    pub fn new(conn: Connection) -> Self {
        AdminClient { conn }
    }

    /// Every principal the relay knows (of `role`, if not empty), all pages.
    pub async fn principals(
        &self,
        role: &str,
        why: &str,
    ) -> Result<Vec<pb::PrincipalInfo>, ClientError> {
        let mut out = Vec::new();
        let mut token = String::new();
        for _ in 0..MAX_PAGES {
            let page = self
                .conn
                .admin()
                .list_principals(pb::ListPrincipalsRequest {
                    reason: reason(why),
                    role: role.to_owned(),
                    page_token: token,
                })
                .await?
                .into_inner();
            out.extend(page.principals);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            token = page.next_page_token;
        }
        Err(ClientError::Config(format!(
            "the relay sent more than {MAX_PAGES} pages of principals"
        )))
    }

    /// Certificates and CRLs that expire within `days` (0: the relay's configured window).
    pub async fn expiring(
        &self,
        days: u32,
        why: &str,
    ) -> Result<pb::ExpiringResponse, ClientError> {
        Ok(self
            .conn
            .admin()
            .expiring(pb::ExpiringRequest {
                reason: reason(why),
                within_days: days,
            })
            .await?
            .into_inner())
    }

    /// Disables `principal` at the relay.
    pub async fn disable(
        &self,
        principal: &str,
        why: &str,
    ) -> Result<pb::DisablePrincipalResponse, ClientError> {
        Ok(self
            .conn
            .admin()
            .disable_principal(pb::DisablePrincipalRequest {
                reason: reason(why),
                principal: principal.to_owned(),
            })
            .await?
            .into_inner())
    }

    /// Enables `principal` again.
    pub async fn enable(
        &self,
        principal: &str,
        why: &str,
    ) -> Result<pb::EnablePrincipalResponse, ClientError> {
        Ok(self
            .conn
            .admin()
            .enable_principal(pb::EnablePrincipalRequest {
                reason: reason(why),
                principal: principal.to_owned(),
            })
            .await?
            .into_inner())
    }

    /// Retires `devices` of `principal` (all its current devices if empty).
    pub async fn retire_devices(
        &self,
        principal: &str,
        devices: &[String],
        why: &str,
    ) -> Result<pb::RetireDevicesResponse, ClientError> {
        Ok(self
            .conn
            .admin()
            .retire_devices(pb::RetireDevicesRequest {
                reason: reason(why),
                principal: principal.to_owned(),
                device_ids: devices.to_vec(),
            })
            .await?
            .into_inner())
    }
}

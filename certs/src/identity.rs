//! Identities: roles, principals and the SPIFFE-style URI that carries them in a certificate.
//!
//! A client certificate names exactly one principal in exactly one URI SAN of the form
//! `spiffe://<trust-domain>/<role>/<id>`. Principals are written `<role>/<id>` everywhere else
//! (recipient lists, the delivery log, file names).

use std::{fmt, str::FromStr};

use x509_parser::{extensions::GeneralName, prelude::FromDer as _};

/// What a principal is allowed to do is decided by its role alone (DESIGN §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A reception centre (an organisation or one of its units).
    Centre,
    /// The Assistance System for Victims of Human Trafficking.
    Assistance,
    /// A data protection officer or oversight authority.
    Auditor,
    /// An operator of the relay.
    Admin,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 4] = [Role::Centre, Role::Assistance, Role::Auditor, Role::Admin];

    /// The role's name as written in URIs and principal ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Centre => "centre",
            Role::Assistance => "assistance",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| IdentityError::UnknownRole(s.to_owned()))
    }
}

/// A principal: an organisation or unit with a role, e.g. `centre/joutseno`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    role: Role,
    id: String,
}

/// Longest principal id (the part after the role).
pub const MAX_ID_LEN: usize = 64;

impl Principal {
    /// A principal from a role and an id; the id is 1–64 characters of `[a-z0-9._-]`, starting
    /// with a letter or digit.
    pub fn new(role: Role, id: &str) -> Result<Self, IdentityError> {
        let valid_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        let starts_ok = id
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if id.len() > MAX_ID_LEN || !starts_ok || !id.chars().all(valid_char) {
            return Err(IdentityError::InvalidId(id.to_owned()));
        }
        Ok(Principal {
            role,
            id: id.to_owned(),
        })
    }

    /// The principal's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The id within the role.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The SPIFFE URI of this principal in `trust_domain`.
    pub fn to_uri(&self, trust_domain: &str) -> String {
        format!("spiffe://{trust_domain}/{}/{}", self.role, self.id)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.role, self.id)
    }
}

impl FromStr for Principal {
    type Err = IdentityError;

    /// Parses `<role>/<id>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (role, id) = s
            .split_once('/')
            .ok_or_else(|| IdentityError::InvalidPrincipal(s.to_owned()))?;
        Principal::new(role.parse()?, id)
    }
}

/// A parsed `spiffe://<trust-domain>/<role>/<id>` identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    /// The trust domain (lowercase DNS-like name).
    pub trust_domain: String,
    /// The principal named by the path.
    pub principal: Principal,
}

impl SpiffeId {
    /// Parses a SPIFFE URI with exactly two path segments, `<role>/<id>`.
    pub fn parse(uri: &str) -> Result<Self, IdentityError> {
        let rest = uri
            .strip_prefix("spiffe://")
            .ok_or_else(|| IdentityError::NotSpiffe(uri.to_owned()))?;
        let (domain, path) = rest
            .split_once('/')
            .ok_or_else(|| IdentityError::InvalidPrincipal(uri.to_owned()))?;
        validate_trust_domain(domain)?;
        Ok(SpiffeId {
            trust_domain: domain.to_owned(),
            principal: path.parse()?,
        })
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.principal.to_uri(&self.trust_domain))
    }
}

/// Checks a trust domain name: 1–255 characters of `[a-z0-9.-_]`.
pub fn validate_trust_domain(domain: &str) -> Result<(), IdentityError> {
    let ok = !domain.is_empty()
        && domain.len() <= 255
        && domain
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(IdentityError::InvalidTrustDomain(domain.to_owned()))
    }
}

/// Why a certificate or string does not name a valid Silta identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The certificate could not be parsed as X.509.
    #[error("certificate is not valid X.509 DER")]
    MalformedCertificate,
    /// The certificate has no `spiffe://` URI SAN.
    #[error("certificate has no spiffe:// URI subject alternative name")]
    NoSpiffeId,
    /// The certificate has more than one `spiffe://` URI SAN.
    #[error("certificate has more than one spiffe:// URI subject alternative name")]
    SeveralSpiffeIds,
    /// A URI that is not `spiffe://`.
    #[error("{0:?} is not a spiffe:// URI")]
    NotSpiffe(String),
    /// The path does not have the form `<role>/<id>`.
    #[error("{0:?} is not of the form <role>/<id>")]
    InvalidPrincipal(String),
    /// The role is not one of centre, assistance, auditor, admin.
    #[error("unknown role {0:?} (expected centre, assistance, auditor or admin)")]
    UnknownRole(String),
    /// The id has characters outside `[a-z0-9._-]` or is too long.
    #[error("invalid principal id {0:?}: use 1-64 characters a-z, 0-9, '.', '_', '-'")]
    InvalidId(String),
    /// The trust domain is not a valid name.
    #[error("invalid trust domain {0:?}")]
    InvalidTrustDomain(String),
    /// The certificate belongs to another trust domain.
    #[error("certificate is for trust domain {found:?}, expected {expected:?}")]
    ForeignTrustDomain {
        /// The configured trust domain.
        expected: String,
        /// The one in the certificate.
        found: String,
    },
    /// The certificate does not allow TLS client authentication.
    #[error("certificate does not allow client authentication (extended key usage clientAuth)")]
    NotForClientAuth,
}

/// Reads the Silta identity out of a client certificate (DER) and checks it belongs to
/// `trust_domain` and carries the clientAuth extended key usage.
///
/// The chain, validity period and revocation are checked by the TLS layer before this runs; this
/// function only interprets an already trusted certificate.
pub fn client_identity(cert_der: &[u8], trust_domain: &str) -> Result<SpiffeId, IdentityError> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(cert_der)
        .map_err(|_| IdentityError::MalformedCertificate)?;
    // Require the EKU explicitly: webpki accepts a certificate without any EKU for both uses.
    let client_auth = cert
        .extended_key_usage()
        .ok()
        .flatten()
        .is_some_and(|eku| eku.value.client_auth);
    if !client_auth {
        return Err(IdentityError::NotForClientAuth);
    }
    let uris: Vec<&str> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) if u.starts_with("spiffe://") => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let uri = match uris.as_slice() {
        [] => return Err(IdentityError::NoSpiffeId),
        [one] => *one,
        _ => return Err(IdentityError::SeveralSpiffeIds),
    };
    let id = SpiffeId::parse(uri)?;
    if id.trust_domain != trust_domain {
        return Err(IdentityError::ForeignTrustDomain {
            expected: trust_domain.to_owned(),
            found: id.trust_domain,
        });
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_round_trip() {
        let p: Principal = "centre/joutseno".parse().unwrap();
        assert_eq!(p.role(), Role::Centre);
        assert_eq!(p.id(), "joutseno");
        assert_eq!(p.to_string(), "centre/joutseno");
        assert_eq!(
            p.to_uri("silta.example"),
            "spiffe://silta.example/centre/joutseno"
        );
    }

    #[test]
    fn principal_rejects_bad_input() {
        for bad in [
            "centre",
            "centre/",
            "centre/Joutseno",
            "centre/a/b",
            "police/x",
            "centre/-x",
            "/x",
            &format!("centre/{}", "a".repeat(65)),
        ] {
            assert!(bad.parse::<Principal>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn spiffe_parse() {
        let id = SpiffeId::parse("spiffe://silta.example/assistance/nas").unwrap();
        assert_eq!(id.trust_domain, "silta.example");
        assert_eq!(id.principal.to_string(), "assistance/nas");
        assert_eq!(id.to_string(), "spiffe://silta.example/assistance/nas");
        assert!(matches!(
            SpiffeId::parse("https://silta.example/centre/x"),
            Err(IdentityError::NotSpiffe(_))
        ));
        assert!(matches!(
            SpiffeId::parse("spiffe://silta.example/police/x"),
            Err(IdentityError::UnknownRole(_))
        ));
        assert!(matches!(
            SpiffeId::parse("spiffe://Silta.example/centre/x"),
            Err(IdentityError::InvalidTrustDomain(_))
        ));
    }
}

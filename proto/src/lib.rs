//! The Silta wire protocol.
//!
//! `silta.v1` is the relay API (Mailbox, Directory, AuditLog): what the relay sees, i.e.
//! routing metadata, ciphertext and audit events. The `.proto` files under `silta/v1/` are the
//! source of truth and document every field; the Rust code is generated at build time by
//! `protox` + `tonic-prost-build`, with no system `protoc`.
//!
//! `silta.v1.payload` (in `pb::payload`) is the plaintext schema that only clients see: the
//! relay carries it encrypted and never decodes it.
//!
//! # Layout
//! - [`pb`]: the generated messages, clients (`*_client`) and servers (`*_server`);
//!   [`pb::payload`]: the plaintext payload schema.
//! - [`policy`]: which role may send which kind of message to which role (DESIGN §5), shared by
//!   the relay (which enforces it) and clients (which refuse to seal what would be refused).
//! - [`keyfile`]: Ed25519 key files as PKCS#8 v1 PEM (OpenSSL 3 and Python read them).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC server reflection and for reading
//!   forms into payload messages.

pub mod keyfile;
pub mod tlog;

mod generated {
    #![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    #[rustfmt::skip]
    pub mod silta_v1 {
        tonic::include_proto!("silta.v1");
        pub mod payload {
            tonic::include_proto!("silta.v1.payload");
        }
    }
}

/// Generated protobuf and gRPC code for package `silta.v1`.
pub mod pb {
    pub use crate::generated::silta_v1::*;
}

/// The encoded `FileDescriptorSet` of every Silta proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/silta_descriptor.bin"));

pub mod policy {
    //! The message half of the authorization policy (DESIGN §5).

    use crate::pb::MessageKind;

    /// Kinds a reception centre may send to the Assistance System.
    pub const CENTRE_TO_ASSISTANCE: [MessageKind; 7] = [
        MessageKind::AnonymousConsultation,
        MessageKind::Referral,
        MessageKind::ConsentRecord,
        MessageKind::InformationResponse,
        MessageKind::MeetingReply,
        MessageKind::StatusUpdate,
        MessageKind::ConsentWithdrawal,
    ];

    /// Kinds the Assistance System may send to a reception centre.
    pub const ASSISTANCE_TO_CENTRE: [MessageKind; 12] = [
        MessageKind::ConsultationReply,
        MessageKind::EmergencyReferralConfirmation,
        MessageKind::InformationRequest,
        MessageKind::AdmissionDecisionNotice,
        MessageKind::MeetingProposal,
        MessageKind::MeetingConfirmation,
        MessageKind::MeetingCancellation,
        MessageKind::JointAssessmentRecord,
        MessageKind::ServiceAgreement,
        MessageKind::StatusUpdate,
        MessageKind::CaseTransfer,
        MessageKind::ExitNotice,
    ];

    /// May a principal of role `sender` send `kind` to a principal of role `recipient`? Roles
    /// are written as in principal ids (`centre`, `assistance`, `auditor`, `admin`). Centres do
    /// not message each other, the Assistance System does not message itself, and auditors and
    /// admins send nothing.
    pub fn may_send(sender: &str, kind: MessageKind, recipient: &str) -> bool {
        match (sender, recipient) {
            ("centre", "assistance") => CENTRE_TO_ASSISTANCE.contains(&kind),
            ("assistance", "centre") => ASSISTANCE_TO_CENTRE.contains(&kind),
            _ => false,
        }
    }
}

/// A short fingerprint of a device's public keys (age recipient and Ed25519 key), grouped for
/// reading aloud: `3f2a 91c0 ...`. The same everywhere: `silta keys show`, the relay's
/// KEY_PUBLISHED events, key-change warnings.
pub fn device_fingerprint(age_recipient: &str, ed25519: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::new()
        .chain_update(b"silta/v1/device-fingerprint\n")
        .chain_update(age_recipient.as_bytes())
        .chain_update(b"\n")
        .chain_update(ed25519)
        .finalize();
    let hex = hex::encode(&digest[..10]);
    hex.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Domain-separation contexts: every signature in Silta covers one of these, then the bytes.
pub mod context {
    /// A key bundle, signed with the device certificate's key.
    pub const KEY_BUNDLE: &[u8] = b"silta/v1/key-bundle\n";
    /// A sealed message's signed payload, signed with the sender device's Ed25519 key: the
    /// signed message is this context followed by SHA-512 of the encoded SignedPayload.
    pub const SIGNED_PAYLOAD: &[u8] = b"silta/v1/signed-payload\n";
    /// An acknowledgement: message id (16 bytes) then ciphertext SHA-256 (32 bytes), signed with
    /// the recipient device's Ed25519 key.
    pub const ACK: &[u8] = b"silta/v1/ack\n";
    /// Signed by a device's Ed25519 key over a key bundle's content: proof of possession.
    pub const KEY_POSSESSION: &[u8] = b"silta/v1/key-possession\n";
}

/// Why the delivery log is read: the codes, their command-line names, and the rules for the
/// optional note beside a code. Shared by the relay (which enforces them) and the clients.
pub mod purpose {
    use crate::pb::PurposeCode;

    /// Longest note beside a purpose code, in bytes.
    pub const MAX_NOTE: usize = 120;

    /// Every code with its command-line name, in the order they are listed to people.
    pub const CODES: [(PurposeCode, &str); 7] = [
        (PurposeCode::Supervision, "supervision"),
        (PurposeCode::DataSubjectRequest, "data-subject-request"),
        (PurposeCode::Incident, "incident"),
        (PurposeCode::DeliveryCheck, "delivery-check"),
        (PurposeCode::LogVerification, "log-verification"),
        (PurposeCode::Reporting, "reporting"),
        (PurposeCode::LegalRequest, "legal-request"),
    ];

    /// The command-line name of a code (`"unspecified"` for none).
    pub fn name(code: PurposeCode) -> &'static str {
        CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, n)| *n)
            .unwrap_or("unspecified")
    }

    /// The code with this command-line name.
    pub fn from_name(name: &str) -> Option<PurposeCode> {
        CODES.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
    }

    /// Checks a note: at most [`MAX_NOTE`] bytes, no control characters (so it cannot break a
    /// line, a table or a terminal when shown). Returns what is wrong.
    pub fn check_note(note: &str) -> Result<(), String> {
        if note.len() > MAX_NOTE {
            return Err(format!(
                "the purpose note is {} bytes; at most {MAX_NOTE} (and never personal data: the log cannot be erased)",
                note.len()
            ));
        }
        if note.chars().any(char::is_control) {
            return Err(
                "the purpose note must not contain control characters or line breaks".into(),
            );
        }
        Ok(())
    }
}

/// Size limits the relay and its clients agree on, so a client can always decode what the relay
/// may send.
pub mod limits {
    /// The relay caps one `AuditLog.Entries`, `AuditLog.Query` or `Directory.GetKeys` response
    /// at about this many bytes (it always returns at least one item, and a single item is far
    /// smaller than this unless a database predates the input bounds).
    pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
    /// What clients accept in one response of those services: the cap plus room for one item
    /// written before the bounds existed.
    pub const CLIENT_DECODE_BYTES: usize = 16 * 1024 * 1024;
    /// Largest key bundle (content, signature and certificate chain) the relay accepts.
    pub const MAX_BUNDLE_BYTES: usize = 16 * 1024;
    /// Most certificates in a bundle's chain (the device certificate and intermediates).
    pub const MAX_BUNDLE_CHAIN: usize = 4;
    /// Most kinds, and most event types, in one query filter.
    pub const MAX_FILTER_VALUES: usize = 32;
}

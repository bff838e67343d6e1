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
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC server reflection and for reading
//!   forms into payload messages.

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
}

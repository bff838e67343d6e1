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
//! - [`policy`]: which role may send which kind of message to which role (DESIGN §5), and which
//!   legal bases each kind may name, shared by the relay (which enforces it) and clients (which
//!   refuse to seal what would be refused).
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
    //! The message half of the authorization policy (DESIGN §5), and the legal basis each kind
    //! may name ([`allowed_bases`]).

    use crate::pb::{LegalBasis, MessageKind};

    /// Kinds a reception centre may send to the Assistance System.
    pub const CENTRE_TO_ASSISTANCE: [MessageKind; 8] = [
        MessageKind::AnonymousConsultation,
        MessageKind::Referral,
        MessageKind::ConsentRecord,
        MessageKind::InformationResponse,
        MessageKind::MeetingReply,
        MessageKind::StatusUpdate,
        MessageKind::ConsentWithdrawal,
        MessageKind::ServiceAgreementAnswer,
    ];

    /// Kinds the Assistance System may send to a reception centre.
    pub const ASSISTANCE_TO_CENTRE: [MessageKind; 13] = [
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
        MessageKind::ConsentWithdrawal,
    ];

    /// Principal-internal kinds: a centre or the Assistance System writes to its own desks. The
    /// only recipient is the sender's own principal ([`check_internal_recipients`]), and the
    /// legal basis is [`LegalBasis::Internal`] (no disclosure).
    pub const INTERNAL: [MessageKind; 2] = [MessageKind::CaseClaim, MessageKind::AccessLogShare];

    /// Is `kind` principal-internal ([`INTERNAL`])?
    pub fn is_internal(kind: MessageKind) -> bool {
        INTERNAL.contains(&kind)
    }

    /// For a principal-internal kind, the recipients must be exactly the sender's own principal
    /// (`<role>/<id>`); for any other kind the sender may not be among them. Says why not, in
    /// the same words at the relay and in clients.
    pub fn check_internal_recipients(
        kind: MessageKind,
        sender: &str,
        recipients: &[String],
    ) -> Result<(), String> {
        if is_internal(kind) {
            if recipients.len() != 1 || recipients[0] != sender {
                return Err(format!(
                    "{} {} goes only to the sender's own principal ({sender}), its other desks",
                    article(kind),
                    kind_name(kind),
                ));
            }
        } else if recipients.iter().any(|r| r == sender) {
            return Err(format!("recipient {sender} is the sender itself"));
        }
        Ok(())
    }

    /// May a principal of role `sender` send `kind` to a principal of role `recipient`? Roles
    /// are written as in principal ids (`centre`, `assistance`, `auditor`, `admin`). Centres do
    /// not message each other, the Assistance System does not message itself, and auditors and
    /// admins send nothing.
    ///
    /// The principal-internal kinds ([`INTERNAL`]) go from a centre to a centre or from the
    /// Assistance System to itself; that the recipient is the sender's own principal is
    /// [`check_internal_recipients`].
    pub fn may_send(sender: &str, kind: MessageKind, recipient: &str) -> bool {
        match (sender, recipient) {
            ("centre", "assistance") => CENTRE_TO_ASSISTANCE.contains(&kind),
            ("assistance", "centre") => ASSISTANCE_TO_CENTRE.contains(&kind),
            ("centre", "centre") | ("assistance", "assistance") => is_internal(kind),
            _ => false,
        }
    }

    /// The legal bases for disclosing personal data (domain/README.md §3), in the order they
    /// are offered.
    pub const PERSONAL_DATA_BASES: [LegalBasis; 4] = [
        LegalBasis::Consent,
        LegalBasis::StatutoryInformationRight,
        LegalBasis::ChildWelfareDuty,
        LegalBasis::AcuteDanger,
    ];

    /// The legal bases a message of `kind` may name; the first is the default
    /// ([`default_basis`]). Empty for `Unspecified`.
    ///
    /// | kind | bases |
    /// |---|---|
    /// | anonymous consultation, consultation reply | no-personal-data only (they identify nobody) |
    /// | consent record | consent only (it records the consent) |
    /// | referral | consent, child-welfare duty, acute danger (consent is the gate; the other two need none) |
    /// | information request, information response | statutory information right (default), consent, child-welfare duty, acute danger |
    /// | case claim, access-log share (principal-internal) | internal only (no disclosure) |
    /// | every other kind | consent (default), statutory information right, child-welfare duty, acute danger |
    ///
    /// No kind but the two anonymous ones may say no-personal-data: everything else in a case
    /// is about a person. No kind but the principal-internal ones may say internal.
    pub fn allowed_bases(kind: MessageKind) -> &'static [LegalBasis] {
        use LegalBasis::*;
        match kind {
            MessageKind::Unspecified => &[],
            MessageKind::AnonymousConsultation | MessageKind::ConsultationReply => {
                &[NoPersonalData]
            }
            MessageKind::ConsentRecord => &[Consent],
            MessageKind::CaseClaim | MessageKind::AccessLogShare => &[Internal],
            MessageKind::Referral => &[Consent, ChildWelfareDuty, AcuteDanger],
            MessageKind::InformationRequest | MessageKind::InformationResponse => &[
                StatutoryInformationRight,
                Consent,
                ChildWelfareDuty,
                AcuteDanger,
            ],
            _ => &PERSONAL_DATA_BASES,
        }
    }

    /// The basis a message of `kind` gets when none is given: the first of [`allowed_bases`].
    pub fn default_basis(kind: MessageKind) -> LegalBasis {
        allowed_bases(kind)
            .first()
            .copied()
            .unwrap_or(LegalBasis::Unspecified)
    }

    /// The short name of a basis as on the command line and in forms
    /// (`statutory-information-right`).
    pub fn basis_name(basis: LegalBasis) -> String {
        basis
            .as_str_name()
            .trim_start_matches("LEGAL_BASIS_")
            .to_ascii_lowercase()
            .replace('_', "-")
    }

    /// The short name of a kind (`anonymous-consultation`).
    fn kind_name(kind: MessageKind) -> String {
        kind.as_str_name()
            .trim_start_matches("MESSAGE_KIND_")
            .to_ascii_lowercase()
            .replace('_', "-")
    }

    fn article(kind: MessageKind) -> &'static str {
        if kind_name(kind).starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        }
    }

    /// Must a message of `kind` carry a case reference (a non-zero `case_ref`)? Every kind
    /// but four is about a case the Assistance System issued a reference for (domain/messages.md):
    ///
    /// - the anonymous consultation and its reply come before there is a case (a reply may issue
    ///   one, and then carries it);
    /// - a written referral may be the first contact (domain §1.2: made together with the
    ///   person, no consultation or phone call before it), and the Assistance System issues the
    ///   case reference when it receives it; the consent record goes with that referral.
    ///
    /// Without this rule a zero reference would be a way round every case rule at the relay (a
    /// centre that left a case writing "outside any case" about it).
    pub fn needs_case(kind: MessageKind) -> bool {
        !matches!(
            kind,
            MessageKind::Unspecified
                | MessageKind::AnonymousConsultation
                | MessageKind::ConsultationReply
                | MessageKind::Referral
                | MessageKind::ConsentRecord
        )
    }

    /// May a message of `kind` go with case reference `case_ref`? If not, says so, naming the
    /// kind (the same words at the relay and in clients). Only the all-zero reference ("none")
    /// is checked here; its length is the caller's.
    pub fn check_case(kind: MessageKind, case_ref: &[u8]) -> Result<(), String> {
        if needs_case(kind) && case_ref.iter().all(|b| *b == 0) {
            return Err(format!(
                "{} {} needs a case reference (case_ref is all zero, \"none\"): only an anonymous-consultation, a consultation-reply, a referral and a consent-record may go before the Assistance System has issued one",
                article(kind),
                kind_name(kind),
            ));
        }
        Ok(())
    }

    /// May a message of `kind` name `basis`? If not, says so, naming the kind, the basis and
    /// the bases it may use (the same words at the relay and in clients).
    pub fn check_basis(kind: MessageKind, basis: LegalBasis) -> Result<(), String> {
        let allowed = allowed_bases(kind);
        if allowed.contains(&basis) {
            return Ok(());
        }
        let names = allowed
            .iter()
            .map(|b| basis_name(*b))
            .collect::<Vec<_>>()
            .join(", ");
        let why = if basis == LegalBasis::Consent && allowed == [LegalBasis::NoPersonalData] {
            " (it identifies nobody, so no personal data is disclosed and consent is not the basis)"
        } else {
            ""
        };
        Err(format!(
            "{} {} may not have legal basis {}; allowed: {names}{why}",
            article(kind),
            kind_name(kind),
            basis_name(basis),
        ))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn kinds() -> impl Iterator<Item = MessageKind> {
            (1..).map_while(|n| MessageKind::try_from(n).ok())
        }

        #[test]
        fn every_kind_has_bases_and_its_default_is_one_of_them() {
            assert_eq!(kinds().count(), 21);
            for kind in kinds() {
                assert!(!allowed_bases(kind).is_empty(), "{kind:?}");
                assert!(check_basis(kind, default_basis(kind)).is_ok(), "{kind:?}");
                assert!(check_basis(kind, LegalBasis::Unspecified).is_err());
            }
            assert!(allowed_bases(MessageKind::Unspecified).is_empty());
        }

        #[test]
        fn only_the_anonymous_kinds_carry_no_personal_data_and_never_consent() {
            for kind in kinds() {
                let anonymous = matches!(
                    kind,
                    MessageKind::AnonymousConsultation | MessageKind::ConsultationReply
                );
                assert_eq!(
                    check_basis(kind, LegalBasis::NoPersonalData).is_ok(),
                    anonymous,
                    "{kind:?}"
                );
                assert_eq!(
                    check_basis(kind, LegalBasis::Consent).is_ok(),
                    !anonymous && !is_internal(kind),
                    "{kind:?}"
                );
                assert_eq!(
                    check_basis(kind, LegalBasis::Internal).is_ok(),
                    is_internal(kind),
                    "{kind:?}"
                );
            }
            let e =
                check_basis(MessageKind::AnonymousConsultation, LegalBasis::Consent).unwrap_err();
            assert_eq!(
                e,
                "an anonymous-consultation may not have legal basis consent; allowed: no-personal-data (it identifies nobody, so no personal data is disclosed and consent is not the basis)"
            );
            assert_eq!(
                default_basis(MessageKind::InformationRequest),
                LegalBasis::StatutoryInformationRight
            );
            assert_eq!(default_basis(MessageKind::Referral), LegalBasis::Consent);
            assert!(
                check_basis(MessageKind::Referral, LegalBasis::StatutoryInformationRight).is_err()
            );
            assert!(check_basis(MessageKind::ConsentRecord, LegalBasis::AcuteDanger).is_err());
        }

        #[test]
        fn internal_kinds_go_only_to_the_senders_own_principal() {
            let me = "assistance/nas".to_string();
            let other = "centre/c1".to_string();
            for kind in INTERNAL {
                assert!(check_internal_recipients(kind, &me, std::slice::from_ref(&me)).is_ok());
                assert!(
                    check_internal_recipients(kind, &me, std::slice::from_ref(&other)).is_err()
                );
                assert!(
                    check_internal_recipients(kind, &me, &[me.clone(), other.clone()]).is_err()
                );
                assert!(check_internal_recipients(kind, &me, &[]).is_err());
                assert!(may_send("assistance", kind, "assistance"));
                assert!(may_send("centre", kind, "centre"));
                assert!(!may_send("centre", kind, "assistance"));
                assert!(!may_send("auditor", kind, "auditor"));
                assert!(needs_case(kind));
            }
            assert!(
                check_internal_recipients(MessageKind::Referral, &me, std::slice::from_ref(&me))
                    .is_err()
            );
            assert!(
                check_internal_recipients(MessageKind::Referral, &me, std::slice::from_ref(&other))
                    .is_ok()
            );
            assert!(!may_send("centre", MessageKind::Referral, "centre"));
        }

        #[test]
        fn only_the_kinds_before_a_case_go_without_a_case_reference() {
            let zero = [0u8; 16];
            let some = [7u8; 16];
            for kind in kinds() {
                let before_a_case = matches!(
                    kind,
                    MessageKind::AnonymousConsultation
                        | MessageKind::ConsultationReply
                        | MessageKind::Referral
                        | MessageKind::ConsentRecord
                );
                assert_eq!(needs_case(kind), !before_a_case, "{kind:?}");
                assert_eq!(check_case(kind, &zero).is_ok(), before_a_case, "{kind:?}");
                assert!(check_case(kind, &some).is_ok(), "{kind:?}");
            }
            let e = check_case(MessageKind::StatusUpdate, &zero).unwrap_err();
            assert!(
                e.starts_with("a status-update needs a case reference"),
                "{e}"
            );
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
    /// A sealed message's signed payload in format version 1, signed with the sender device's
    /// Ed25519 key: the signed message is this context followed by SHA-512 of the encoded
    /// SignedPayload.
    pub const SIGNED_PAYLOAD: &[u8] = b"silta/v1/signed-payload\n";
    /// The same in format version 2: this context followed by SHA-256 of the encoded
    /// SignedPayload.
    pub const SIGNED_PAYLOAD_SHA256: &[u8] = b"silta/v1/signed-payload-sha256\n";
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

/// Characters that are invisible or reorder text on screen, for checks of text that is stored
/// for good or shown to people (shared by the relay and its clients).
pub mod text {
    /// Bidirectional overrides, embeddings and isolates (U+202A..U+202E, U+2066..U+2069), the
    /// marks U+200E/U+200F/U+061C, and the line and paragraph separators U+2028/U+2029: they
    /// reorder or break what follows them on screen.
    pub fn reorders(c: char) -> bool {
        matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
    }

    /// Zero-width and invisible formatting characters (U+200B..U+200D, U+2060..U+2064, U+FEFF,
    /// U+180E, U+00AD, U+034F): what is shown differs from what is stored.
    pub fn invisible(c: char) -> bool {
        matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'..='\u{2064}'
                | '\u{FEFF}'
        )
    }

    /// May `c` stand in one line of text kept for good (a reason, a note)? Not a control
    /// character, nothing that reorders the text or is invisible.
    pub fn line_safe(c: char) -> bool {
        !(c.is_control() || reorders(c) || invisible(c))
    }
}

//! Sealing and opening without a relay: round trips (property tests), tampering, the payload
//! rules, bundles from another CA, and interoperability with the reference `age` CLI.

use proptest::prelude::*;
use silta_certs::{
    Principal,
    ca::{CertificateAuthority, Validity},
};
use silta_client::{
    bundle::{BundleError, TrustStore, VerifiedBundle},
    keys::DeviceKeys,
    payload::read_form,
    seal::{Draft, Rejected, open, seal},
};
use silta_proto::pb::{
    self, MessageKind, RejectionReason, Urgency,
    payload::{self as pl, Payload, payload::Body},
};

fn vb(p: &Principal, k: &DeviceKeys) -> VerifiedBundle {
    VerifiedBundle {
        principal: p.clone(),
        device_id: k.device_id().to_owned(),
        age_recipient: k.age_recipient(),
        ed25519: *k.verifying_key().as_bytes(),
        fingerprint: k.fingerprint(),
        created_at: 0,
        opens_version: silta_client::seal::NEWEST_VERSION,
    }
}

struct Parties {
    centre: Principal,
    centre_keys: DeviceKeys,
    nas: Principal,
    nas_keys: DeviceKeys,
}

fn parties() -> Parties {
    Parties {
        centre: "centre/a".parse().unwrap(),
        centre_keys: DeviceKeys::generate("c1").unwrap(),
        nas: "assistance/nas".parse().unwrap(),
        nas_keys: DeviceKeys::generate("n1").unwrap(),
    }
}

fn consultation(questions: &str) -> Payload {
    Payload {
        body: Some(Body::AnonymousConsultation(pl::AnonymousConsultation {
            questions: questions.into(),
            ..Default::default()
        })),
    }
}

fn seal_to_nas(
    p: &Parties,
    payload: Payload,
    extra_recipients: usize,
) -> (Draft, pb::Envelope, Vec<DeviceKeys>) {
    let d = Draft::new(
        MessageKind::AnonymousConsultation,
        [0; 16],
        vec![p.nas.clone()],
        payload,
    );
    let extra: Vec<DeviceKeys> = (0..extra_recipients)
        .map(|i| DeviceKeys::generate(&format!("x{i}")).unwrap())
        .collect();
    let mut to = vec![p.nas_keys.age_recipient(), p.centre_keys.age_recipient()];
    to.extend(extra.iter().map(|k| k.age_recipient()));
    let env = seal(&d, &p.centre, &p.centre_keys, &to).unwrap();
    (d, env, extra)
}

/// [`seal_to_nas`] in format `version`.
fn seal_to_nas_in(p: &Parties, payload: Payload, version: u32) -> pb::Envelope {
    let d = Draft::new(
        MessageKind::AnonymousConsultation,
        [0; 16],
        vec![p.nas.clone()],
        payload,
    );
    let to = [p.nas_keys.age_recipient(), p.centre_keys.age_recipient()];
    silta_client::seal::seal_version_at(
        &d,
        &p.centre,
        &p.centre_keys,
        &to,
        std::time::SystemTime::now(),
        version,
    )
    .unwrap()
}

/// What the signature of a sealed message in format `version` covers, computed here
/// independently of the client (payload.proto, `SealedMessage.signature`).
fn signed_message(version: u32, signed_bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    match version {
        1 => [
            silta_proto::context::SIGNED_PAYLOAD,
            sha2::Sha512::digest(signed_bytes).as_slice(),
        ]
        .concat(),
        2 => [
            silta_proto::context::SIGNED_PAYLOAD_SHA256,
            sha2::Sha256::digest(signed_bytes).as_slice(),
        ]
        .concat(),
        v => panic!("no format {v}"),
    }
}

/// `env` with its ciphertext replaced by `plaintext` encrypted to the NAS device (as a sender's
/// other device, or anyone with the recipient key, could), its digest fixed up to match.
fn encrypted_to_nas(p: &Parties, env: &pb::Envelope, plaintext: &[u8]) -> pb::Envelope {
    let ciphertext =
        silta_client::seal::encrypt(&[p.nas_keys.age_recipient().parse().unwrap()], plaintext)
            .unwrap();
    pb::Envelope {
        ciphertext_sha256: silta_tests_sha(&ciphertext),
        ciphertext: ciphertext.into(),
        ..env.clone()
    }
}

fn delivered(p: &Parties, env: pb::Envelope) -> pb::DeliveredEnvelope {
    pb::DeliveredEnvelope {
        envelope: Some(env),
        sender: p.centre.to_string(),
        accepted_at: None,
        log_index: 0,
        handled: None,
        sealed_before_device: false,
    }
}

fn open_as_nas(p: &Parties, d: &pb::DeliveredEnvelope) -> Result<pl::SignedPayload, Rejected> {
    let key = vb(&p.centre, &p.centre_keys);
    open(d, &p.nas, &p.nas_keys, |s, dev| {
        (s == key.principal.to_string() && dev == key.device_id).then(|| key.clone())
    })
    // The signed payload whole again (`open` moves the payload out of it).
    .map(|o| {
        assert!(o.signed.payload.is_none(), "the payload is not kept twice");
        pl::SignedPayload {
            payload: Some(o.payload),
            ..o.signed
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// open(seal(x)) == x for random payloads (several kinds, random text) and random recipient
    /// principals and device sets; every listed device can decrypt.
    #[test]
    fn open_of_seal_is_identity(text in "[a-zA-Z ,?\u{e4}\u{f6}]{0,3000}", extra in 0usize..4, kind in 0usize..3, others in prop::collection::btree_set("[a-z]{1,8}", 0..4)) {
        let p = parties();
        let payload = match kind {
            0 => consultation(&text),
            1 => Payload { body: Some(Body::StatusUpdate(pl::StatusUpdate { change: 1, description: text.clone(), ..Default::default() })) },
            _ => Payload { body: Some(Body::MeetingReply(pl::MeetingReply { note: text.clone(), answer: 1, ..Default::default() })) },
        };
        let kind = silta_client::payload::kind_of(payload.body.as_ref().unwrap());
        let mut recipients = vec![p.nas.clone()];
        recipients.extend(others.iter().map(|o| format!("assistance/{o}").parse::<Principal>().unwrap()));
        recipients.sort();
        recipients.dedup();
        let d = Draft::new(kind, [3; 16], recipients.clone(), payload);
        let extra_keys: Vec<DeviceKeys> = (0..extra).map(|i| DeviceKeys::generate(&format!("x{i}")).unwrap()).collect();
        let mut to = vec![p.nas_keys.age_recipient(), p.centre_keys.age_recipient()];
        to.extend(extra_keys.iter().map(|k| k.age_recipient()));
        let env = seal(&d, &p.centre, &p.centre_keys, &to).unwrap();
        let mut sorted: Vec<String> = recipients.iter().map(|r| r.to_string()).collect();
        sorted.sort();
        prop_assert_eq!(&env.recipients, &sorted);
        let signed = open_as_nas(&p, &delivered(&p, env.clone())).unwrap();
        prop_assert_eq!(signed.payload.unwrap(), d.payload.clone());
        prop_assert_eq!(signed.message_id, d.message_id.to_vec());
        prop_assert_eq!(signed.recipients, sorted);
        // Every listed key can decrypt (the sender's own devices and extra recipients too).
        for k in extra_keys.iter().chain([&p.centre_keys]) {
            prop_assert!(silta_client::seal::decrypt(k.age_identity(), &env.ciphertext).is_ok());
        }
    }

    /// Any single flipped byte of the ciphertext is rejected, whether or not the digest is fixed up.
    #[test]
    fn any_flipped_byte_is_rejected(text in "[a-z ]{0,500}", pos in any::<prop::sample::Index>(), bit in 0u8..8, fix_digest in any::<bool>()) {
        let p = parties();
        let (_, mut env, _) = seal_to_nas(&p, consultation(&text), 0);
        let i = pos.index(env.ciphertext.len());
        let mut ciphertext = env.ciphertext.to_vec();
        ciphertext[i] ^= 1 << bit;
        env.ciphertext = ciphertext.into();
        if fix_digest {
            env.ciphertext_sha256 = silta_tests_sha(&env.ciphertext);
        }
        let r = open_as_nas(&p, &delivered(&p, env));
        prop_assert!(r.is_err(), "flip at {} accepted", i);
        // With the digest fixed up (as a relay would have to), age itself catches the change.
        let reason = r.unwrap_err().reason;
        let expected = if fix_digest { RejectionReason::CannotDecrypt } else { RejectionReason::EnvelopeMismatch };
        prop_assert_eq!(reason, expected);
    }
}

fn silta_tests_sha(b: &[u8]) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(b).to_vec()
}

#[test]
fn padding_hides_the_exact_length() {
    let p = parties();
    // The sealed plaintext is padded to a bucket; the age header around it varies on its own
    // (age adds random "grease" stanzas), so compare what age encrypted.
    let size = |n: usize| {
        let (_, env, _) = seal_to_nas(&p, consultation(&"b".repeat(n)), 0);
        silta_client::seal::decrypt(p.nas_keys.age_identity(), &env.ciphertext)
            .unwrap()
            .len()
    };
    assert_eq!(size(1), 1024);
    assert_eq!(size(300), 1024);
    assert_eq!(size(1500), 2048);
    assert_eq!(size(3000), 4096);
}

#[test]
fn payload_rules_are_enforced_before_sealing() {
    let p = parties();
    let to = [p.nas_keys.age_recipient()];
    let seal_form =
        |kind: MessageKind, form: &str, urgency: Urgency| -> Result<pb::Envelope, String> {
            let payload = read_form(kind, form, false).map_err(|e| e.to_string())?;
            let mut d = Draft::new(kind, [1; 16], vec![p.nas.clone()], payload);
            d.urgency = urgency;
            seal(&d, &p.centre, &p.centre_keys, &to).map_err(|e| e.to_string())
        };
    // A referral without consent.
    let e = seal_form(
        MessageKind::Referral,
        "[person]\nname = \"X\"\nage_group = \"AGE_GROUP_ADULT\"",
        Urgency::Normal,
    )
    .unwrap_err();
    assert!(e.contains("consent record is required"), "{e}");
    // A child referral without the guardian's consent.
    let child = "[person]\nname = \"X\"\nage_group = \"AGE_GROUP_CHILD_UNDER_15\"\n[consent]\nperson_name = \"X\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]";
    let e = seal_form(MessageKind::Referral, child, Urgency::Urgent).unwrap_err();
    assert!(e.contains("guardian"), "{e}");
    // With the guardian's consent but not urgent.
    let with_guardian = format!(
        "{child}\nguardian_name = \"G\"\nguardian_role = \"representative\"\nguardian_signed = true"
    );
    let e = seal_form(MessageKind::Referral, &with_guardian, Urgency::Normal).unwrap_err();
    assert!(e.contains("urgent"), "{e}");
    seal_form(MessageKind::Referral, &with_guardian, Urgency::Urgent).unwrap();
    // 15-17: the child's own consent too.
    let teen = with_guardian.replace("CHILD_UNDER_15", "CHILD_15_TO_17");
    let e = seal_form(MessageKind::Referral, &teen, Urgency::Urgent).unwrap_err();
    assert!(e.contains("child's own consent"), "{e}");
    // A consultation carrying a name: there is no field for it...
    let e = seal_form(
        MessageKind::AnonymousConsultation,
        "name = \"Jane Doe\"\nquestions = \"?\"",
        Urgency::Normal,
    )
    .unwrap_err();
    assert!(e.contains("name") && e.contains("no such field"), "{e}");
    // ...and identifiers in its free text are caught.
    let e = seal_form(
        MessageKind::AnonymousConsultation,
        "questions = \"born 12.03.1999, what now?\"",
        Urgency::Normal,
    )
    .unwrap_err();
    assert!(e.contains("date"), "{e}");
    // An admission notice has nothing but yes/no and dates.
    let e = seal_form(MessageKind::AdmissionDecisionNotice, "outcome = \"ADMISSION_OUTCOME_ADMITTED\"\ndecision_date = \"2026-11-27\"\nreasons = \"...\"", Urgency::Normal).unwrap_err();
    assert!(e.contains("no such field"), "{e}");
    // Direction: a centre may not send an admission decision.
    let e = seal_form(
        MessageKind::AdmissionDecisionNotice,
        "outcome = \"ADMISSION_OUTCOME_ADMITTED\"\ndecision_date = \"2026-11-27\"",
        Urgency::Normal,
    )
    .unwrap_err();
    assert!(e.contains("may not send"), "{e}");
}

#[test]
fn a_message_without_a_valid_sender_key_is_untrusted() {
    let p = parties();
    let (_, env, _) = seal_to_nas(&p, consultation("hello"), 0);
    let r = open(&delivered(&p, env), &p.nas, &p.nas_keys, |_, _| None).unwrap_err();
    assert_eq!(r.reason, RejectionReason::UntrustedSenderKey);
}

#[test]
fn bundles_from_another_ca_or_revoked_are_not_trusted() {
    let ca =
        CertificateAuthority::generate("CA", "silta.example", Validity::days_from_now(9)).unwrap();
    let other =
        CertificateAuthority::generate("Other", "silta.example", Validity::days_from_now(9))
            .unwrap();
    let p: Principal = "centre/a".parse().unwrap();
    let keys = DeviceKeys::generate("d1").unwrap();
    let crl_der = |ca: &CertificateAuthority, revoked: &[silta_certs::ca::Revocation]| {
        use rustls_pki_types::{CertificateRevocationListDer, pem::PemObject as _};
        CertificateRevocationListDer::from_pem_slice(ca.crl(revoked, 1, 5).unwrap().as_bytes())
            .unwrap()
            .to_vec()
    };
    let trust = TrustStore::from_pem(ca.cert_pem().as_bytes(), "silta.example").unwrap();
    let now = rustls_pki_types::UnixTime::now();

    let good = ca.issue_client(&p, 5).unwrap();
    let bundle =
        silta_client::bundle::build(&keys, &p, good.cert_pem.as_bytes(), &good.key_pem).unwrap();
    let v = trust.verify(&bundle, &[crl_der(&ca, &[])], now).unwrap();
    assert_eq!(v.fingerprint, keys.fingerprint());

    let foreign = other.issue_client(&p, 5).unwrap();
    let bundle =
        silta_client::bundle::build(&keys, &p, foreign.cert_pem.as_bytes(), &foreign.key_pem)
            .unwrap();
    assert!(matches!(
        trust.verify(&bundle, &[crl_der(&ca, &[]), crl_der(&other, &[])], now),
        Err(BundleError::Untrusted(_))
    ));

    let revoked = silta_certs::ca::Revocation {
        serial: good.serial.clone(),
        revoked_at: time::OffsetDateTime::now_utc(),
    };
    let bundle =
        silta_client::bundle::build(&keys, &p, good.cert_pem.as_bytes(), &good.key_pem).unwrap();
    assert!(
        matches!(trust.verify(&bundle, &[crl_der(&ca, &[revoked])], now), Err(BundleError::Untrusted(e)) if e.contains("Revoked"))
    );

    // Content tampered after signing.
    let mut tampered =
        silta_client::bundle::build(&keys, &p, good.cert_pem.as_bytes(), &good.key_pem).unwrap();
    let last = tampered.content.len() - 1;
    tampered.content[last] ^= 1;
    assert!(trust.verify(&tampered, &[crl_der(&ca, &[])], now).is_err());
}

fn age_cli() -> bool {
    let ok = std::process::Command::new("age")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the age CLI is required under CI=true"
        );
        eprintln!("age CLI not installed; skipping (apt-get install age)");
    }
    ok
}

/// The reference Go `age` opens a Silta ciphertext with the device's identity file.
#[test]
fn age_cli_decrypts_silta_ciphertexts() {
    if !age_cli() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = DeviceKeys::init(&dir.path().join("keys"), "n1").unwrap();
    let p = Parties {
        nas_keys: keys,
        ..parties()
    };
    let (_, env, _) = seal_to_nas(&p, consultation("interop"), 0);
    let ct = dir.path().join("msg.age");
    std::fs::write(&ct, &env.ciphertext).unwrap();
    let out = std::process::Command::new("age")
        .args(["-d", "-i"])
        .arg(dir.path().join("keys").join(silta_client::keys::AGE_FILE))
        .arg(&ct)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What age decrypted is our sealed message, bit for bit.
    let plain = silta_client::seal::decrypt(p.nas_keys.age_identity(), &env.ciphertext).unwrap();
    assert_eq!(out.stdout, plain);
    use prost::Message as _;
    assert!(pl::SealedMessage::decode(out.stdout.as_slice()).is_ok());
}

/// A file made by `age -r` decrypts in Silta's age layer and is then rejected for having no
/// valid signature.
#[test]
fn files_made_by_age_cli_are_rejected_for_lacking_a_signature() {
    if !age_cli() {
        return;
    }
    let p = parties();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.txt");
    std::fs::write(&plain, b"I claim to be centre/a").unwrap();
    for armor in [false, true] {
        let out = dir.path().join(if armor { "x.age.asc" } else { "x.age" });
        let mut cmd = std::process::Command::new("age");
        cmd.arg("-r")
            .arg(p.nas_keys.age_recipient())
            .arg("-o")
            .arg(&out);
        if armor {
            cmd.arg("-a");
        }
        assert!(cmd.arg(&plain).status().unwrap().success());
        let ciphertext = std::fs::read(&out).unwrap();
        // Silta's age layer opens it...
        assert_eq!(
            silta_client::seal::decrypt(p.nas_keys.age_identity(), &ciphertext).unwrap(),
            b"I claim to be centre/a"
        );
        // ...and the message is refused.
        let env = pb::Envelope {
            message_id: uuid::Uuid::now_v7().as_bytes().to_vec(),
            case_ref: vec![0; 16],
            kind: MessageKind::AnonymousConsultation.into(),
            urgency: Urgency::Normal.into(),
            legal_basis: pb::LegalBasis::Consent.into(),
            recipients: vec![p.nas.to_string()],
            ciphertext_sha256: silta_tests_sha(&ciphertext),
            ciphertext: ciphertext.into(),
            ..Default::default()
        };
        let r = open_as_nas(&p, &delivered(&p, env)).unwrap_err();
        assert_eq!(r.reason, RejectionReason::BadSignature, "{r}");
        assert!(r.detail.contains("no valid Silta signature"), "{r}");
    }
}

#[test]
fn only_the_freshest_crl_of_each_issuer_is_used() {
    use rustls_pki_types::{CertificateRevocationListDer, pem::PemObject as _};
    let ca =
        CertificateAuthority::generate("CA", "silta.example", Validity::days_from_now(9)).unwrap();
    let p: Principal = "centre/a".parse().unwrap();
    let cert = ca.issue_client(&p, 5).unwrap();
    let der = |n: u64, revoked: &[silta_certs::ca::Revocation]| {
        CertificateRevocationListDer::from_pem_slice(ca.crl(revoked, n, 5).unwrap().as_bytes())
            .unwrap()
            .to_vec()
    };
    let old = der(1, &[]);
    let new = der(
        2,
        &[silta_certs::ca::Revocation {
            serial: cert.serial.clone(),
            revoked_at: time::OffsetDateTime::now_utc(),
        }],
    );
    let trust = TrustStore::from_pem(ca.cert_pem().as_bytes(), "silta.example").unwrap();
    let ders = |v: Vec<silta_client::bundle::VerifiedCrl>| {
        v.iter().map(|c| c.der().to_vec()).collect::<Vec<_>>()
    };
    // Whatever the order, the newer CRL (with the revocation) wins.
    for crls in [
        vec![old.clone(), new.clone()],
        vec![new.clone(), old.clone()],
    ] {
        assert_eq!(ders(trust.freshest_crls(crls)), vec![new.clone()]);
    }
    let keys = DeviceKeys::generate("d1").unwrap();
    let bundle =
        silta_client::bundle::build(&keys, &p, cert.cert_pem.as_bytes(), &cert.key_pem).unwrap();
    // A relay that puts the stale CRL first does not hide the revocation.
    assert!(
        trust
            .verify(&bundle, &[old, new], rustls_pki_types::UnixTime::now())
            .is_err()
    );
}

#[test]
fn a_crl_not_signed_by_the_ca_is_never_ranked_or_used() {
    use rustls_pki_types::{CertificateRevocationListDer, pem::PemObject as _};
    let ca =
        CertificateAuthority::generate("CA", "silta.example", Validity::days_from_now(9)).unwrap();
    // Same name (so the same issuer), another key.
    let forger =
        CertificateAuthority::generate("CA", "silta.example", Validity::days_from_now(9)).unwrap();
    let p: Principal = "centre/a".parse().unwrap();
    let cert = ca.issue_client(&p, 5).unwrap();
    let der = |ca: &CertificateAuthority, n: u64, revoked: &[silta_certs::ca::Revocation]| {
        CertificateRevocationListDer::from_pem_slice(ca.crl(revoked, n, 5).unwrap().as_bytes())
            .unwrap()
            .to_vec()
    };
    let genuine = der(
        &ca,
        2,
        &[silta_certs::ca::Revocation {
            serial: cert.serial.clone(),
            revoked_at: time::OffsetDateTime::now_utc(),
        }],
    );
    let forged = der(&forger, u64::MAX, &[]);
    let trust = TrustStore::from_pem(ca.cert_pem().as_bytes(), "silta.example").unwrap();
    for crls in [
        vec![forged.clone(), genuine.clone()],
        vec![genuine.clone(), forged.clone()],
    ] {
        let kept: Vec<Vec<u8>> = trust
            .freshest_crls(crls)
            .iter()
            .map(|c| c.der().to_vec())
            .collect();
        assert_eq!(
            kept,
            vec![genuine.clone()],
            "the forged CRL outranked the genuine one"
        );
    }
    assert!(trust.freshest_crls([forged.clone()]).is_empty());
    // The revocation in the genuine CRL still counts when the forged one is offered first.
    let keys = DeviceKeys::generate("d1").unwrap();
    let bundle =
        silta_client::bundle::build(&keys, &p, cert.cert_pem.as_bytes(), &cert.key_pem).unwrap();
    let err = trust
        .verify(
            &bundle,
            &[forged, genuine],
            rustls_pki_types::UnixTime::now(),
        )
        .unwrap_err();
    assert!(
        matches!(err, silta_client::bundle::BundleError::Untrusted(ref m) if m.to_lowercase().contains("revoked")),
        "{err}"
    );
}

#[test]
fn admission_notices_carry_dates_and_child_age_groups_match_the_date_of_birth() {
    let p = parties();
    let nas_to_centre = |form: &str| -> Result<(), String> {
        let payload = read_form(MessageKind::AdmissionDecisionNotice, form, false)
            .map_err(|e| e.to_string())?;
        let d = Draft::new(
            MessageKind::AdmissionDecisionNotice,
            [1; 16],
            vec![p.centre.clone()],
            payload,
        );
        seal(&d, &p.nas, &p.nas_keys, &[p.centre_keys.age_recipient()])
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    nas_to_centre("outcome = \"ADMISSION_OUTCOME_ADMITTED\"\ndecision_date = \"2026-11-27\"")
        .unwrap();
    let e = nas_to_centre(
        "outcome = \"ADMISSION_OUTCOME_ADMITTED\"\ndecision_date = \"because of indicators\"",
    )
    .unwrap_err();
    assert!(e.contains("not a date"), "{e}");
    let e = nas_to_centre(&format!(
        "outcome = \"ADMISSION_OUTCOME_NOT_ADMITTED\"\ndecision_date = \"2026-11-27\"\n[contact]\nname = \"{}\"",
        "reasons hidden in a long contact field ".repeat(3)
    ))
    .unwrap_err();
    assert!(e.contains("yes/no and dates only"), "{e}");

    // A person born ten years ago, stated to be an adult.
    let dob = time::OffsetDateTime::now_utc()
        .date()
        .replace_year(time::OffsetDateTime::now_utc().year() - 10)
        .unwrap();
    let form = format!(
        "[person]\nname = \"X\"\ndate_of_birth = \"{dob}\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"X\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]"
    );
    let payload = read_form(MessageKind::Referral, &form, false).unwrap();
    let mut d = Draft::new(MessageKind::Referral, [1; 16], vec![p.nas.clone()], payload);
    d.urgency = Urgency::Urgent;
    let e = seal(&d, &p.centre, &p.centre_keys, &[p.nas_keys.age_recipient()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not match the date of birth"), "{e}");
}

/// The example forms shipped in client/forms/ are valid for their kinds.
#[test]
fn the_example_forms_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("forms");
    let p = parties();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // outbox/: forms with an [envelope], checked below
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let kind = silta_client::payload::parse_kind(&name).unwrap();
        let payload = read_form(kind, &std::fs::read_to_string(&path).unwrap(), false)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (from, from_keys, to, to_keys) =
            if silta_proto::policy::may_send("centre", kind, "assistance") {
                (&p.centre, &p.centre_keys, &p.nas, &p.nas_keys)
            } else {
                (&p.nas, &p.nas_keys, &p.centre, &p.centre_keys)
            };
        let mut d = Draft::new(kind, [1; 16], vec![to.clone()], payload);
        d.urgency = Urgency::Urgent;
        seal(&d, from, from_keys, &[to_keys.age_recipient()])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        n += 1;
    }
    assert!(n >= 4);
}

/// The outbox examples (client/forms/outbox/) carry an [envelope] and are valid for the daemon.
#[test]
fn the_example_outbox_forms_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("forms/outbox");
    let p = parties();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let (header, payload) =
            silta_client::form::read_envelope_form(&std::fs::read_to_string(&path).unwrap(), false)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(silta_client::payload::kind_name(header.kind), name);
        assert_eq!(header.to, vec![p.nas.clone()]);
        let mut d = header.draft([2; 16], payload);
        if silta_proto::policy::needs_case(header.kind) {
            // A placeholder the user fills in; as it is, it is refused before sealing.
            assert_eq!(d.case_ref, [0; 16], "{name}");
            let e = seal(&d, &p.centre, &p.centre_keys, &[p.nas_keys.age_recipient()]).unwrap_err();
            assert!(
                e.to_string().contains("needs a case reference"),
                "{name}: {e}"
            );
            d.case_ref = [3; 16];
        }
        seal(&d, &p.centre, &p.centre_keys, &[p.nas_keys.age_recipient()])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        n += 1;
    }
    assert_eq!(n, 4);
}

/// A large message (600 KiB: sealed and opened on two threads: the signed digest beside age,
/// SHA-256 beside decryption), in both formats, keeps the wire format and every check: the
/// reference `age` CLI decrypts it to a `SealedMessage` whose signature verifies, computed here
/// independently (Ed25519 over the format's context and digest of the signed bytes); a flipped
/// byte is caught by the digest, or by age with the digest fixed up; changed signed bytes,
/// re-encrypted, fail the signature.
#[test]
fn a_large_message_keeps_the_format_and_every_check() {
    for version in [1, 2] {
        a_large_message_in_format(version);
    }
}

fn a_large_message_in_format(version: u32) {
    use prost::Message as _;
    let dir = tempfile::tempdir().unwrap();
    let p = Parties {
        nas_keys: DeviceKeys::init(&dir.path().join("keys"), "n1").unwrap(),
        ..parties()
    };
    let text: String = (0..600 << 10)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let payload = consultation(&text);
    let env = seal_to_nas_in(&p, payload.clone(), version);
    let signed = open_as_nas(&p, &delivered(&p, env.clone())).unwrap();
    assert_eq!(signed.payload.as_ref(), Some(&payload));
    assert_eq!(signed.version, version);

    let plain = silta_client::seal::decrypt(p.nas_keys.age_identity(), &env.ciphertext).unwrap();
    if age_cli() {
        let ct = dir.path().join("msg.age");
        std::fs::write(&ct, &env.ciphertext).unwrap();
        let out = std::process::Command::new("age")
            .args(["-d", "-i"])
            .arg(dir.path().join("keys").join(silta_client::keys::AGE_FILE))
            .arg(&ct)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, plain);
    }
    let sealed = pl::SealedMessage::decode(plain.as_slice()).unwrap();
    assert_eq!(
        sealed.encode_to_vec(),
        plain,
        "fields in order, nothing else"
    );
    let message = signed_message(version, &sealed.signed_payload);
    let signature = ed25519_dalek::Signature::from_slice(&sealed.signature).unwrap();
    p.centre_keys
        .verifying_key()
        .verify_strict(&message, &signature)
        .unwrap();
    assert_eq!(
        silta_tests_sha(&env.ciphertext),
        env.ciphertext_sha256,
        "the digest is the ciphertext's SHA-256"
    );

    for fix_digest in [false, true] {
        let mut bad = env.clone();
        let mid = bad.ciphertext.len() / 2;
        let mut ciphertext = bad.ciphertext.to_vec();
        ciphertext[mid] ^= 0x10;
        bad.ciphertext = ciphertext.into();
        if fix_digest {
            bad.ciphertext_sha256 = silta_tests_sha(&bad.ciphertext);
        }
        let reason = open_as_nas(&p, &delivered(&p, bad)).unwrap_err().reason;
        let expected = if fix_digest {
            RejectionReason::CannotDecrypt
        } else {
            RejectionReason::EnvelopeMismatch
        };
        assert_eq!(
            reason, expected,
            "format {version}, digest fixed: {fix_digest}"
        );
    }

    // The sender's own signed bytes with one byte changed deep inside, encrypted again to the
    // recipient (as a sender's other device or anyone with the recipient key could).
    let mut changed = plain.clone();
    let mid = changed.len() / 2;
    changed[mid] ^= 0x01;
    let forged = encrypted_to_nas(&p, &env, &changed);
    let reason = open_as_nas(&p, &delivered(&p, forged)).unwrap_err().reason;
    assert_eq!(reason, RejectionReason::BadSignature, "format {version}");
}

/// A large plaintext that repeats field 1 (the signed bytes): the sender's genuine signed bytes
/// first, then other bytes, then the genuine signature. prost keeps the last occurrence, so the
/// signature must be checked against the last one (not the first one, which open digests while
/// it decrypts): refused as BAD_SIGNATURE, as for a small message.
#[test]
fn a_signature_over_an_earlier_copy_of_the_signed_bytes_is_refused() {
    use prost::Message as _;
    let p = parties();
    for (size, version) in [(1 << 10, 1), (1 << 10, 2), (600 << 10, 1), (600 << 10, 2)] {
        let text: String = (0..size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let env = seal_to_nas_in(&p, consultation(&text), version);
        let plain =
            silta_client::seal::decrypt(p.nas_keys.age_identity(), &env.ciphertext).unwrap();
        let genuine = pl::SealedMessage::decode(plain.as_slice()).unwrap();
        let mut other = pl::SignedPayload::decode(genuine.signed_payload.as_slice()).unwrap();
        other.payload = Some(consultation(&text.replace('a', "b")));
        let first = pl::SealedMessage {
            signed_payload: genuine.signed_payload.clone(),
            signature: Vec::new(),
        };
        let last = pl::SealedMessage {
            signed_payload: other.encode_to_vec(),
            signature: genuine.signature.clone(),
        };
        let hostile = [first.encode_to_vec(), last.encode_to_vec()].concat();
        // The signature verifies over the first copy (so only the choice of copy refuses it).
        let message = signed_message(version, &genuine.signed_payload);
        p.centre_keys
            .verifying_key()
            .verify_strict(
                &message,
                &ed25519_dalek::Signature::from_slice(&genuine.signature).unwrap(),
            )
            .unwrap();
        let forged = encrypted_to_nas(&p, &env, &hostile);
        assert!(forged.ciphertext.len() > 256 << 10 || size < 256 << 10);
        let reason = open_as_nas(&p, &delivered(&p, forged)).unwrap_err().reason;
        assert_eq!(
            reason,
            RejectionReason::BadSignature,
            "size {size}, format {version}"
        );
    }
}

/// A large ciphertext (decrypted while it is digested, block by block) cut short: in its last
/// tag, inside a chunk, past the first decrypting block, and small. With its digest fixed up, age
/// refuses it (CANNOT_DECRYPT); without, the digest is reported first (ENVELOPE_MISMATCH).
#[test]
fn a_large_ciphertext_cut_short_is_refused() {
    let p = parties();
    let text: String = (0..700 << 10)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let (_, env, _) = seal_to_nas(&p, consultation(&text), 0);
    assert!(env.ciphertext.len() > 768 << 10);
    for cut in [
        env.ciphertext.len() - 1,
        env.ciphertext.len() - 17,
        env.ciphertext.len() / 2,
        300 << 10,
        1000,
    ] {
        for fix_digest in [false, true] {
            let mut bad = env.clone();
            bad.ciphertext.truncate(cut);
            if fix_digest {
                bad.ciphertext_sha256 = silta_tests_sha(&bad.ciphertext);
            }
            let reason = open_as_nas(&p, &delivered(&p, bad)).unwrap_err().reason;
            let expected = if fix_digest {
                RejectionReason::CannotDecrypt
            } else {
                RejectionReason::EnvelopeMismatch
            };
            assert_eq!(reason, expected, "cut at {cut}, digest fixed: {fix_digest}");
        }
    }
}

/// Both formats open, small and large (digested beside decryption), and neither signing scheme
/// passes for the other: the signed bytes of one version signed by the other's scheme are
/// refused (BAD_SIGNATURE), as is a version-2 message signed over SHA-512 under format 2's
/// context. An unknown version (3) is refused as malformed. Signed bytes whose version field
/// comes twice are judged by the version they decode to.
#[test]
fn each_format_opens_and_the_schemes_do_not_cross() {
    use prost::Message as _;
    use sha2::Digest as _;
    let p = parties();
    // The sender's signed bytes in format `version`, signed over `message`, sealed to the NAS.
    let resigned = |env: &pb::Envelope, version: u32, message: &dyn Fn(&[u8]) -> Vec<u8>| {
        let plain =
            silta_client::seal::decrypt(p.nas_keys.age_identity(), &env.ciphertext).unwrap();
        let sealed = pl::SealedMessage::decode(plain.as_slice()).unwrap();
        let mut signed = pl::SignedPayload::decode(sealed.signed_payload.as_slice()).unwrap();
        signed.version = version;
        let signed_payload = signed.encode_to_vec();
        // `sign` covers its context, then the message: the whole message here.
        let plaintext = pl::SealedMessage {
            signature: p.centre_keys.sign(&[], &message(&signed_payload)).to_vec(),
            signed_payload,
        }
        .encode_to_vec();
        encrypted_to_nas(&p, env, &plaintext)
    };
    for size in [1 << 10, 600 << 10] {
        let text: String = (0..size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        for version in [1, 2] {
            let env = seal_to_nas_in(&p, consultation(&text), version);
            let signed = open_as_nas(&p, &delivered(&p, env.clone())).unwrap();
            assert_eq!(signed.version, version, "size {size}");
            // Re-signed honestly by its own format's scheme: still opens (the forging helper
            // itself is sound).
            let same = resigned(&env, version, &|b| signed_message(version, b));
            assert_eq!(
                open_as_nas(&p, &delivered(&p, same)).unwrap().version,
                version
            );
            let other = 3 - version;
            let crossed = resigned(&env, version, &|b| signed_message(other, b));
            assert_eq!(
                open_as_nas(&p, &delivered(&p, crossed)).unwrap_err().reason,
                RejectionReason::BadSignature,
                "format {version} signed by format {other}'s scheme, size {size}"
            );
        }
        let env = seal_to_nas_in(&p, consultation(&text), 2);
        let sha512_under_v2_context = resigned(&env, 2, &|b| {
            [
                silta_proto::context::SIGNED_PAYLOAD_SHA256,
                sha2::Sha512::digest(b).as_slice(),
            ]
            .concat()
        });
        assert_eq!(
            open_as_nas(&p, &delivered(&p, sha512_under_v2_context))
                .unwrap_err()
                .reason,
            RejectionReason::BadSignature,
            "size {size}"
        );
        let unknown = resigned(&env, 3, &|b| signed_message(1, b));
        let refused = open_as_nas(&p, &delivered(&p, unknown)).unwrap_err();
        assert_eq!(refused.reason, RejectionReason::MalformedPayload);
        assert_eq!(refused.detail, "unsupported version 3");

        // Signed bytes that start with version 2 but decode to version 1 (the last occurrence
        // of a field wins): judged by format 1's scheme, which signed them. A large message is
        // digested while it decrypts by the scheme of the version it starts with; that digest
        // must not be the one checked.
        let plain =
            silta_client::seal::decrypt(p.nas_keys.age_identity(), &env.ciphertext).unwrap();
        let sealed = pl::SealedMessage::decode(plain.as_slice()).unwrap();
        let mut signed = pl::SignedPayload::decode(sealed.signed_payload.as_slice()).unwrap();
        signed.version = 1;
        let signed_payload = [vec![0x08, 0x02], signed.encode_to_vec()].concat();
        let twice = pl::SealedMessage {
            signature: p
                .centre_keys
                .sign(&[], &signed_message(1, &signed_payload))
                .to_vec(),
            signed_payload,
        }
        .encode_to_vec();
        let forged = encrypted_to_nas(&p, &env, &twice);
        let opened = open_as_nas(&p, &delivered(&p, forged)).unwrap();
        assert_eq!(opened.version, 1, "size {size}");
    }
}

/// The format a message is sealed in: the oldest any device announces, never newer than this
/// client's; a bundle that does not say (0) counts as format 1.
#[test]
fn the_format_is_the_oldest_any_device_opens() {
    use silta_client::seal::{NEWEST_VERSION, version_for};
    assert_eq!(NEWEST_VERSION, 2);
    assert_eq!(version_for([]), 2);
    assert_eq!(version_for([2, 2, 2]), 2);
    assert_eq!(version_for([2, 1, 2]), 1);
    assert_eq!(version_for([0, 2]), 1);
    assert_eq!(version_for([7]), 2);
}

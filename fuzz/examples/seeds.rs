//! Writes the seed corpora (`fuzz/seeds/<target>/`) and the public fixtures
//! (`fuzz/fixtures/ca.pem`, `fuzz/fixtures/generated_at`) from the programs' own code paths:
//! forms read by the daemon's reader, sealed by `seal::seal`, bundles by `bundle::build` with
//! certificates of a fresh CA, CRLs by that CA, checkpoints and proofs by `tlog` over a log of
//! real events, evidence in the format `silta audit prove` writes.
//!
//! Run from the repository root: `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.
//! The CA's private key and the certificates' keys live only in memory; what is written holds no
//! private key (the targets derive theirs from fixed seeds, see `silta_fuzz`).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use prost::Message as _;
use silta_certs::{
    Principal,
    ca::{CertificateAuthority, Revocation, Validity},
};
use silta_client::{
    audit::{Evidence, EvidenceEntry},
    bundle, form, seal,
};
use silta_fuzz::{DEVICE, LOG_ORIGIN, ME, SENDER, TRUST_DOMAIN};
use silta_proto::{pb, tlog};

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz".into()));
    let seeds = root.join("seeds");
    let fixtures = root.join("fixtures");
    std::fs::create_dir_all(&fixtures).expect("fixtures dir");
    let now = time::OffsetDateTime::now_utc();

    // The PKI: a CA valid for ten years, the two devices' certificates, a revoked third one.
    let ca = CertificateAuthority::generate(
        "Silta Fuzz CA",
        TRUST_DOMAIN,
        Validity::days_from_now(3650),
    )
    .expect("CA");
    std::fs::write(fixtures.join("ca.pem"), ca.cert_pem()).expect("ca.pem");
    std::fs::write(
        fixtures.join("generated_at"),
        format!("{}\n", now.unix_timestamp()),
    )
    .expect("generated_at");
    let sender: Principal = SENDER.parse().expect("principal");
    let me: Principal = ME.parse().expect("principal");
    let sender_cert = ca.issue_client(&sender, 3650).expect("cert");
    let me_cert = ca.issue_client(&me, 3650).expect("cert");
    let revoked = ca
        .issue_client(&"centre/revoked".parse().expect("p"), 3650)
        .expect("cert");
    let crl_pem = ca
        .crl(
            &[Revocation {
                serial: revoked.serial.clone(),
                revoked_at: now,
            }],
            7,
            3650,
        )
        .expect("crl");
    let crl = pem_der(&crl_pem);
    let other_ca =
        CertificateAuthority::generate("Other CA", TRUST_DOMAIN, Validity::days_from_now(30))
            .expect("CA");
    let foreign_crl = pem_der(&other_ca.crl(&[], 99, 30).expect("crl"));
    let older_crl = pem_der(&ca.crl(&[], 3, 3650).expect("crl"));

    let sender_keys = silta_fuzz::sender_keys();
    let me_keys = silta_fuzz::recipient_keys();
    let sender_bundle = bundle::build(
        sender_keys,
        &sender,
        sender_cert.cert_pem.as_bytes(),
        &sender_cert.key_pem,
    )
    .expect("bundle");
    let me_bundle =
        bundle::build(me_keys, &me, me_cert.cert_pem.as_bytes(), &me_cert.key_pem).expect("bundle");
    let revoked_bundle = bundle::build(
        sender_keys,
        &"centre/revoked".parse().expect("p"),
        revoked.cert_pem.as_bytes(),
        &revoked.key_pem,
    )
    .expect("bundle");

    // Keys: the relay's and the client's side.
    write(
        &seeds,
        "relay_bundle",
        "sender",
        &sender_bundle.encode_to_vec(),
    );
    write(
        &seeds,
        "relay_bundle",
        "recipient",
        &me_bundle.encode_to_vec(),
    );
    let published = |b: &pb::KeyBundle, i: u64| pb::PublishedBundle {
        bundle: Some(b.clone()),
        published_at: None,
        log_index: i,
        active: true,
        ..Default::default()
    };
    let keys_response = pb::GetKeysResponse {
        active: vec![published(&sender_bundle, 1)],
        history: vec![published(&revoked_bundle, 2)],
        crls: vec![crl.clone()],
        next_page_token: String::new(),
    };
    write(
        &seeds,
        "bundle_verify",
        "with-crl",
        &keys_response.encode_to_vec(),
    );
    let plain = pb::GetKeysResponse {
        active: vec![published(&me_bundle, 3)],
        ..Default::default()
    };
    write(&seeds, "bundle_verify", "no-crl", &plain.encode_to_vec());
    let crls = pb::GetKeysResponse {
        crls: vec![older_crl.clone(), crl.clone(), foreign_crl.clone()],
        ..Default::default()
    };
    write(&seeds, "crls", "three", &crls.encode_to_vec());
    write(
        &seeds,
        "crls",
        "one",
        &pb::GetKeysResponse {
            crls: vec![crl.clone()],
            ..Default::default()
        }
        .encode_to_vec(),
    );

    // Messages: every outbox example form, read by the daemon's reader, sealed from the sender
    // to the receiving device.
    let forms = root.join("../client/forms/outbox");
    let mut entries: Vec<_> = std::fs::read_dir(&forms)
        .expect("forms")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    let mut first: Option<pb::Envelope> = None;
    for e in entries {
        let path = e.path();
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).expect("form");
        write(&seeds, "form", &format!("{name}.toml"), text.as_bytes());
        let (header, payload) = form::read_envelope_form(&text, false).expect("example form");
        // The same form as JSON (the daemon's other format).
        let mut value: serde_json::Value = toml_to_json(&text);
        if let Some(o) = value.as_object_mut() {
            o.entry("envelope").or_insert(serde_json::Value::Null);
        }
        write(
            &seeds,
            "form",
            &format!("{name}.json"),
            serde_json::to_string_pretty(&value)
                .expect("json")
                .as_bytes(),
        );
        // Sender and receiving principal as the form says; both use the deterministic devices.
        let mut draft = header.draft(*uuid::Uuid::now_v7().as_bytes(), payload);
        let from: Principal = if header
            .to
            .iter()
            .any(|p| p.to_string().starts_with("centre/"))
        {
            "assistance/nas".parse().expect("p")
        } else {
            sender.clone()
        };
        draft.recipients = header.to.clone();
        let envelope = match seal::seal(&draft, &from, sender_keys, &[me_keys.age_recipient()]) {
            Ok(e) => e,
            Err(err) => {
                eprintln!("{name}: not sealed ({err}); form seed only");
                continue;
            }
        };
        write(&seeds, "relay_envelope", &name, &envelope.encode_to_vec());
        let delivered = pb::DeliveredEnvelope {
            envelope: Some(envelope.clone()),
            sender: from.to_string(),
            ..Default::default()
        };
        write(&seeds, "open_delivered", &name, &delivered.encode_to_vec());
        // What the sender signed: the open_signed target signs and seals it again itself.
        let plaintext =
            seal::decrypt(me_keys.age_identity(), &envelope.ciphertext).expect("decrypt");
        let sealed = pb::payload::SealedMessage::decode(plaintext.as_slice()).expect("sealed");
        let mut signed =
            pb::payload::SignedPayload::decode(sealed.signed_payload.as_slice()).expect("signed");
        signed.padding.clear();
        write(&seeds, "open_signed", &name, &signed.encode_to_vec());
        first.get_or_insert(envelope);
    }
    let envelope = first.expect("at least one sealed form");

    // Acknowledgements and rejections.
    let ack = pb::AckRequest {
        device_id: String::new(),
        target: Some(pb::ack_request::Target::Acknowledge(pb::Acknowledgement {
            message_id: envelope.message_id.clone(),
            ciphertext_sha256: envelope.ciphertext_sha256.clone(),
            signature: seal::sign_ack(me_keys, &envelope.message_id, &envelope.ciphertext_sha256)
                .to_vec(),
            signer_key: DEVICE.into(),
        })),
    };
    write(&seeds, "relay_ack", "acknowledge", &ack.encode_to_vec());
    let reject = pb::AckRequest {
        device_id: String::new(),
        target: Some(pb::ack_request::Target::Reject(pb::Rejection {
            message_id: envelope.message_id.clone(),
            reason: pb::RejectionReason::MalformedPayload.into(),
            detail: "consent: date is required".into(),
        })),
    };
    write(&seeds, "relay_ack", "reject", &reject.encode_to_vec());
    let status = pb::AckRequest {
        device_id: String::new(),
        target: Some(pb::ack_request::Target::StatusSeq(42)),
    };
    write(&seeds, "relay_ack", "status", &status.encode_to_vec());

    // Audit queries.
    let query = pb::QueryRequest {
        filter: Some(pb::QueryFilter {
            principal: SENDER.into(),
            case_ref: envelope.case_ref.clone(),
            message_id: envelope.message_id.clone(),
            kinds: vec![pb::MessageKind::Referral.into()],
            types: vec![
                pb::EventType::Accepted.into(),
                pb::EventType::Acknowledged.into(),
            ],
            from: Some(prost_types::Timestamp {
                seconds: now.unix_timestamp() - 86400,
                nanos: 0,
            }),
            until: Some(prost_types::Timestamp {
                seconds: now.unix_timestamp(),
                nanos: 0,
            }),
        }),
        page_size: 50,
        page_token: "17".into(),
        purpose: "case 2026/114: supervisor's check".into(),
        purpose_code: pb::PurposeCode::Supervision.into(),
    };
    write(&seeds, "relay_query", "full", &query.encode_to_vec());
    write(
        &seeds,
        "relay_query",
        "minimal",
        &pb::QueryRequest {
            purpose_code: pb::PurposeCode::Supervision.into(),
            ..Default::default()
        }
        .encode_to_vec(),
    );

    // The delivery log: the message's events (accepted, delivered, acknowledged with the
    // receiving device's signature) after some unrelated ones.
    let t = |s: i64| {
        Some(prost_types::Timestamp {
            seconds: now.unix_timestamp() + s,
            nanos: 0,
        })
    };
    let mut events = Vec::new();
    for i in 0..5u64 {
        events.push(pb::Event {
            index: i,
            r#type: pb::EventType::KeyPublished.into(),
            time: t(-100),
            actor: SENDER.into(),
            detail: format!("device d{i} key x"),
            ..Default::default()
        });
    }
    let base = pb::Event {
        message_id: envelope.message_id.clone(),
        case_ref: envelope.case_ref.clone(),
        kind: envelope.kind,
        sender: SENDER.into(),
        recipients: vec![ME.into()],
        ciphertext_sha256: envelope.ciphertext_sha256.clone(),
        ..Default::default()
    };
    for (ty, actor, dt) in [
        (pb::EventType::Accepted, SENDER, 1),
        (pb::EventType::Delivered, ME, 2),
        (pb::EventType::Acknowledged, ME, 3),
    ] {
        let mut e = base.clone();
        e.index = events.len() as u64;
        e.r#type = ty.into();
        e.actor = actor.into();
        e.time = t(dt);
        if ty == pb::EventType::Acknowledged {
            e.ack_signature =
                seal::sign_ack(me_keys, &envelope.message_id, &envelope.ciphertext_sha256).to_vec();
            e.ack_device = DEVICE.into();
            e.detail = format!("device {DEVICE}");
        }
        events.push(e);
    }
    let leaves: Vec<Vec<u8>> = events.iter().map(|e| e.encode_to_vec()).collect();
    let mut tree = tlog::MemoryTree::default();
    for l in &leaves {
        tree.push(tlog::leaf_hash(l));
    }
    let size = tree.len();
    let key = silta_fuzz::log_key();
    for s in [1, 5, size] {
        let cp = tlog::Checkpoint {
            origin: LOG_ORIGIN.into(),
            size: s,
            root: tree.root(s),
        };
        write(
            &seeds,
            "checkpoint",
            &format!("size-{s}"),
            tlog::sign_checkpoint(&cp, &key).as_bytes(),
        );
    }
    write(
        &seeds,
        "checkpoint",
        "verifier-key",
        silta_fuzz::log_verifier().as_bytes(),
    );
    // Proofs, in the proofs target's framing.
    for (i, s) in [(0u64, 1u64), (3, 8), (7, 8), (4, 6)] {
        let proof = tlog::inclusion_proof(&tree, i, s).expect("proof");
        let input = silta_fuzz::ProofInput {
            consistency: false,
            a: i,
            b: s,
            h1: tree.leaf(i).expect("leaf"),
            h2: tree.root(s),
            proof,
        };
        write(
            &seeds,
            "proofs",
            &format!("inclusion-{i}-{s}"),
            &input.encode(),
        );
    }
    for (o, n) in [(1u64, 8u64), (3, 7), (4, 8), (6, 6)] {
        let proof = tlog::consistency_proof(&tree, o, n).expect("proof");
        let input = silta_fuzz::ProofInput {
            consistency: true,
            a: o,
            b: n,
            h1: tree.root(o),
            h2: tree.root(n),
            proof,
        };
        write(
            &seeds,
            "proofs",
            &format!("consistency-{o}-{n}"),
            &input.encode(),
        );
    }
    // Evidence about the message, with the receiving device's bundle and the CRL (version 2).
    let b64 = base64::engine::general_purpose::STANDARD;
    let cp = tlog::Checkpoint {
        origin: LOG_ORIGIN.into(),
        size,
        root: tree.root(size),
    };
    let entries: Vec<EvidenceEntry> = (5..size)
        .map(|i| EvidenceEntry {
            index: i,
            leaf: b64.encode(&leaves[i as usize]),
            proof: tlog::inclusion_proof(&tree, i, size)
                .expect("proof")
                .iter()
                .map(|h| b64.encode(h))
                .collect(),
        })
        .collect();
    let message_id = uuid::Uuid::from_slice(&envelope.message_id)
        .expect("uuid")
        .to_string();
    let evidence = Evidence {
        version: 2,
        message_id: message_id.clone(),
        checkpoint: tlog::sign_checkpoint(&cp, &key),
        entries: entries.clone(),
        keys: vec![b64.encode(me_bundle.encode_to_vec())],
        crls: vec![b64.encode(&crl)],
    };
    let proven = silta_client::audit::check_evidence(
        &serde_json::to_string(&evidence).expect("json"),
        silta_fuzz::log_verifier(),
        None,
        Some(ca.cert_pem().as_bytes()),
    );
    eprintln!(
        "evidence seed checks: {}",
        if proven.is_ok() {
            "ok".to_owned()
        } else {
            format!("{proven:?}")
        }
    );
    write(
        &seeds,
        "evidence",
        "acknowledged",
        serde_json::to_string_pretty(&evidence)
            .expect("json")
            .as_bytes(),
    );
    let v1 = Evidence {
        version: 1,
        entries: entries[..2].to_vec(),
        keys: Vec::new(),
        crls: Vec::new(),
        ..evidence
    };
    write(
        &seeds,
        "evidence",
        "accepted-delivered",
        serde_json::to_string_pretty(&v1).expect("json").as_bytes(),
    );
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
        .expect("CRL PEM")
        .to_vec()
}

fn toml_to_json(text: &str) -> serde_json::Value {
    silta_client::payload::parse_form_text(text, false).expect("form")
}

fn write(seeds: &Path, target: &str, name: &str, data: &[u8]) {
    let dir = seeds.join(target);
    std::fs::create_dir_all(&dir).expect("seed dir");
    std::fs::write(dir.join(name), data).expect("seed");
}

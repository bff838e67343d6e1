//! `silta demo --handover`: the operator handover of README's runbook, played on the demo's
//! relay and development PKI (its CA in the demo folder issues and revokes, as `silta-certs`
//! would; the relay reloads the CRL). Act 1: the same centre id passes to a new operator (devices
//! retired, certificate revoked, the pending message re-sent to the new keys). Act 2: a centre
//! closes and a new centre id takes over (disabled, revoked, the case transferred, the old
//! centre refused). Ends with the handover's trail from the delivery log (metadata only).

use std::{path::Path, time::Duration};

use serde_json::{Value, json};
use silta_certs::{
    Principal,
    store::{CaDir, RevokeTarget},
};
use silta_client::{
    ClientConfig,
    access::AccessLog,
    admin::AdminClient,
    audit::{Purpose, fetch_events},
    client::Client,
    inbox::{self, Reader},
    keys::DeviceKeys,
    outbox::{Disclosure, Key, Outbox},
    payload::{kind_name, read_form_value},
    resend::{Original, resend},
    seal::Draft,
};
use silta_proto::pb::{self, MessageKind};

use super::{fail, step};
use crate::Failure;

/// An installation of the handover: its configuration, client, access log.
struct Party {
    config: ClientConfig,
    client: Client,
    log: AccessLog,
    who: String,
}

impl Party {
    fn reader(&self) -> Reader<'_> {
        Reader {
            log: &self.log,
            who: &self.who,
            principal: self.who.as_str(),
            purpose: "handover demo",
        }
    }
}

/// The CA of the demo's development PKI and where the handover's installations live.
struct Pki {
    ca: CaDir,
    dir: std::path::PathBuf,
    port: u16,
    log_key: String,
}

impl Pki {
    /// Issues a certificate for `principal` and writes a client configuration for it in
    /// `<dir>/<name>/` (as `silta-certs issue` and `silta init` would).
    fn enrol(&mut self, principal: &str, name: &str) -> Result<(ClientConfig, String), Failure> {
        let folder = self.dir.join(name);
        let p: Principal = principal
            .parse()
            .map_err(|e: silta_certs::identity::IdentityError| fail("principal")(e.to_string()))?;
        let written = self
            .ca
            .issue_client(&p, 30, &folder)
            .map_err(|e| fail("issue")(e.to_string()))?;
        let cfg = folder.join("silta.toml");
        let text = format!(
            "relay = \"localhost:{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nstate_dir = \"state\"\n",
            self.port,
            self.ca.ca_cert_path().display(),
            written.cert_path.display(),
            written.key_path.display(),
        );
        std::fs::write(&cfg, text).map_err(|e| fail("configuration")(e.to_string()))?;
        let mut c = ClientConfig::load(&cfg)?;
        c.log_key = Some(self.log_key.clone());
        Ok((c, written.serial))
    }

    /// An installation with device keys `device`, published.
    async fn party(
        &mut self,
        principal: &str,
        name: &str,
        device: &str,
    ) -> Result<(Party, String), Failure> {
        let (config, serial) = self.enrol(principal, name)?;
        DeviceKeys::init(&config.key_dir(), device)
            .map_err(silta_client::client::ClientError::from)?;
        let client = Client::start(&config).await?;
        client.publish_keys().await?;
        let log = AccessLog::in_state_dir(&config.state_dir);
        Ok((
            Party {
                config,
                client,
                log,
                who: principal.to_owned(),
            },
            serial,
        ))
    }

    /// Revokes `serial` and waits (bounded) until the relay refuses `config`'s certificate.
    async fn revoke(&mut self, serial: &str, config: &ClientConfig) -> Result<(), Failure> {
        self.ca
            .revoke(&RevokeTarget::Serial(serial.to_owned()))
            .map_err(|e| fail("revoke")(e.to_string()))?;
        for _ in 0..100 {
            // Refused at the handshake as revoked (a disabled principal is refused later, by
            // the health check: that is not the CRL yet).
            if let Err(silta_client::client::ClientError::Connect(
                silta_client::ConnectError::CertificateRejected { .. },
            )) = config.connect().await
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(Failure::failed("demo: the relay did not reload the CRL"))
    }
}

/// What `silta send` does: seal, disclose, send, keep a copy.
async fn send(
    from: &Party,
    kind: MessageKind,
    case: [u8; 16],
    to: &str,
    body: Value,
) -> Result<String, Failure> {
    let payload = read_form_value(kind, body).map_err(|e| fail("form")(e.to_string()))?;
    let recipient = to
        .parse()
        .map_err(|e: silta_certs::identity::IdentityError| fail("recipient")(e.to_string()))?;
    let mut draft = Draft::new(kind, case, vec![recipient], payload);
    draft.legal_basis = silta_proto::policy::default_basis(kind);
    let outbox = Outbox::open(from.client.state(), from.log.clone())?;
    let disclosure = Disclosure {
        who: from.who.clone(),
        purpose: silta_client::payload::send_purpose(kind).to_owned(),
        keep_copy: true,
    };
    outbox
        .submit(
            &from.client,
            &draft,
            &Key::MessageId(draft.message_id),
            &disclosure,
        )
        .await?;
    Ok(uuid::Uuid::from_bytes(draft.message_id).to_string())
}

fn referral(account: &str) -> Value {
    json!({
        "account": account,
        "person": {"name": "A. Person (demo)", "age_group": "AGE_GROUP_ADULT"},
        "consent": {"person_name": "A. Person (demo)", "date": "2026-11-20", "informed_about": ["services"]},
    })
}

fn proposal() -> Value {
    json!({
        "slots": [{"start": "2026-12-09T10:00:00Z", "duration_minutes": 90}],
        "place": "Assistance System office, Helsinki", "client_attends": true,
        "safety_precautions": "do not meet at the centre",
    })
}

/// The state and reason of `recipient`'s copy of `id`, after NAS's inbox synced.
async fn copy_state(nas: &Party, id: &str, recipient: &str) -> Result<String, Failure> {
    inbox::sync(&nas.client, Duration::from_millis(500), &nas.reader()).await?;
    let r = inbox::find(nas.client.state(), id).map_err(fail("inbox"))?;
    Ok(r.recipients
        .as_ref()
        .and_then(|m| m.get(recipient))
        .map(|s| format!("{} ({})", s.state, s.reason))
        .unwrap_or_else(|| "no status yet".into()))
}

/// The refusal `party` gets now, in a line (or that it was not refused).
fn refused(r: Result<impl Sized, Failure>) -> String {
    match r {
        Ok(_) => "NOT refused".into(),
        Err(f) => f.message,
    }
}

pub(super) async fn play(dir: &Path) -> Result<(), Failure> {
    let relay = super::start_relay(dir, 1).await?;
    let port = relay.addr.port();
    let pki_dir = dir.join("relay").join("dev-pki");
    let mut pki = Pki {
        ca: CaDir::open(&pki_dir.join("ca")).map_err(|e| fail("CA")(e.to_string()))?,
        dir: dir.join("handover"),
        port,
        log_key: relay.log_key.clone(),
    };
    let (nas, _) = pki.party("assistance/nas", "nas", "nas-desk-1").await?;
    let (admin_cfg, _) = pki.enrol("admin/ops", "admin")?;
    let admin = AdminClient::connect(&admin_cfg).await?;
    let start = log_size(&mut pki).await?;

    println!("\nAct 1: centre/joutseno changes operator (same centre id)");
    println!("-------------------------------------------------------");
    let (old, old_serial) = pki
        .party("centre/joutseno", "joutseno-old", "desk-1")
        .await?;
    let mut k = [0u8; 16];
    getrandom::fill(&mut k).map_err(|e| fail("case")(e.to_string()))?;
    let r = send(
        &old,
        MessageKind::Referral,
        k,
        "assistance/nas",
        referral("met at the centre"),
    )
    .await?;
    super::receive(&nas.client, &nas.reader(), &r).await?;
    let pending = send(
        &nas,
        MessageKind::MeetingProposal,
        k,
        "centre/joutseno",
        proposal(),
    )
    .await?;
    step(
        1,
        &format!(
            "case {}: the old operator referred; NAS proposed a meeting ({}) the old operator never acknowledges",
            hex::encode(k),
            pending
        ),
    );
    let r = admin
        .retire_devices("centre/joutseno", &[], "operator handover")
        .await?;
    step(
        2,
        &format!(
            "admin: silta admin retire-devices centre/joutseno --reason \"operator handover\": retired {:?}, {} message(s) undeliverable",
            r.retired, r.undeliverable
        ),
    );
    step(
        3,
        &format!(
            "NAS's inbox: the copy for centre/joutseno is {}",
            copy_state(&nas, &pending, "centre/joutseno").await?
        ),
    );
    pki.revoke(&old_serial, &old.config).await?;
    drop(old);
    let old_cfg = ClientConfig::load(&pki.dir.join("joutseno-old/silta.toml"))?;
    step(
        4,
        &format!(
            "CA: the old certificate revoked, the relay reloaded the CRL; the old operator now gets: {}",
            refused(Client::start(&old_cfg).await.map_err(Failure::from))
        ),
    );
    let (new, _) = pki
        .party("centre/joutseno", "joutseno-new", "desk-1")
        .await?;
    step(
        5,
        &format!(
            "the new operator enrolled (new certificate) and published device desk-1 (fingerprint {})",
            new.client.keys().fingerprint()
        ),
    );
    let record = inbox::find(nas.client.state(), &pending).map_err(fail("inbox"))?;
    let original = Original::from_record(&record)?;
    let outbox = Outbox::open(nas.client.state(), nas.log.clone())?;
    let resent = resend(
        &nas.client,
        &outbox,
        &original,
        &Disclosure {
            who: nas.who.clone(),
            purpose: "re-sending to the new operator".into(),
            keep_copy: true,
        },
    )
    .await?;
    let resent_id = uuid::Uuid::from_bytes(resent.sent.message_id).to_string();
    step(
        6,
        &format!(
            "NAS: silta resend {}: re-sealed to the new keys as {}",
            pending, resent_id
        ),
    );
    let got = super::receive(&new.client, &new.reader(), &resent_id).await?;
    let same = got.payload["meeting_proposal"] == original_payload(&nas, &pending)?;
    step(
        7,
        &format!(
            "the new operator opened {} ({}, the same content: {same})",
            resent_id, got.kind
        ),
    );
    let r = send(
        &new,
        MessageKind::Referral,
        k,
        "assistance/nas",
        referral("the new operator's follow-up"),
    )
    .await?;
    step(
        8,
        &format!("the new operator writes in the case: {} accepted", r),
    );

    println!("\nAct 2: centre/kotka closes, centre/kotka-2 takes over (new centre id)");
    println!("---------------------------------------------------------------------");
    let (kotka, kotka_serial) = pki.party("centre/kotka", "kotka", "desk-1").await?;
    let mut k2 = [0u8; 16];
    getrandom::fill(&mut k2).map_err(|e| fail("case")(e.to_string()))?;
    let r = send(
        &kotka,
        MessageKind::Referral,
        k2,
        "assistance/nas",
        referral("met in Kotka"),
    )
    .await?;
    super::receive(&nas.client, &nas.reader(), &r).await?;
    let pending2 = send(
        &nas,
        MessageKind::MeetingProposal,
        k2,
        "centre/kotka",
        proposal(),
    )
    .await?;
    step(
        9,
        &format!(
            "case {}: centre/kotka referred; NAS proposed a meeting ({}), not yet fetched",
            hex::encode(k2),
            pending2
        ),
    );
    admin
        .disable("centre/kotka", "operator contract ended")
        .await?;
    step(
        10,
        &format!(
            "admin: silta admin disable centre/kotka: NAS's copy is {}",
            copy_state(&nas, &pending2, "centre/kotka").await?
        ),
    );
    pki.revoke(&kotka_serial, &kotka.config).await?;
    step(
        11,
        "CA: centre/kotka's certificate revoked, the relay reloaded the CRL",
    );
    let (kotka2, _) = pki.party("centre/kotka-2", "kotka-2", "desk-1").await?;
    step(
        12,
        "the new operator enrolled as centre/kotka-2 and published its keys",
    );
    let mut form = silta_client::payload::parse_form_text(
        include_str!("../../../client/forms/case-transfer.toml"),
        false,
    )
    .map_err(|e| fail("form")(e.to_string()))?;
    form["receiving_centre"] = json!("centre/kotka-2");
    let t = send(&nas, MessageKind::CaseTransfer, k2, "centre/kotka-2", form).await?;
    super::receive(&kotka2.client, &kotka2.reader(), &t).await?;
    step(
        13,
        &format!(
            "NAS: silta send --kind case-transfer --to centre/kotka-2: the case moved ({})",
            t
        ),
    );
    let r = send(
        &kotka2,
        MessageKind::Referral,
        k2,
        "assistance/nas",
        referral("taken over from Kotka"),
    )
    .await?;
    step(
        14,
        &format!("centre/kotka-2 writes in the case: {} accepted", r),
    );
    drop(kotka);
    let kotka_cfg = ClientConfig::load(&pki.dir.join("kotka/silta.toml"))?;
    step(
        15,
        &format!(
            "centre/kotka (revoked, disabled) tries to: {}",
            refused(Client::start(&kotka_cfg).await.map_err(Failure::from))
        ),
    );
    admin
        .enable("centre/kotka", "closing down, reads its mail")
        .await?;
    let (second, _) = pki.party("centre/kotka", "kotka-second", "desk-2").await?;
    let refusal = refused(
        send(
            &second,
            MessageKind::Referral,
            k2,
            "assistance/nas",
            referral("still here"),
        )
        .await,
    );
    step(
        16,
        &format!(
            "re-enabled, with a second valid certificate, centre/kotka writes in the moved case: {refusal}"
        ),
    );

    trail(&pki, start).await?;
    drop((nas, new, kotka2, second, admin));
    relay.stop().await?;
    println!("\nhandover demo complete: every step above is an event in the delivery log.");
    Ok(())
}

/// The payload NAS kept of its sent message `id` (its own copy).
fn original_payload(nas: &Party, id: &str) -> Result<Value, Failure> {
    let r = inbox::find(nas.client.state(), id).map_err(fail("inbox"))?;
    Ok(r.payload["meeting_proposal"].clone())
}

/// The log's size before the handover (the trail starts there).
async fn log_size(pki: &mut Pki) -> Result<u64, Failure> {
    let (auditor, _) = pki.enrol("auditor/handover", "auditor")?;
    let conn = auditor.connect().await?;
    let events = fetch_events(
        &mut conn.audit(),
        pb::QueryFilter::default(),
        &Purpose::new(pb::PurposeCode::Supervision),
    )
    .await?;
    Ok(events.last().map_or(0, |e| e.index + 1))
}

/// The auditor's view of the handover: the events that record it, metadata only.
async fn trail(pki: &Pki, from: u64) -> Result<(), Failure> {
    use pb::EventType as T;
    let auditor = ClientConfig::load(&pki.dir.join("auditor/silta.toml"))?;
    let conn = auditor.connect().await?;
    let types = [
        T::AdminCall,
        T::KeyRevoked,
        T::PrincipalDisabled,
        T::PrincipalEnabled,
        T::Undeliverable,
        T::KeyPublished,
        T::Accepted,
        T::CaseMoved,
        T::SendRefused,
    ];
    let filter = pb::QueryFilter {
        types: types.iter().map(|t| i32::from(*t)).collect(),
        ..Default::default()
    };
    let events = fetch_events(
        &mut conn.audit(),
        filter,
        &Purpose::new(pb::PurposeCode::Supervision),
    )
    .await?;
    println!("\nThe handover's trail in the delivery log (auditor, metadata only)");
    println!("------------------------------------------------------------------");
    for e in events.iter().filter(|e| e.index >= from) {
        let mut what = match T::try_from(e.r#type).unwrap_or_default() {
            T::Accepted => format!(
                "{} {} -> {}{}",
                kind_name(MessageKind::try_from(e.kind).unwrap_or_default()),
                crate::audit_cmd::message_id(e),
                e.recipients.join(","),
                if e.resend_of.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (re-sends {})",
                        uuid::Uuid::from_slice(&e.resend_of)
                            .map(|u| u.to_string())
                            .unwrap_or_default()
                    )
                }
            ),
            T::Undeliverable => format!(
                "{} to {}: {}",
                crate::audit_cmd::message_id(e),
                e.recipients.join(","),
                silta_client::record::undeliverable_reason_name(e.undeliverable_reason)
            ),
            T::CaseMoved | T::SendRefused => {
                format!(
                    "case {}: {} {}",
                    hex::encode(&e.case_ref),
                    e.recipients.join(","),
                    e.detail
                )
            }
            _ => format!("{} {}", e.recipients.join(","), e.detail),
        };
        what.truncate(110);
        println!(
            "  #{:<4} {:<18} {:<16} {}",
            e.index,
            crate::audit_cmd::event_type(e),
            e.actor,
            what
        );
    }
    Ok(())
}

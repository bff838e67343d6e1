//! `silta demo`: a whole case on the embedded default, in a temporary folder.
//!
//! A relay (development PKI, 127.0.0.1, a free port), the centre daemon with its folders, the
//! Assistance System's inbox and an auditor, all real: real TLS, real sled, real age and
//! signatures. The centre speaks only through its outbox/inbox folders, as a case-management
//! system would; the Assistance System uses the inbox library the `silta inbox` commands use.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{Value, json};
use silta_client::{
    ClientConfig,
    access::{AccessLog, Action},
    audit::{Purpose, fetch_events},
    client::Client,
    daemon::Daemon,
    inbox::{self, Reader},
    keys::DeviceKeys,
    outbox::{Disclosure, Key, Outbox},
    payload::{kind_name, read_form_value},
    record::MessageRecord,
    seal::Draft,
};
use silta_proto::pb::{self, LegalBasis, MessageKind, Urgency};

use crate::Failure;

mod handover;

const NAS_USER: &str = "aino.nas-caseworker";
const NAS_PURPOSE: &str = "assessing the referral and planning assistance";
/// The centre the person moves to.
const NEW_CENTRE: &str = "centre/demo-centre-2";

fn fail(what: &str) -> impl Fn(String) -> Failure + '_ {
    move |e| Failure::failed(format!("demo: {what}: {e}"))
}

pub(crate) async fn run(keep: Option<PathBuf>, handover: bool) -> Result<(), Failure> {
    let tmp;
    let dir = match keep {
        Some(d) => {
            if d.exists() && std::fs::read_dir(&d).is_ok_and(|mut r| r.next().is_some()) {
                return Err(Failure::usage(format!(
                    "--keep {}: the folder is not empty; give a new or empty one",
                    d.display()
                )));
            }
            std::fs::create_dir_all(&d)
                .map_err(|e| Failure::usage(format!("{}: {e}", d.display())))?;
            d
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("silta-demo-")
                .tempdir()
                .map_err(|e| Failure::failed(format!("temporary folder: {e}")))?;
            tmp.path().to_owned()
        }
    };
    let result = if handover {
        handover::play(&dir).await
    } else {
        play(&dir).await
    };
    if result.is_ok() {
        println!(
            "\nEverything above ran for real in {} (TLS 1.3 with client certificates, sled, age, Ed25519).",
            dir.display()
        );
    }
    result
}

/// The embedded relay, on a free loopback port, and how to stop it.
struct DemoRelay {
    addr: std::net::SocketAddr,
    log_key: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), silta_relay::StartError>>,
}

/// The relay, on the embedded default (development PKI), on a free loopback port; it reloads
/// its CA, CRL and certificate files every `reload_s` seconds.
async fn start_relay(dir: &Path, reload_s: u64) -> Result<DemoRelay, Failure> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| fail("listen")(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| fail("listen")(e.to_string()))?;
    let mut rc = silta_relay::config::Config::development();
    rc.server.listen = addr;
    rc.storage.data_dir = dir.join("relay");
    rc.tls.reload_interval_s = reload_s;
    let relay = silta_relay::Relay::open(rc).map_err(|e| fail("relay")(e.to_string()))?;
    let log_key = relay.log_verifier_key();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(relay.serve(listener, async move {
        let _ = stopped.await;
    }));
    step(
        0,
        &format!(
            "relay listening on {addr} (development PKI in {})",
            dir.join("relay/dev-pki").display()
        ),
    );
    Ok(DemoRelay {
        addr,
        log_key,
        stop,
        task,
    })
}

impl DemoRelay {
    async fn stop(self) -> Result<(), Failure> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| fail("relay")(e.to_string()))?
            .map_err(|e| fail("relay")(e.to_string()))
    }
}

/// The three participants' configurations (centre, Assistance System, auditor), from the
/// development PKI, each checking receipts against the log key.
fn configs(
    dir: &Path,
    log_key: &str,
) -> Result<(ClientConfig, ClientConfig, ClientConfig), Failure> {
    let pki = dir.join("relay").join("dev-pki");
    let load = |stem: &str| -> Result<ClientConfig, Failure> {
        let mut c = ClientConfig::load(&pki.join(format!("{stem}.toml")))?;
        c.log_key = Some(log_key.to_owned());
        Ok(c)
    };
    let mut centre = load("centre-demo-centre")?;
    centre.daemon.folder = dir.join("centre-folders");
    centre.daemon.scan_interval_ms = 100;
    centre.daemon.retry_initial_ms = 200;
    centre.daemon.retry_max_ms = 2000;
    centre.daemon.settle_ms = 100; // forms are moved in whole (rename), as they should be
    Ok((centre, load("assistance-nas")?, load("auditor-auditor")?))
}

/// Set-up: device keys, published (what `silta init` does).
async fn publish_keys(centre: &ClientConfig, nas: &ClientConfig) -> Result<(), Failure> {
    for (c, device) in [(centre, "centre-server"), (nas, "nas-desk-1")] {
        DeviceKeys::init(&c.key_dir(), device).map_err(silta_client::client::ClientError::from)?;
        let client = Client::start(c).await?;
        client.publish_keys().await?;
        step(
            0,
            &format!(
                "{} published the keys of device {device} (fingerprint {})",
                client.principal(),
                client.keys().fingerprint()
            ),
        );
    }
    Ok(())
}

/// The centre daemon, with its folders, running until told to stop.
struct DemoDaemon {
    folders: silta_client::daemon::Folders,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), silta_client::daemon::DaemonError>>,
}

fn start_daemon(centre: &ClientConfig) -> Result<DemoDaemon, Failure> {
    let daemon = Daemon::open(centre).map_err(|e| fail("daemon")(e.to_string()))?;
    let folders = daemon.folders().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        daemon
            .run(async move {
                let _ = stopped.await;
            })
            .await
    });
    step(
        0,
        &format!("centre daemon running: outbox {}", folders.outbox.display()),
    );
    Ok(DemoDaemon {
        folders,
        stop,
        task,
    })
}

impl DemoDaemon {
    async fn stop(self) -> Result<(), Failure> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| fail("daemon")(e.to_string()))?
            .map_err(|e| fail("daemon")(e.to_string()))
    }
}

async fn play(dir: &Path) -> Result<(), Failure> {
    let relay = start_relay(dir, 30).await?;
    let (centre, nas, auditor) = configs(dir, &relay.log_key)?;
    publish_keys(&centre, &nas).await?;
    let new_centre = second_centre(dir, &relay).await?;
    let daemon = start_daemon(&centre)?;

    let nas_client = Client::start(&nas).await?;
    let nas_me = nas_client.principal().to_string();
    let nas_log = AccessLog::in_state_dir(&nas.state_dir);
    let reader = Reader {
        log: &nas_log,
        who: NAS_USER,
        principal: &nas_me,
        purpose: NAS_PURPOSE,
    };

    println!("\nThe case");
    println!("--------");
    let story = Story {
        nas: &nas_client,
        log: &nas_log,
        reader: &reader,
        folders: &daemon.folders,
        centre: silta_certs::dev::DEV_CENTRE,
    };
    let (unlinked, referral_id) = story.consult_and_refer().await?;
    let case = story.inform_and_decide(&referral_id).await?;
    story.meet(case).await?;
    story.assess_and_agree(case).await?;
    story.transfer_and_exit(case, &new_centre).await?;
    story.all_acknowledged().await?;
    daemon.stop().await?;

    let thread = print_thread(&nas_client, &reader, case)?;
    audit(dir, &auditor, &relay.log_key, case, &unlinked).await?;
    print_access_report(&nas_log, case, &thread)?;

    drop(nas_client);
    drop(new_centre);
    relay.stop().await?;
    println!(
        "\ndemo complete: the anonymous consultation and its reply (unlinked), and {} messages in the case thread to the exit notice, every one acknowledged; delivery log verified.",
        thread.len()
    );
    Ok(())
}

/// The second centre the case moves to: a certificate from the demo CA, device keys
/// published; it reads with the inbox library.
struct NewCentre {
    client: Client,
    log: AccessLog,
    principal: String,
}

async fn second_centre(dir: &Path, relay: &DemoRelay) -> Result<NewCentre, Failure> {
    let pki = dir.join("relay").join("dev-pki");
    let mut ca =
        silta_certs::store::CaDir::open(&pki.join("ca")).map_err(|e| fail("CA")(e.to_string()))?;
    let principal: silta_certs::Principal = NEW_CENTRE
        .parse()
        .map_err(|e: silta_certs::identity::IdentityError| fail("principal")(e.to_string()))?;
    let folder = dir.join("new-centre");
    let written = ca
        .issue_client(&principal, 30, &folder)
        .map_err(|e| fail("issue")(e.to_string()))?;
    let cfg = folder.join("silta.toml");
    let text = format!(
        "relay = \"localhost:{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nstate_dir = \"state\"\n",
        relay.addr.port(),
        ca.ca_cert_path().display(),
        written.cert_path.display(),
        written.key_path.display(),
    );
    std::fs::write(&cfg, text).map_err(|e| fail("configuration")(e.to_string()))?;
    let mut config = ClientConfig::load(&cfg)?;
    config.log_key = Some(relay.log_key.clone());
    DeviceKeys::init(&config.key_dir(), "new-centre-server")
        .map_err(silta_client::client::ClientError::from)?;
    let client = Client::start(&config).await?;
    client.publish_keys().await?;
    step(
        0,
        &format!(
            "{NEW_CENTRE} (the centre the person will move to) published its keys (fingerprint {})",
            client.keys().fingerprint()
        ),
    );
    Ok(NewCentre {
        client,
        log: AccessLog::in_state_dir(&config.state_dir),
        principal: NEW_CENTRE.to_owned(),
    })
}

/// The consultation and its reply: their ids, to show they stay apart from the case.
struct Unlinked {
    consultation: String,
    reply: String,
}

/// Today (UTC) and `days` later, as `YYYY-MM-DD`.
fn day(days: i64) -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A message id (UUID text) as base64, as ids go in a form.
fn id_b64(id: &str) -> String {
    use base64::Engine as _;
    let bytes = uuid::Uuid::parse_str(id)
        .map(|u| *u.as_bytes())
        .unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The case between the centre (through its daemon's folders) and the Assistance System
/// (through the inbox library).
struct Story<'a> {
    nas: &'a Client,
    log: &'a AccessLog,
    reader: &'a Reader<'a>,
    folders: &'a silta_client::daemon::Folders,
    centre: &'static str,
}

impl Story<'_> {
    /// Steps 1-3: the anonymous consultation and the advice (no case reference: the
    /// consultation stays unlinked), then the referral with consent, as a first contact (no
    /// case reference, not in reply to the consultation). Returns the consultation's and the
    /// reply's ids and the referral's id.
    async fn consult_and_refer(&self) -> Result<(Unlinked, String), Failure> {
        let (nas_client, nas_log, reader, folders) =
            (self.nas, self.log, self.reader, self.folders);
        // 1. Anonymous consultation, from the centre's case-management system into the outbox.
        let consultation = format!(
            "{}\n[envelope]\nkind = \"anonymous-consultation\"\nto = \"assistance/nas\"\n",
            include_str!("../../client/forms/anonymous-consultation.toml")
        );
        drop_form(&folders.outbox, "01-consultation.toml", &consultation)?;
        let consultation_id = wait_sent(&folders.sent, "01-consultation.toml").await?;
        step(
            1,
            "the centre asks the Assistance System anonymously whether the indicators justify a referral (no identifying data)",
        );
        let c = receive(nas_client, reader, &consultation_id).await?;

        // 2. The Assistance System answers; no case reference, so nothing ties the consultation
        //    to the person's case.
        ack(nas_client, &c).await?;
        let reply_id = nas_send(nas_client, nas_log, MessageKind::ConsultationReply, [0; 16], &[self.centre], Some(&consultation_id), Urgency::Urgent, LegalBasis::NoPersonalData, json!({
            "advice": "The indicators justify a referral. Call the hotline today and send the written referral with the person's consent.",
            "proceed_to_referral": true, "urgent": true, "interpreter_language": "ar",
        })).await?;
        step(
            2,
            "the Assistance System advises a referral (no case reference: the consultation stays unlinked to the case)",
        );
        wait_inbox(&folders.inbox, "consultation-reply").await?;

        // 3. Referral with consent: a first contact, in reply to nothing and without a case.
        let referral = format!(
            "{}\n[envelope]\nkind = \"referral\"\nto = \"assistance/nas\"\ncase = \"none\"\nurgency = \"urgent\"\n",
            include_str!("../../client/forms/referral.toml"),
        );
        drop_form(&folders.outbox, "02-referral.toml", &referral)?;
        let referral_id = wait_sent(&folders.sent, "02-referral.toml").await?;
        step(
            3,
            "the centre refers the person, with the consent record (written together with the person; not linked to the consultation)",
        );
        let r = receive(nas_client, reader, &referral_id).await?;
        ack(nas_client, &r).await?;
        Ok((
            Unlinked {
                consultation: consultation_id,
                reply: reply_id,
            },
            referral_id,
        ))
    }

    /// Steps 4-6: the case reference issued with the information request that answers the
    /// referral, the centre's answer, the admission decision. Returns the case.
    async fn inform_and_decide(&self, referral_id: &str) -> Result<[u8; 16], Failure> {
        let (nas_client, nas_log, reader, folders) =
            (self.nas, self.log, self.reader, self.folders);
        // 4. The case reference, issued now, and the information request that carries it.
        let mut case = [0u8; 16];
        getrandom::fill(&mut case).map_err(|e| fail("case")(e.to_string()))?;
        let case_hex = hex::encode(case);
        nas_client.state().put_case(
            &case,
            &json!({
                "case": case_hex, "label": "demo",
                "issued_at": silta_client::times::now_rfc3339(), "issued_by": NAS_USER,
            }),
        )?;
        let req = nas_send(nas_client, nas_log, MessageKind::InformationRequest, case, &[self.centre], Some(referral_id), Urgency::Urgent, LegalBasis::StatutoryInformationRight, json!({
            "items": ["current accommodation arrangements", "has the person seen a doctor"],
            "legal_basis_note": "the Assistance System's statutory right to information for the admission decision",
            "deadline": day(4),
        })).await?;
        step(
            4,
            &format!(
                "the Assistance System issues case reference {case_hex} with its first answer to the referral: two questions (statutory information right)"
            ),
        );
        wait_inbox(&folders.inbox, "information-request").await?;
        let response = format!(
            "[[answers]]\nitem = \"current accommodation arrangements\"\nanswer = \"Moved to a room away from the employer's contacts.\"\n\n[[answers]]\nitem = \"has the person seen a doctor\"\nnot_held = true\n\n[envelope]\nkind = \"information-response\"\nto = \"assistance/nas\"\ncase = \"{case_hex}\"\nurgency = \"urgent\"\nlegal_basis = \"statutory-information-right\"\nin_reply_to = \"{req}\"\n"
        );
        drop_form(&folders.outbox, "03-information-response.toml", &response)?;
        let response_id = wait_sent(&folders.sent, "03-information-response.toml").await?;
        step(5, "the centre answers item by item (one item: not held)");
        let r = receive(nas_client, reader, &response_id).await?;
        ack(nas_client, &r).await?;

        // 6. Admission decision notice: yes/no and dates only, dated the day it is sent.
        nas_send(
            nas_client,
            nas_log,
            MessageKind::AdmissionDecisionNotice,
            case,
            &[self.centre],
            Some(referral_id),
            Urgency::Urgent,
            LegalBasis::StatutoryInformationRight,
            json!({
                "outcome": "ADMISSION_OUTCOME_ADMITTED", "decision_date": day(0),
                "contact": {"role": "caseworker", "name": "Aino", "phone": "+358 00 000 0001"},
            }),
        )
        .await?;
        step(
            6,
            "the Assistance System tells the centre: admitted (yes/no only; the reasons go to the person)",
        );
        wait_inbox(&folders.inbox, "admission-decision-notice").await?;
        Ok(case)
    }

    /// Steps 7-9: the meeting proposal, the centre's answer, the confirmation.
    async fn meet(&self, case: [u8; 16]) -> Result<(), Failure> {
        let (nas_client, nas_log, reader, folders) =
            (self.nas, self.log, self.reader, self.folders);
        let case_hex = hex::encode(case);
        let (first, second) = (day(9), day(10));
        let proposal = nas_send(nas_client, nas_log, MessageKind::MeetingProposal, case, &[self.centre], None, Urgency::Normal, LegalBasis::Consent, json!({
            "slots": [{"start": format!("{first}T10:00:00Z"), "duration_minutes": 90}, {"start": format!("{second}T13:00:00Z"), "duration_minutes": 90}],
            "place": "Assistance System office, Helsinki", "client_attends": true,
            "interpreter_language": "ar", "safety_precautions": "do not meet at the centre",
        })).await?;
        step(
            7,
            "the Assistance System proposes two slots for the joint meeting (not at the centre)",
        );
        wait_inbox(&folders.inbox, "meeting-proposal").await?;
        let meeting_reply = format!(
            "answer = \"MEETING_ANSWER_ACCEPT\"\nnote = \"The person prefers the morning slot.\"\n\n[accepted_slot]\nstart = \"{first}T10:00:00Z\"\nduration_minutes = 90\n\n[envelope]\nkind = \"meeting-reply\"\nto = \"assistance/nas\"\ncase = \"{case_hex}\"\nin_reply_to = \"{proposal}\"\n"
        );
        drop_form(&folders.outbox, "04-meeting-reply.toml", &meeting_reply)?;
        let meeting_reply_id = wait_sent(&folders.sent, "04-meeting-reply.toml").await?;
        step(8, "the centre accepts the first slot");
        let r = receive(nas_client, reader, &meeting_reply_id).await?;
        ack(nas_client, &r).await?;
        nas_send(
            nas_client,
            nas_log,
            MessageKind::MeetingConfirmation,
            case,
            &[self.centre],
            Some(&meeting_reply_id),
            Urgency::Normal,
            LegalBasis::Consent,
            json!({
                "slot": {"start": format!("{first}T10:00:00Z"), "duration_minutes": 90},
                "place": "Assistance System office, Helsinki", "client_attends": true,
                "interpreter_language": "ar", "safety_precautions": "do not meet at the centre",
            }),
        )
        .await?;
        step(9, "the Assistance System confirms the meeting");
        wait_inbox(&folders.inbox, "meeting-confirmation").await?;
        Ok(())
    }

    /// Steps 10-14: the joint assessment's shared parts; the service agreement: version 1, the
    /// centre's counter-draft (version 2), version 2 agreed and accepted.
    async fn assess_and_agree(&self, case: [u8; 16]) -> Result<(), Failure> {
        let (nas_client, nas_log, reader, folders) =
            (self.nas, self.log, self.reader, self.folders);
        let case_hex = hex::encode(case);
        nas_send(nas_client, nas_log, MessageKind::JointAssessmentRecord, case, &[self.centre], None, Urgency::Normal, LegalBasis::Consent, json!({
            "meeting_date": day(9),
            "participants": [{"role": "caseworker"}, {"role": "centre social worker"}],
            "overall_situation": "Stable accommodation; fears contact from the former employer.",
            "security_threat": "THREAT_LEVEL_MODERATE",
            "safety_measures": "No visitors without checking with staff; a safety plan with the centre.",
            "criminal_case": "CRIMINAL_CASE_STATUS_NONE",
            "support_person": "SUPPORT_PERSON_NEED_YES",
            "client_view": "Wants legal advice and work that is paid.",
            "shared_parts_note": "The client agreed to share these parts with the centre.",
        })).await?;
        step(
            10,
            "the joint assessment's shared parts go to the centre (threat, criminal case, support person, the person's own view)",
        );
        wait_inbox(&folders.inbox, "joint-assessment-record").await?;
        let v1 = nas_send(nas_client, nas_log, MessageKind::ServiceAgreement, case, &[self.centre], None, Urgency::Normal, LegalBasis::Consent, json!({
            "version": 1, "status": "AGREEMENT_STATUS_DRAFT", "review_date": "2027-03-01",
            "items": [
                {"service": "accommodation and safety", "responsible": "RESPONSIBLE_PARTY_CENTRE", "contact_role": "centre social worker"},
                {"service": "legal aid", "responsible": "RESPONSIBLE_PARTY_ASSISTANCE_SYSTEM", "contact_role": "caseworker"},
            ],
            "procedures": "Weekly call; in a crisis the centre calls the 24/7 hotline first.",
        })).await?;
        step(
            11,
            "the service agreement, version 1 (draft): the centre keeps the person safe, the Assistance System arranges legal aid",
        );
        wait_inbox(&folders.inbox, "service-agreement").await?;
        // 12. The centre's counter-draft: version 2, superseding version 1.
        let counter = format!(
            "version = 1\nagreement = \"{v1b}\"\nanswer = \"AGREEMENT_ANSWER_COUNTER_DRAFT\"\nnote = \"A support person is needed too.\"\n\n[counter_draft]\nversion = 2\nstatus = \"AGREEMENT_STATUS_DRAFT\"\nsupersedes = \"{v1b}\"\nreview_date = \"2027-03-01\"\nprocedures = \"Weekly call; in a crisis the centre calls the 24/7 hotline first.\"\n\n[[counter_draft.items]]\nservice = \"accommodation and safety\"\nresponsible = \"RESPONSIBLE_PARTY_CENTRE\"\ncontact_role = \"centre social worker\"\n\n[[counter_draft.items]]\nservice = \"legal aid\"\nresponsible = \"RESPONSIBLE_PARTY_ASSISTANCE_SYSTEM\"\ncontact_role = \"caseworker\"\n\n[[counter_draft.items]]\nservice = \"support person\"\nresponsible = \"RESPONSIBLE_PARTY_ASSISTANCE_SYSTEM\"\ncontact_role = \"caseworker\"\n\n[envelope]\nkind = \"service-agreement-answer\"\nto = \"assistance/nas\"\ncase = \"{case_hex}\"\nin_reply_to = \"{v1}\"\n",
            v1b = id_b64(&v1)
        );
        drop_form(&folders.outbox, "05-agreement-counter-draft.toml", &counter)?;
        let counter_id = wait_sent(&folders.sent, "05-agreement-counter-draft.toml").await?;
        step(
            12,
            "the centre answers version 1 with a counter-draft (version 2: a support person too)",
        );
        let r = receive(nas_client, reader, &counter_id).await?;
        ack(nas_client, &r).await?;
        // 13. Version 2 agreed, superseding the counter-draft it adopts.
        let v2 = nas_send(nas_client, nas_log, MessageKind::ServiceAgreement, case, &[self.centre], Some(&counter_id), Urgency::Normal, LegalBasis::Consent, json!({
            "version": 2, "status": "AGREEMENT_STATUS_AGREED", "review_date": "2027-03-01",
            "supersedes": id_b64(&counter_id),
            "items": [
                {"service": "accommodation and safety", "responsible": "RESPONSIBLE_PARTY_CENTRE", "contact_role": "centre social worker"},
                {"service": "legal aid", "responsible": "RESPONSIBLE_PARTY_ASSISTANCE_SYSTEM", "contact_role": "caseworker"},
                {"service": "support person", "responsible": "RESPONSIBLE_PARTY_ASSISTANCE_SYSTEM", "contact_role": "caseworker"},
            ],
            "procedures": "Weekly call; in a crisis the centre calls the 24/7 hotline first.",
        })).await?;
        step(
            13,
            "the Assistance System agrees version 2 (superseding the centre's counter-draft)",
        );
        wait_inbox_id(&folders.inbox, &v2).await?;
        let accept = format!(
            "version = 2\nagreement = \"{}\"\nanswer = \"AGREEMENT_ANSWER_ACCEPT\"\n\n[envelope]\nkind = \"service-agreement-answer\"\nto = \"assistance/nas\"\ncase = \"{case_hex}\"\nin_reply_to = \"{v2}\"\n",
            id_b64(&v2)
        );
        drop_form(&folders.outbox, "06-agreement-accept.toml", &accept)?;
        let accept_id = wait_sent(&folders.sent, "06-agreement-accept.toml").await?;
        step(14, "the centre accepts version 2");
        let r = receive(nas_client, reader, &accept_id).await?;
        ack(nas_client, &r).await?;
        Ok(())
    }

    /// Steps 15-17: the centre's status update (the person is moving), the case transferred to
    /// the new centre, the exit notice to the new centre.
    async fn transfer_and_exit(&self, case: [u8; 16], new: &NewCentre) -> Result<(), Failure> {
        let (nas_client, nas_log, reader, folders) =
            (self.nas, self.log, self.reader, self.folders);
        let case_hex = hex::encode(case);
        let update = format!(
            "change = \"CHANGE_KIND_CLIENT_MOVING\"\ndescription = \"The person moves to another centre's area next week.\"\n\n[envelope]\nkind = \"status-update\"\nto = \"assistance/nas\"\ncase = \"{case_hex}\"\n"
        );
        drop_form(&folders.outbox, "07-status-update.toml", &update)?;
        let update_id = wait_sent(&folders.sent, "07-status-update.toml").await?;
        step(
            15,
            "the centre tells the Assistance System the person is moving (status update)",
        );
        let r = receive(nas_client, reader, &update_id).await?;
        ack(nas_client, &r).await?;
        nas_send(nas_client, nas_log, MessageKind::CaseTransfer, case, &[self.centre, &new.principal], Some(&update_id), Urgency::Normal, LegalBasis::Consent, json!({
            "effective_date": day(7), "receiving_centre": new.principal,
            "handover": "The service agreement's centre items; the safety plan.",
            "client_informed": true, "client_consented": true, "old_centre_access_revoked": true,
        })).await?;
        step(
            16,
            &format!(
                "the Assistance System transfers the case to {} (the old centre's access ends)",
                new.principal
            ),
        );
        wait_inbox(&folders.inbox, "case-transfer").await?;
        let exit = nas_send(nas_client, nas_log, MessageKind::ExitNotice, case, &[&new.principal], None, Urgency::Normal, LegalBasis::Consent, json!({
            "reason": "EXIT_REASON_LEFT_VOLUNTARILY", "effective_date": day(30),
            "centre_actions": ["end the Assistance System's services in the centre's plan", "keep basic reception services"],
        })).await?;
        step(
            17,
            "the client relationship ends: the exit notice goes to the new centre (reason and date only)",
        );
        let new_me = new.client.principal().to_string();
        let new_reader = Reader {
            log: &new.log,
            who: "centre2.social-worker",
            principal: &new_me,
            purpose: "taking over the person's case",
        };
        for id in [&exit] {
            let r = receive(&new.client, &new_reader, id).await?;
            ack(&new.client, &r).await?;
        }
        // The transfer too (it arrived before the exit notice).
        for r in inbox::list(new.client.state(), true)? {
            ack(&new.client, &r).await?;
        }
        Ok(())
    }

    /// Every centre message acknowledged by a person at the Assistance System, and the centre's
    /// sent/ folder says so; the Assistance System's messages acknowledged by the centre daemon
    /// after storing each.
    async fn all_acknowledged(&self) -> Result<(), Failure> {
        for name in CENTRE_FORMS {
            wait_state(&self.folders.sent, name, "acknowledged").await?;
        }
        inbox::sync(self.nas, Duration::from_millis(500), self.reader).await?;
        Ok(())
    }
}

/// The forms the centre's case-management system drops into the outbox, in order.
const CENTRE_FORMS: [&str; 7] = [
    "01-consultation.toml",
    "02-referral.toml",
    "03-information-response.toml",
    "04-meeting-reply.toml",
    "05-agreement-counter-draft.toml",
    "06-agreement-accept.toml",
    "07-status-update.toml",
];

/// The thread, as the Assistance System sees it (its reading recorded in the access log).
fn print_thread(
    nas_client: &Client,
    reader: &Reader<'_>,
    case: [u8; 16],
) -> Result<Vec<MessageRecord>, Failure> {
    println!(
        "\nThe thread of case {} at the Assistance System",
        hex::encode(case)
    );
    println!("------------------------------------------------------------------------");
    let thread = inbox::thread(nas_client.state(), &case)?;
    reader
        .record(
            Action::Thread,
            &case,
            &thread.iter().map(inbox::id_bytes).collect::<Vec<_>>(),
        )
        .map_err(|e| fail("access log")(e.to_string()))?;
    for r in &thread {
        let state = match (&r.recipients, r.state) {
            (Some(m), _) if !r.is_received() => m
                .values()
                .next()
                .map_or("sent", |v| v.state.as_str())
                .to_owned(),
            (_, Some(state)) => state.as_str().to_owned(),
            _ => String::new(),
        };
        println!(
            "  #{:<4} {:<28} {:<22} -> {:<22} {}",
            r.log_index,
            r.kind,
            r.from,
            r.to.first().map(String::as_str).unwrap_or_default(),
            state
        );
    }
    Ok(thread)
}

/// The auditor: verifies the whole log, then prints the case's trail and the summary report.
async fn audit(
    dir: &Path,
    auditor: &ClientConfig,
    log_key: &str,
    case: [u8; 16],
    unlinked: &Unlinked,
) -> Result<(), Failure> {
    println!("\nThe auditor");
    println!("-----------");
    let conn = auditor.connect().await?;
    let mut audit = conn.audit();
    let trust = crate::audit_cmd::trust_store(auditor)?;
    let mut directory = conn.directory();
    let v = silta_client::audit::verify(
        &mut audit,
        &auditor.state_dir.join("audit"),
        log_key,
        &Purpose::new(pb::PurposeCode::LogVerification),
        Some(silta_client::audit::AckCheck {
            directory: &mut directory,
            trust: &trust,
        }),
    )
    .await
    .map_err(|e| Failure {
        code: 2,
        message: format!("DELIVERY LOG VERIFICATION FAILED: {e}"),
        hint: None,
    })?;
    if let Some((index, why)) = v.bad_acks.first() {
        return Err(Failure {
            code: 2,
            message: format!("ACKNOWLEDGEMENT NOT PROVEN at index {index}: {why}"),
            hint: None,
        });
    }
    println!(
        "  delivery log verified: {} entries, root {}, signed by {}",
        v.size,
        hex::encode(v.root),
        log_key.split('+').next().unwrap_or_default()
    );
    print_trail(&mut audit, case).await?;
    check_unlinked(&mut audit, case, unlinked).await?;
    let all = fetch_events(
        &mut audit,
        pb::QueryFilter::default(),
        &Purpose::new(pb::PurposeCode::Reporting),
    )
    .await?;
    let report = silta_client::report::summarize(&all, None);
    println!("\n  summary report:");
    for line in silta_client::report::render_table(&report).lines() {
        println!("  {line}");
    }
    let svg = dir.join("report.svg");
    std::fs::write(
        &svg,
        silta_client::report::to_svg(&report, "silta demo: acceptance to acknowledgement"),
    )
    .map_err(|e| fail("plot")(e.to_string()))?;
    println!("  plot: {}", svg.display());
    Ok(())
}

/// The case's audit trail: metadata only.
async fn print_trail(
    audit: &mut pb::audit_log_client::AuditLogClient<tonic::transport::Channel>,
    case: [u8; 16],
) -> Result<(), Failure> {
    let filter = pb::QueryFilter {
        case_ref: case.to_vec(),
        ..Default::default()
    };
    let events = fetch_events(audit, filter, &Purpose::new(pb::PurposeCode::Supervision)).await?;
    println!(
        "  audit trail of case {} (metadata only: the relay never saw the content):",
        hex::encode(case)
    );
    for e in &events {
        println!(
            "    #{:<4} {:<13} {:<27} {:<20} {}",
            e.index,
            crate::audit_cmd::event_type(e),
            kind_name(MessageKind::try_from(e.kind).unwrap_or_default()),
            e.actor,
            crate::audit_cmd::message_id(e)
        );
    }
    Ok(())
}

/// What the relay knows cannot tie the anonymous consultation to the case: the consultation's
/// and its reply's events carry no case reference, and none of the case's events names them.
/// (`in_reply_to` is envelope metadata the relay stores with each message, in clear: so no
/// message but the consultation's own reply answers them; the client refuses any other.)
async fn check_unlinked(
    audit: &mut pb::audit_log_client::AuditLogClient<tonic::transport::Channel>,
    case: [u8; 16],
    unlinked: &Unlinked,
) -> Result<(), Failure> {
    let purpose = Purpose::new(pb::PurposeCode::Supervision);
    let case_events = fetch_events(
        audit,
        pb::QueryFilter {
            case_ref: case.to_vec(),
            ..Default::default()
        },
        &purpose,
    )
    .await?;
    for (what, id) in [
        ("consultation", &unlinked.consultation),
        ("consultation reply", &unlinked.reply),
    ] {
        let bytes = uuid::Uuid::parse_str(id)
            .map_err(|e| fail("id")(e.to_string()))?
            .as_bytes()
            .to_vec();
        let events = fetch_events(
            audit,
            pb::QueryFilter {
                message_id: bytes.clone(),
                ..Default::default()
            },
            &purpose,
        )
        .await?;
        let cased = events.iter().any(|e| e.case_ref.iter().any(|b| *b != 0));
        let in_case = case_events.iter().any(|e| e.message_id == bytes);
        if events.is_empty() || cased || in_case {
            return Err(Failure::failed(format!(
                "demo: the {what} {id} is tied to the case in the delivery log"
            )));
        }
        println!(
            "  the {what} {id}: {} events, case reference none, not in the case's trail (unlinked)",
            events.len()
        );
    }
    Ok(())
}

/// The access log: who opened the case's messages, and why (`silta inbox access-report`).
fn print_access_report(
    nas_log: &AccessLog,
    case: [u8; 16],
    thread: &[MessageRecord],
) -> Result<(), Failure> {
    let thread_ids = inbox::thread_ids(thread);
    println!(
        "\nAccess report of case {} at the Assistance System (silta inbox access-report)",
        hex::encode(case)
    );
    for e in nas_log
        .for_case(&case, &thread_ids)
        .map_err(|e| fail("access log")(e.to_string()))?
    {
        println!(
            "  {}  {:<20} {:<9} {} message(s)  purpose: {}",
            e.time,
            e.who,
            e.action.as_str(),
            e.messages.len(),
            e.purpose
        );
    }
    Ok(())
}

fn step(n: usize, text: &str) {
    if n == 0 {
        println!("  setup: {text}");
    } else {
        println!("{n:>3}. {text}");
    }
}

/// What a case-management system does: write the form elsewhere, then move it into the outbox.
fn drop_form(outbox: &Path, name: &str, text: &str) -> Result<(), Failure> {
    let tmp = outbox.join(format!(".{name}.part"));
    std::fs::write(&tmp, text).map_err(|e| fail("outbox")(e.to_string()))?;
    std::fs::rename(&tmp, outbox.join(name)).map_err(|e| fail("outbox")(e.to_string()))
}

async fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T, Failure> {
    for _ in 0..600 {
        if let Some(v) = f() {
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Failure::failed(format!(
        "demo: timed out waiting for {what}"
    )))
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Waits until the daemon has sent `name`; returns its message id.
async fn wait_sent(sent: &Path, name: &str) -> Result<String, Failure> {
    let path = sent.join(format!("{name}.status.json"));
    let error = sent.with_file_name("failed").join(format!("{name}.error"));
    let status = poll(&format!("{name} to be sent"), || {
        if let Ok(e) = std::fs::read_to_string(&error) {
            return Some(Err(e));
        }
        read_json(&path).map(Ok)
    })
    .await?
    .map_err(|e| Failure::failed(format!("demo: the daemon did not send {name}: {e}")))?;
    Ok(status["message_id"].as_str().unwrap_or_default().to_owned())
}

async fn wait_state(sent: &Path, name: &str, state: &str) -> Result<(), Failure> {
    let path = sent.join(format!("{name}.status.json"));
    poll(&format!("{name} to be {state}"), || {
        read_json(&path).filter(|s| s["state"] == state)
    })
    .await?;
    Ok(())
}

/// Waits until message `id` is in the centre's inbox folder.
async fn wait_inbox_id(inbox: &Path, id: &str) -> Result<Value, Failure> {
    let prefix = format!("{id}-");
    poll(&format!("message {id} in the centre's inbox"), || {
        std::fs::read_dir(inbox)
            .ok()?
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .and_then(|e| read_json(&e.path()))
    })
    .await
}

/// Waits until a message of `kind` is in the centre's inbox folder.
async fn wait_inbox(inbox: &Path, kind: &str) -> Result<Value, Failure> {
    let suffix = format!("-{kind}.json");
    poll(&format!("a {kind} in the centre's inbox"), || {
        std::fs::read_dir(inbox)
            .ok()?
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().ends_with(&suffix))
            .and_then(|e| read_json(&e.path()))
    })
    .await
}

/// The inbox fetches until message `id` is kept (the library logs each opening as `reader`);
/// the caseworker opens it (access logged before it is shown).
async fn receive(client: &Client, reader: &Reader<'_>, id: &str) -> Result<MessageRecord, Failure> {
    for _ in 0..50 {
        inbox::sync(client, Duration::from_millis(300), reader).await?;
        if let Ok(r) = inbox::find(client.state(), id) {
            reader
                .record(
                    Action::Shown,
                    &inbox::case_bytes(&r),
                    &[inbox::id_bytes(&r)],
                )
                .map_err(|e| fail("access log")(e.to_string()))?;
            return Ok(r);
        }
    }
    Err(Failure::failed(format!(
        "demo: message {id} did not arrive at the inbox"
    )))
}

async fn ack(client: &Client, record: &MessageRecord) -> Result<(), Failure> {
    inbox::acknowledge(client, record, NAS_USER)
        .await
        .map_err(fail("acknowledge"))?;
    Ok(())
}

/// What the reply commands do: seal, send, keep a copy, log the disclosure.
#[allow(clippy::too_many_arguments)]
async fn nas_send(
    client: &Client,
    log: &AccessLog,
    kind: MessageKind,
    case: [u8; 16],
    to: &[&str],
    in_reply_to: Option<&str>,
    urgency: Urgency,
    legal_basis: LegalBasis,
    body: Value,
) -> Result<String, Failure> {
    let payload = read_form_value(kind, body).map_err(|e| fail("form")(e.to_string()))?;
    let recipients = to
        .iter()
        .map(|r| r.parse())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e: silta_certs::identity::IdentityError| fail("recipient")(e.to_string()))?;
    let mut draft = Draft::new(kind, case, recipients, payload);
    draft.urgency = urgency;
    draft.legal_basis = legal_basis;
    draft.in_reply_to = in_reply_to
        .map(silta_client::form::parse_message_id)
        .transpose()
        .map_err(|e| fail("reply")(e.to_string()))?;
    // The one send path: the disclosure is logged before the message leaves, then the copy kept.
    let outbox = Outbox::open(client.state(), log.clone())?;
    let disclosure = Disclosure {
        who: NAS_USER.to_owned(),
        // What the caseworker sends it for, not the kind's name.
        purpose: silta_client::payload::send_purpose(kind).to_owned(),
        keep_copy: true,
    };
    let sent = outbox
        .submit(
            client,
            &draft,
            &Key::MessageId(draft.message_id),
            &disclosure,
        )
        .await?;
    if !sent.problems.is_empty() {
        return Err(fail("sent, but")(sent.problems.join("; ")));
    }
    Ok(uuid::Uuid::from_bytes(draft.message_id).to_string())
}

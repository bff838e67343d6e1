//! `silta`: the client program. Thin: parse, load configuration, call the library, print.
//!
//! Exit codes: see [`cli::EXIT_CODES`] (printed by `silta --help`).

mod cli;
mod compose;
#[cfg(feature = "demo")]
mod demo;
mod failure;
mod inbox_cmd;
mod init;
mod receive_cmd;

use std::process::ExitCode;

use clap::Parser as _;
use silta_client::{
    ClientConfig,
    client::{Client, ClientError},
    form::{parse_case, parse_legal_basis, parse_urgency},
    keys::DeviceKeys,
    payload::{kind_name, parse_kind, read_form},
    seal::Draft,
};
use silta_proto::pb;

use cli::{AuditCommand, Cli, Command, KeysCommand};
use silta_client::fsutil::write_atomic;

pub(crate) use failure::{EX_DATAERR, EX_NOPERM, EX_USAGE, Failure};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            if let Some(h) = f.hint {
                eprintln!("hint: {h}");
            }
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    // Checking evidence is offline: no configuration, no relay.
    if let Command::Audit {
        command:
            AuditCommand::CheckEvidence {
                file,
                log_key,
                message_id,
                ca,
            },
    } = &cli.command
    {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
        // The CA: --ca, else the configuration's if there is one (it is not needed otherwise).
        let ca_path = ca
            .clone()
            .or_else(|| ClientConfig::load(&cli.config).ok().map(|c| c.ca.clone()));
        let ca_pem = match &ca_path {
            Some(p) => Some(
                std::fs::read(p)
                    .map_err(|e| Failure::usage(format!("--ca {}: {e}", p.display())))?,
            ),
            None => None,
        };
        let proven = silta_client::audit::check_evidence(
            &text,
            log_key,
            message_id.as_deref(),
            ca_pem.as_deref(),
        )
        .map_err(|e| match e {
            silta_client::audit::EvidenceError::NeedCa => Failure {
                code: EX_USAGE,
                message: format!("{e}: give the CA certificate with --ca CA.pem"),
                hint: Some("the CA that issued the participants' certificates (ca/ca.pem)".into()),
            },
            e => Failure {
                code: 1,
                message: format!("evidence does NOT hold: {e}"),
                hint: None,
            },
        })?;
        println!(
            "evidence holds: {} event(s) included in a checkpoint signed by the log key",
            proven.events.len()
        );
        for e in &proven.events {
            println!("  {}", event_line(e));
            if let Some((_, key)) = proven.acks.iter().find(|(i, _)| *i == e.index) {
                println!(
                    "    acknowledgement signed by {} device {} (key {}, verified against the CA)",
                    key.principal, key.device_id, key.fingerprint
                );
            }
        }
        return Ok(());
    }
    // Set-up writes the configuration; the demo makes its own.
    if let Command::Init { .. } = &cli.command {
        return init::run(&cli.config, cli.command).await;
    }
    if let Command::Demo { keep } = &cli.command {
        #[cfg(feature = "demo")]
        return demo::run(keep.clone()).await;
        #[cfg(not(feature = "demo"))]
        {
            let _ = keep;
            return Err(Failure::usage(
                "this silta was built without the demo (cargo feature `demo`)",
            ));
        }
    }
    let config = ClientConfig::load(&cli.config).map_err(|e| Failure {
        code: EX_USAGE,
        message: e.to_string(),
        hint: Some(
            "set this installation up with `silta init --role centre|assistance|auditor ...`, or pass --config FILE (or set SILTA_CONFIG); to try Silta first, run `silta demo`".into(),
        ),
    })?;
    match cli.command {
        Command::Keys {
            command: KeysCommand::Init { device },
        } => {
            silta_client::fsutil::ensure_private_dir(&config.state_dir).map_err(Failure::failed)?;
            let keys = DeviceKeys::init(&config.key_dir(), &device).map_err(ClientError::from)?;
            println!(
                "created device keys for {device} in {}",
                config.key_dir().display()
            );
            print_keys(&keys);
            println!("next: `silta keys publish`");
        }
        Command::Keys {
            command: KeysCommand::Show,
        } => {
            let keys = DeviceKeys::load(&config.key_dir()).map_err(ClientError::from)?;
            print_keys(&keys);
        }
        Command::Keys {
            command: KeysCommand::Publish,
        } => {
            let client = Client::start(&config).await?;
            let index = client.publish_keys().await?;
            println!(
                "published keys of {} device {} (fingerprint {}), log index {index}",
                client.principal(),
                client.keys().device_id(),
                client.keys().fingerprint()
            );
        }
        Command::Keys {
            command: KeysCommand::Get { principal },
        } => {
            let principal = principal
                .parse()
                .map_err(|e| Failure::usage(format!("{principal}: {e}")))?;
            let client = Client::start(&config).await?;
            let keys = client.keys_of(&principal).await?;
            if keys.is_empty() {
                println!("{principal} has no valid published keys");
            }
            for k in keys {
                println!(
                    "{} device {:<16} fingerprint {}",
                    k.principal, k.device_id, k.fingerprint
                );
            }
            print_key_changes(&client);
        }
        Command::Send {
            kind,
            to,
            case,
            urgency,
            legal_basis,
            form,
        } => {
            let kind = parse_kind(&kind).map_err(|e| Failure::usage(e.to_string()))?;
            let recipients = to
                .iter()
                .map(|r| {
                    r.parse()
                        .map_err(|e| Failure::usage(format!("--to {r}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let case_ref = parse_case(&case).map_err(|e| Failure::usage(format!("--case: {e}")))?;
            let text = std::fs::read_to_string(&form)
                .map_err(|e| Failure::usage(format!("{}: {e}", form.display())))?;
            let json = form.extension().is_some_and(|e| e == "json");
            let payload = read_form(kind, &text, json).map_err(|e| Failure {
                code: EX_DATAERR,
                message: format!("{}: {e}", form.display()),
                hint: Some("nothing was sent; fix the form and try again".into()),
            })?;
            let mut draft = Draft::new(kind, case_ref, recipients, payload);
            draft.urgency =
                parse_urgency(&urgency).map_err(|e| Failure::usage(format!("--urgency: {e}")))?;
            draft.legal_basis = parse_legal_basis(&legal_basis)
                .map_err(|e| Failure::usage(format!("--legal-basis: {e}")))?;
            let client = Client::start(&config).await?;
            // Seal first: key changes of the recipients are shown before anything is sent.
            let envelope = client.seal(&draft).await?;
            print_key_changes(&client);
            let receipt = client.send_sealed(envelope).await?;
            println!(
                "sent {} {} to {}: accepted at log index {}",
                kind_name(kind),
                uuid::Uuid::from_bytes(draft.message_id),
                to.join(", "),
                receipt.log_index
            );
            if config.log_key.is_some() {
                println!("receipt verified: signed checkpoint and inclusion proof check out");
            }
        }
        Command::Audit { command } => {
            // Auditing needs the certificate only, no device keys.
            let connection = config.connect().await?;
            let mut audit = connection.audit();
            match command {
                AuditCommand::CheckEvidence { .. } => unreachable!("handled above"),
                AuditCommand::Verify {
                    log_key,
                    purpose,
                    state,
                    receipts,
                } => {
                    let state = state.unwrap_or_else(|| config.state_dir.join("audit"));
                    // Read before the relay is asked anything: a bad path is a usage error.
                    let (receipts, unreadable) = load_receipts(&receipts)?;
                    let trust = trust_store(&config)?;
                    let mut directory = connection.directory();
                    let acks = silta_client::audit::AckCheck {
                        directory: &mut directory,
                        trust: &trust,
                    };
                    match silta_client::audit::verify(
                        &mut audit,
                        &state,
                        &log_key,
                        &purpose,
                        Some(acks),
                    )
                    .await
                    {
                        Ok(v) => {
                            let printable = silta_client::text::printable_line;
                            let mut findings = Vec::new();
                            for (index, why) in &v.bad_acks {
                                eprintln!("index {index}: {}", printable(why));
                            }
                            if let Some((first, _)) = v.bad_acks.first() {
                                findings.push(format!(
                                    "{} of {} acknowledgement(s) do NOT verify with the recipient's key (first at index {first})",
                                    v.bad_acks.len(),
                                    v.acks_checked
                                ));
                            }
                            let bad_receipts =
                                silta_client::audit::check_receipts(&state, &log_key, &receipts)
                                    .map_err(|e| Failure::failed(e.to_string()))?;
                            for (source, why) in &bad_receipts {
                                eprintln!("receipt {}: {}", printable(source), printable(why));
                            }
                            for (source, why) in &unreadable {
                                eprintln!(
                                    "note: receipt {} cannot be checked: {}",
                                    printable(source),
                                    printable(why)
                                );
                            }
                            if !bad_receipts.is_empty() {
                                findings.push(format!(
                                    "{} of {} receipt(s) do NOT match the verified log",
                                    bad_receipts.len(),
                                    receipts.len()
                                ));
                            }
                            if !findings.is_empty() {
                                return Err(Failure {
                                    code: 2,
                                    message: format!(
                                        "the delivery log ({} entries) is intact, but {}",
                                        v.size,
                                        findings.join("; and ")
                                    ),
                                    hint: Some("keep the state folder, the receipts and the relay's data as they are, and report this".into()),
                                });
                            }
                            println!(
                                "delivery log verified: {} entries (previously {}), root {}; {} acknowledgement signature(s) verified",
                                v.size,
                                v.previous,
                                hex::encode(v.root),
                                v.acks_checked
                            );
                            if !receipts.is_empty() {
                                println!("{} receipt(s) match the verified log", receipts.len());
                            }
                        }
                        Err(silta_client::audit::AuditError::Problem(p)) => {
                            return Err(Failure { code: 2, message: format!("DELIVERY LOG VERIFICATION FAILED: {p}"), hint: Some("keep the state folder and the relay's data as they are, and report this".into()) });
                        }
                        Err(e) => {
                            return Err(Failure {
                                code: 1,
                                message: e.to_string(),
                                hint: None,
                            });
                        }
                    }
                }
                AuditCommand::Prove {
                    message_id,
                    purpose,
                    out,
                } => {
                    let id = uuid::Uuid::parse_str(&message_id)
                        .map_err(|e| Failure::usage(format!("{message_id}: {e}")))?;
                    let mut directory = connection.directory();
                    let ev = silta_client::audit::prove(
                        &mut audit,
                        &mut directory,
                        id.as_bytes(),
                        &purpose,
                    )
                    .await
                    .map_err(|e| Failure {
                        code: 1,
                        message: e.to_string(),
                        hint: None,
                    })?;
                    if ev.entries.is_empty() {
                        return Err(Failure {
                            code: 1,
                            message: format!("no events of message {id} are visible to you"),
                            hint: None,
                        });
                    }
                    let path = out
                        .unwrap_or_else(|| std::path::PathBuf::from(format!("{id}.evidence.json")));
                    let text = serde_json::to_string_pretty(&ev).map_err(|e| Failure {
                        code: 1,
                        message: e.to_string(),
                        hint: None,
                    })?;
                    write_atomic(&path, text.as_bytes()).map_err(|e| Failure {
                        code: 1,
                        message: e,
                        hint: None,
                    })?;
                    println!(
                        "wrote evidence of {} event(s) of {id} to {}",
                        ev.entries.len(),
                        path.display()
                    );
                }
                AuditCommand::Report {
                    purpose,
                    from,
                    to,
                    format,
                    plot,
                } => {
                    let span = match (&from, &to) {
                        (None, None) => None,
                        _ => Some(
                            silta_client::report::MonthSpan::new(
                                from.as_deref().unwrap_or("0000-01"),
                                to.as_deref().unwrap_or("9999-12"),
                            )
                            .map_err(|e| Failure::usage(format!("--from/--to: {e}")))?,
                        ),
                    };
                    let events =
                        fetch_events(&mut audit, pb::QueryFilter::default(), &purpose).await?;
                    let report = silta_client::report::summarize(&events, span.as_ref());
                    match format.as_str() {
                        "table" => print!("{}", silta_client::report::render_table(&report)),
                        "csv" => print!("{}", silta_client::report::to_csv(&report)),
                        "json" => println!(
                            "{}",
                            serde_json::to_string_pretty(&report).unwrap_or_default()
                        ),
                        other => {
                            return Err(Failure::usage(format!(
                                "--format {other}: use table, json or csv"
                            )));
                        }
                    }
                    if let Some(path) = plot {
                        let svg = silta_client::report::to_svg(
                            &report,
                            &format!(
                                "Silta: time from acceptance to acknowledgement ({})",
                                config.relay
                            ),
                        );
                        std::fs::write(&path, svg)
                            .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
                        eprintln!("plot written to {}", path.display());
                    }
                }
                AuditCommand::Query {
                    purpose,
                    message_id,
                    case,
                    principal,
                    format,
                } => {
                    let mut filter = pb::QueryFilter::default();
                    if let Some(m) = message_id {
                        filter.message_id = uuid::Uuid::parse_str(&m)
                            .map_err(|e| Failure::usage(format!("{m}: {e}")))?
                            .as_bytes()
                            .to_vec();
                    }
                    if let Some(c) = case {
                        filter.case_ref = parse_case(&c)
                            .map_err(|e| Failure::usage(format!("--case: {e}")))?
                            .to_vec();
                    }
                    if let Some(p) = principal {
                        filter.principal = p;
                    }
                    let events = fetch_events(&mut audit, filter, &purpose).await?;
                    print_events(&events, &format)?;
                }
            }
        }
        Command::Init { .. } | Command::Demo { .. } => unreachable!("handled above"),
        Command::Daemon => {
            let daemon = silta_client::daemon::Daemon::open(&config).map_err(|e| match e {
                silta_client::daemon::DaemonError::Client(c) => Failure::from(c),
                other => Failure::failed(other.to_string()),
            })?;
            let f = daemon.folders();
            eprintln!(
                "silta daemon: outbox {}, inbox {} (stop with Ctrl-C or SIGTERM)",
                f.outbox.display(),
                f.inbox.display()
            );
            daemon
                .run(shutdown_signal())
                .await
                .map_err(|e| Failure::failed(e.to_string()))?;
        }
        Command::Inbox { purpose, command } => {
            inbox_cmd::run(&config, purpose, command).await?;
        }
        Command::Case { command } => inbox_cmd::case(&config, command).await?,
        Command::RequestInfo {
            compose,
            items,
            deadline,
            note,
        } => {
            let fields = serde_json::json!({
                "items": items, "deadline": deadline, "legal_basis_note": note,
            });
            compose::send(
                &config,
                pb::MessageKind::InformationRequest,
                &compose,
                fields,
            )
            .await?;
        }
        Command::Decision {
            compose,
            admitted,
            date,
            recovery_period_end,
        } => {
            let outcome = admitted
                .map(|a| match a.to_ascii_lowercase().as_str() {
                    "yes" | "admitted" => Ok("ADMISSION_OUTCOME_ADMITTED"),
                    "no" | "not-admitted" => Ok("ADMISSION_OUTCOME_NOT_ADMITTED"),
                    _ => Err(Failure::usage(format!("--admitted {a}: yes or no"))),
                })
                .transpose()?;
            let fields = serde_json::json!({
                "outcome": outcome,
                "decision_date": date,
                "recovery_period_granted": recovery_period_end.is_some(),
                "recovery_period_end": recovery_period_end,
            });
            compose::send(
                &config,
                pb::MessageKind::AdmissionDecisionNotice,
                &compose,
                fields,
            )
            .await?;
        }
        Command::Meeting { command } => match command {
            cli::MeetingCommand::Propose {
                compose,
                slots,
                place,
                remote_link,
                client_attends,
                interpreter,
                safety,
            } => {
                let slots = slots
                    .iter()
                    .map(|s| compose::slot(s))
                    .collect::<Result<Vec<_>, _>>()?;
                let fields = serde_json::json!({
                    "slots": slots, "place": place, "remote_link": remote_link,
                    "client_attends": client_attends, "interpreter_language": interpreter,
                    "safety_precautions": safety,
                });
                compose::send(&config, pb::MessageKind::MeetingProposal, &compose, fields).await?;
            }
            cli::MeetingCommand::Confirm {
                compose,
                slot,
                place,
                client_attends,
                interpreter,
            } => {
                let slot = slot.map(|s| compose::slot(&s)).transpose()?;
                let fields = serde_json::json!({
                    "slot": slot, "place": place, "client_attends": client_attends,
                    "interpreter_language": interpreter,
                });
                compose::send(
                    &config,
                    pb::MessageKind::MeetingConfirmation,
                    &compose,
                    fields,
                )
                .await?;
            }
            cli::MeetingCommand::Cancel { compose, reason } => {
                let fields = serde_json::json!({ "reason": reason });
                compose::send(
                    &config,
                    pb::MessageKind::MeetingCancellation,
                    &compose,
                    fields,
                )
                .await?;
            }
            cli::MeetingCommand::Reply {
                compose,
                answer,
                slot,
                note,
            } => {
                let answer = answer
                    .map(|a| {
                        compose::enum_value(
                            "MEETING_ANSWER_",
                            "--answer",
                            &a,
                            &["accept", "decline", "counter-proposal"],
                        )
                    })
                    .transpose()?;
                let slot = slot.map(|s| compose::slot(&s)).transpose()?;
                let fields =
                    serde_json::json!({ "answer": answer, "accepted_slot": slot, "note": note });
                compose::send(&config, pb::MessageKind::MeetingReply, &compose, fields).await?;
            }
        },
        Command::Assessment {
            compose,
            meeting_date,
            overall,
            threat,
            measures,
            criminal_case,
            support_person,
            client_view,
        } => {
            let threat = threat
                .map(|t| {
                    compose::enum_value(
                        "THREAT_LEVEL_",
                        "--threat",
                        &t,
                        &["none", "low", "moderate", "high"],
                    )
                })
                .transpose()?;
            let criminal_case = criminal_case
                .map(|c| {
                    compose::enum_value(
                        "CRIMINAL_CASE_STATUS_",
                        "--criminal-case",
                        &c,
                        &["none", "report-filed", "pre-trial-investigation", "court"],
                    )
                })
                .transpose()?;
            let support_person = support_person
                .map(|s| {
                    compose::enum_value(
                        "SUPPORT_PERSON_NEED_",
                        "--support-person",
                        &s,
                        &["yes", "no", "arranged"],
                    )
                })
                .transpose()?;
            let fields = serde_json::json!({
                "meeting_date": meeting_date, "overall_situation": overall,
                "security_threat": threat, "safety_measures": measures,
                "criminal_case": criminal_case, "support_person": support_person,
                "client_view": client_view,
            });
            compose::send(
                &config,
                pb::MessageKind::JointAssessmentRecord,
                &compose,
                fields,
            )
            .await?;
        }
        Command::Agreement {
            compose,
            services,
            procedures,
            review_date,
            status,
            version,
        } => {
            let mut items = Vec::new();
            for s in &services {
                let (service, rest) = s.split_once('=').ok_or_else(|| {
                    Failure::usage(format!(
                        "--service {s}: write SERVICE=RESPONSIBLE[:CONTACT ROLE]"
                    ))
                })?;
                let (responsible, contact) = rest.split_once(':').unwrap_or((rest, ""));
                let responsible = compose::enum_value(
                    "RESPONSIBLE_PARTY_",
                    "--service",
                    responsible,
                    &["assistance-system", "centre", "municipality", "other"],
                )?;
                items.push(serde_json::json!({
                    "service": service, "responsible": responsible, "contact_role": contact,
                }));
            }
            let status = status
                .map(|s| {
                    compose::enum_value(
                        "AGREEMENT_STATUS_",
                        "--status",
                        &s,
                        &["draft", "agreed", "superseded"],
                    )
                })
                .transpose()?;
            let fields = serde_json::json!({
                "items": items, "procedures": procedures, "review_date": review_date,
                "status": status, "version": version,
            });
            compose::send(&config, pb::MessageKind::ServiceAgreement, &compose, fields).await?;
        }
        Command::Consultation {
            compose,
            indicators,
            questions,
        } => {
            let fields = serde_json::json!({ "indicators": indicators, "questions": questions });
            compose::send(
                &config,
                pb::MessageKind::AnonymousConsultation,
                &compose,
                fields,
            )
            .await?;
        }
        Command::Referral { compose } => {
            if compose.form.is_none() {
                return Err(Failure::usage(
                    "a referral is written in a form: --form referral.toml (see client/forms/referral.toml)",
                ));
            }
            compose::send(
                &config,
                pb::MessageKind::Referral,
                &compose,
                serde_json::json!({}),
            )
            .await?;
        }
        Command::InfoResponse {
            compose,
            answers,
            not_held,
        } => {
            let mut list = Vec::new();
            for a in &answers {
                let (item, answer) = a
                    .split_once('=')
                    .ok_or_else(|| Failure::usage(format!("--answer {a}: write ITEM=ANSWER")))?;
                list.push(serde_json::json!({ "item": item, "answer": answer }));
            }
            for item in &not_held {
                list.push(serde_json::json!({ "item": item, "not_held": true }));
            }
            let fields = serde_json::json!({ "answers": list });
            compose::send(
                &config,
                pb::MessageKind::InformationResponse,
                &compose,
                fields,
            )
            .await?;
        }
        Command::Receive { out, wait, purpose } => {
            receive_cmd::run(&config, out, wait, purpose).await?;
        }
    }
    Ok(())
}

/// Receipts from files or folders (in a folder: `*.status.json` and `*.receipt.json`). A file
/// holds a receipt under `"receipt"` (status files, `inbox show --json`) or is one. Returns the
/// receipts by source and, separately, those that cannot be checked (kept before receipts were
/// kept in full, or from a relay that does not flush).
#[allow(clippy::type_complexity)]
fn load_receipts(
    paths: &[std::path::PathBuf],
) -> Result<(Vec<(String, pb::Receipt)>, Vec<(String, String)>), Failure> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<_> = std::fs::read_dir(p)
                .map_err(|e| Failure::usage(format!("--receipts {}: {e}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    let name = f.to_string_lossy();
                    name.ends_with(".status.json") || name.ends_with(".receipt.json")
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    let (mut ok, mut unreadable) = (Vec::new(), Vec::new());
    for f in files {
        let source = f.display().to_string();
        let value: serde_json::Value = std::fs::read(&f)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| Failure::usage(format!("--receipts {source}: {e}")))?;
        let receipt = if value["receipt"].is_object() {
            &value["receipt"]
        } else {
            &value
        };
        match silta_client::audit::receipt_from_json(receipt) {
            Ok(r) => ok.push((source, r)),
            Err(why) => unreadable.push((source, why)),
        }
    }
    Ok((ok, unreadable))
}

/// The configured CA (and local CRLs), for the configured certificate's trust domain.
pub(crate) fn trust_store(
    config: &ClientConfig,
) -> Result<silta_client::bundle::TrustStore, Failure> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| Failure::usage(format!("{}: {e}", p.display())))
    };
    let (_, domain) = silta_client::client::own_identity(&read(&config.cert)?)?;
    let mut trust = silta_client::bundle::TrustStore::from_pem(&read(&config.ca)?, &domain)
        .map_err(|e| Failure::usage(format!("{}: {e}", config.ca.display())))?;
    for crl in &config.crls {
        trust = trust
            .with_crls_pem(&read(crl)?)
            .map_err(|e| Failure::usage(format!("{}: {e}", crl.display())))?;
    }
    Ok(trust)
}

/// Every event matching `filter`, page by page.
async fn fetch_events(
    audit: &mut silta_proto::pb::audit_log_client::AuditLogClient<tonic::transport::Channel>,
    filter: pb::QueryFilter,
    purpose: &silta_client::audit::Purpose,
) -> Result<Vec<pb::Event>, Failure> {
    let mut events = Vec::new();
    let mut token = String::new();
    loop {
        let page = audit
            .query(pb::QueryRequest {
                filter: Some(filter.clone()),
                purpose: purpose.note.clone(),
                page_size: 500,
                page_token: token,
                purpose_code: purpose.code.into(),
            })
            .await
            .map_err(ClientError::from)?
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    Ok(events)
}

/// Completes on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn print_keys(keys: &DeviceKeys) {
    println!("device:      {}", keys.device_id());
    println!("age:         {}", keys.age_recipient());
    println!(
        "ed25519:     {}",
        hex::encode(keys.verifying_key().as_bytes())
    );
    println!("fingerprint: {}", keys.fingerprint());
}

pub(crate) fn print_key_changes(client: &Client) {
    for c in client.take_key_changes() {
        eprintln!(
            "warning: the key of {} device {} CHANGED from {} to {}; it verified against the CA. Confirm the new fingerprint with them by phone.",
            c.principal, c.device, c.old, c.new
        );
    }
}

fn event_line(e: &pb::Event) -> String {
    let time = e
        .time
        .map(|t| {
            time::OffsetDateTime::from_unix_timestamp(t.seconds)
                .map(|d| d.to_string())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let line = format!(
        "#{} {} {} {} {}{}",
        e.index,
        time,
        pb::EventType::try_from(e.r#type)
            .unwrap_or_default()
            .as_str_name()
            .trim_start_matches("EVENT_TYPE_"),
        e.actor,
        uuid::Uuid::from_slice(&e.message_id)
            .map(|u| u.to_string())
            .unwrap_or_default(),
        if e.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", e.detail)
        }
    );
    // The actor and the detail come from the relay and other parties.
    silta_client::text::printable_line(&line)
}

fn print_events(events: &[pb::Event], format: &str) -> Result<(), Failure> {
    let row = |e: &pb::Event| {
        [
            e.index.to_string(),
            silta_client::client::rfc3339(e.time.as_ref()),
            pb::EventType::try_from(e.r#type)
                .unwrap_or_default()
                .as_str_name()
                .trim_start_matches("EVENT_TYPE_")
                .to_owned(),
            e.actor.clone(),
            e.sender.clone(),
            e.recipients.join(" "),
            uuid::Uuid::from_slice(&e.message_id)
                .map(|u| u.to_string())
                .unwrap_or_default(),
            hex::encode(&e.case_ref),
            kind_name(pb::MessageKind::try_from(e.kind).unwrap_or_default()),
            e.detail.clone(),
        ]
    };
    const HEAD: [&str; 10] = [
        "index",
        "time",
        "event",
        "actor",
        "sender",
        "recipients",
        "message_id",
        "case_ref",
        "kind",
        "detail",
    ];
    match format {
        "json" => {
            let rows: Vec<serde_json::Value> = events
                .iter()
                .map(|e| {
                    serde_json::Value::Object(
                        HEAD.iter()
                            .map(|h| h.to_string())
                            .zip(row(e).into_iter().map(serde_json::Value::String))
                            .collect(),
                    )
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&rows).unwrap_or_default()
            );
        }
        "csv" => {
            println!("{}", HEAD.join(","));
            for e in events {
                let cells: Vec<String> = row(e)
                    .iter()
                    .map(|c| silta_client::text::csv_quoted(c))
                    .collect();
                println!("{}", cells.join(","));
            }
        }
        "table" => {
            let rows: Vec<[String; 8]> = events
                .iter()
                .map(|e| {
                    let r = row(e);
                    let recipients = if e.recipients.is_empty() {
                        String::new()
                    } else {
                        format!("-> {}", e.recipients.join(" "))
                    };
                    [
                        r[0].clone(),
                        r[1].clone(),
                        r[2].clone(),
                        r[3].clone(),
                        r[8].clone(),
                        r[6].clone(),
                        recipients,
                        r[9].clone(),
                    ]
                })
                .collect();
            inbox_cmd::print_table(
                &[
                    "index",
                    "time (UTC)",
                    "event",
                    "actor",
                    "kind",
                    "message",
                    "to",
                    "detail",
                ],
                &rows,
            );
            println!("({} events)", events.len());
        }
        other => {
            return Err(Failure::usage(format!(
                "--format {other}: use table, json or csv"
            )));
        }
    }
    Ok(())
}

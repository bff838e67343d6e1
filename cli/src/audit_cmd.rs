//! `silta audit ...`: verify the delivery log, write and check offline evidence, the monthly
//! report and queries. Auditing needs the certificate only, no device keys.

use std::path::{Path, PathBuf};

use silta_client::{
    ClientConfig, Connection,
    audit::{self, AuditError, EvidenceError, Purpose, Verified},
    form::parse_case,
    fsutil::write_atomic,
    payload::kind_name,
    report,
    text::{csv_quoted, printable_line},
    times::rfc3339,
};
use silta_proto::pb;

use crate::{
    EX_USAGE, Failure,
    cli::{AuditCommand, Format},
    output::{print_json, print_table},
};

/// Receipts by source, and those that cannot be checked (with why).
type Receipts = (Vec<(String, pb::Receipt)>, Vec<(String, String)>);

/// `silta audit ...`. `check-evidence` is offline: it needs no configuration and no relay; the
/// others load the configuration and connect first.
pub(crate) async fn run(config_path: &Path, command: AuditCommand) -> Result<(), Failure> {
    match command {
        AuditCommand::CheckEvidence {
            file,
            log_key,
            message_id,
            ca,
        } => check_evidence(
            config_path,
            &file,
            &log_key.join("\n"),
            message_id.as_deref(),
            ca.as_ref(),
        ),
        AuditCommand::Verify {
            log_key,
            purpose,
            state,
            receipts,
        } => {
            let (config, connection) = connect(config_path).await?;
            let state = state.unwrap_or_else(|| config.state_dir.join("audit"));
            verify(
                &config,
                &connection,
                &log_key.join("\n"),
                &purpose,
                &state,
                &receipts,
            )
            .await
        }
        AuditCommand::Prove {
            message_id,
            purpose,
            out,
        } => {
            let (_, connection) = connect(config_path).await?;
            prove(&connection, &message_id, &purpose, out).await
        }
        AuditCommand::Report {
            purpose,
            from,
            to,
            format,
            plot,
        } => {
            let (config, connection) = connect(config_path).await?;
            let span = month_span(from.as_deref(), to.as_deref())?;
            let filter = pb::QueryFilter::default();
            let events = audit::fetch_events(&mut connection.audit(), filter, &purpose).await?;
            let report = report::summarize(&events, span.as_ref());
            print_report(&report, format);
            match plot {
                Some(path) => write_plot(&report, &config.relay, &path),
                None => Ok(()),
            }
        }
        AuditCommand::Query {
            purpose,
            message_id,
            case,
            principal,
            format,
        } => {
            let (_, connection) = connect(config_path).await?;
            let filter = query_filter(message_id, case, principal)?;
            let events = audit::fetch_events(&mut connection.audit(), filter, &purpose).await?;
            print_events(&events, format);
            Ok(())
        }
    }
}

/// The configuration and a connection to the relay, for the audit commands that ask it.
async fn connect(config_path: &Path) -> Result<(ClientConfig, Connection), Failure> {
    let config = crate::load_config(config_path)?;
    crate::warn_expiry(&config);
    let connection = config.connect().await?;
    Ok((config, connection))
}

/// `audit check-evidence`. The CA is `--ca`, else the configuration's if there is one (it is
/// needed only when the evidence holds acknowledgements).
fn check_evidence(
    config_path: &Path,
    file: &Path,
    log_key: &str,
    message_id: Option<&str>,
    ca: Option<&PathBuf>,
) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    let ca_path = ca
        .cloned()
        .or_else(|| ClientConfig::load(config_path).ok().map(|c| c.ca.clone()));
    let ca_pem = match &ca_path {
        Some(p) => Some(
            std::fs::read(p).map_err(|e| Failure::usage(format!("--ca {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let proven = audit::check_evidence(&text, log_key, message_id, ca_pem.as_deref()).map_err(
        |e| match e {
            EvidenceError::NeedCa => Failure {
                code: EX_USAGE,
                message: format!("{e}: give the CA certificate with --ca CA.pem"),
                hint: Some("the CA that issued the participants' certificates (ca/ca.pem)".into()),
            },
            e => Failure {
                code: 1,
                message: format!("evidence does NOT hold: {e}"),
                hint: None,
            },
        },
    )?;
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
    Ok(())
}

/// `audit verify`: the whole log, every acknowledgement's signature, and the receipts given.
async fn verify(
    config: &ClientConfig,
    connection: &Connection,
    log_key: &str,
    purpose: &Purpose,
    state: &Path,
    receipts: &[PathBuf],
) -> Result<(), Failure> {
    // Read before the relay is asked anything: a bad path is a usage error.
    let (receipts, unreadable) = load_receipts(receipts)?;
    let trust = trust_store(config)?;
    let mut directory = connection.directory();
    let acks = audit::AckCheck {
        directory: &mut directory,
        trust: &trust,
    };
    let verified = audit::verify(&mut connection.audit(), state, log_key, purpose, Some(acks))
        .await
        .map_err(|e| match e {
            AuditError::Problem(p) => Failure {
                code: 2,
                message: format!("DELIVERY LOG VERIFICATION FAILED: {p}"),
                hint: Some(
                    "keep the state folder and the relay's data as they are, and report this"
                        .into(),
                ),
            },
            e => Failure {
                code: 1,
                message: e.to_string(),
                hint: None,
            },
        })?;
    let bad_receipts = audit::check_receipts(state, log_key, &receipts)
        .map_err(|e| Failure::failed(e.to_string()))?;
    report_findings(&verified, &receipts, &bad_receipts, &unreadable)?;
    println!(
        "delivery log verified: {} entries (previously {}), root {}; {} acknowledgement signature(s) verified",
        verified.size,
        verified.previous,
        hex::encode(verified.root),
        verified.acks_checked
    );
    if !receipts.is_empty() {
        println!("{} receipt(s) match the verified log", receipts.len());
    }
    Ok(())
}

/// Prints what is wrong besides the log itself (acknowledgements, receipts) and fails with exit
/// code 2 if anything is.
fn report_findings(
    v: &Verified,
    receipts: &[(String, pb::Receipt)],
    bad_receipts: &[(String, String)],
    unreadable: &[(String, String)],
) -> Result<(), Failure> {
    let mut findings = Vec::new();
    for (index, why) in &v.bad_acks {
        eprintln!("index {index}: {}", printable_line(why));
    }
    if let Some((first, _)) = v.bad_acks.first() {
        findings.push(format!(
            "{} of {} acknowledgement(s) do NOT verify with the recipient's key (first at index {first})",
            v.bad_acks.len(),
            v.acks_checked
        ));
    }
    for (source, why) in bad_receipts {
        eprintln!(
            "receipt {}: {}",
            printable_line(source),
            printable_line(why)
        );
    }
    for (source, why) in unreadable {
        eprintln!(
            "note: receipt {} cannot be checked: {}",
            printable_line(source),
            printable_line(why)
        );
    }
    if !bad_receipts.is_empty() {
        findings.push(format!(
            "{} of {} receipt(s) do NOT match the verified log",
            bad_receipts.len(),
            receipts.len()
        ));
    }
    if findings.is_empty() {
        return Ok(());
    }
    Err(Failure {
        code: 2,
        message: format!(
            "the delivery log ({} entries) is intact, but {}",
            v.size,
            findings.join("; and ")
        ),
        hint: Some(
            "keep the state folder, the receipts and the relay's data as they are, and report this"
                .into(),
        ),
    })
}

/// `audit prove`: writes the evidence file of a message.
async fn prove(
    connection: &Connection,
    message_id: &str,
    purpose: &Purpose,
    out: Option<PathBuf>,
) -> Result<(), Failure> {
    let id = uuid::Uuid::parse_str(message_id)
        .map_err(|e| Failure::usage(format!("{message_id}: {e}")))?;
    let failed = |message: String| Failure {
        code: 1,
        message,
        hint: None,
    };
    let evidence = audit::prove(
        &mut connection.audit(),
        &mut connection.directory(),
        id.as_bytes(),
        purpose,
    )
    .await
    .map_err(|e| failed(e.to_string()))?;
    if evidence.entries.is_empty() {
        return Err(failed(format!(
            "no events of message {id} are visible to you"
        )));
    }
    let path = out.unwrap_or_else(|| PathBuf::from(format!("{id}.evidence.json")));
    let text = serde_json::to_string_pretty(&evidence).map_err(|e| failed(e.to_string()))?;
    write_atomic(&path, text.as_bytes()).map_err(failed)?;
    println!(
        "wrote evidence of {} event(s) of {id} to {}",
        evidence.entries.len(),
        path.display()
    );
    Ok(())
}

/// `--from`/`--to` of `audit report`: none for the whole log.
fn month_span(from: Option<&str>, to: Option<&str>) -> Result<Option<report::MonthSpan>, Failure> {
    if from.is_none() && to.is_none() {
        return Ok(None);
    }
    report::MonthSpan::new(from.unwrap_or("0000-01"), to.unwrap_or("9999-12"))
        .map(Some)
        .map_err(|e| Failure::usage(format!("--from/--to: {e}")))
}

fn print_report(report: &report::Report, format: Format) {
    match format {
        Format::Table => print!(
            "{}",
            report::render_table_in(report, silta_client::i18n::current())
        ),
        Format::Csv => print!("{}", report::to_csv(report)),
        Format::Json => print_json(report),
    }
}

fn write_plot(report: &report::Report, relay: &str, path: &Path) -> Result<(), Failure> {
    let svg = report::to_svg(
        report,
        &format!("Silta: time from acceptance to acknowledgement ({relay})"),
    );
    std::fs::write(path, svg).map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
    eprintln!("plot written to {}", path.display());
    Ok(())
}

/// The filter of `audit query`.
fn query_filter(
    message_id: Option<String>,
    case: Option<String>,
    principal: Option<String>,
) -> Result<pb::QueryFilter, Failure> {
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
    Ok(filter)
}

/// Receipts from files or folders (in a folder: `*.status.json` and `*.receipt.json`). A file
/// holds a receipt under `"receipt"` (status files, `inbox show --json`) or is one. Returns the
/// receipts by source and, separately, those that cannot be checked (kept before receipts were
/// kept in full, or from a relay that does not flush).
fn load_receipts(paths: &[PathBuf]) -> Result<Receipts, Failure> {
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
        match audit::receipt_from_json(receipt) {
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
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| Failure::usage(format!("{}: {e}", p.display())));
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

/// One event on one line (`check-evidence`).
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
        event_type(e),
        e.actor,
        message_id(e),
        if e.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", e.detail)
        }
    );
    // The actor and the detail come from the relay and other parties.
    printable_line(&line)
}

/// `ACCEPTED`, `DELIVERED`, ...
pub(crate) fn event_type(e: &pb::Event) -> String {
    pb::EventType::try_from(e.r#type)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("EVENT_TYPE_")
        .to_owned()
}

/// The event's message id as a UUID, or empty.
pub(crate) fn message_id(e: &pb::Event) -> String {
    uuid::Uuid::from_slice(&e.message_id)
        .map(|u| u.to_string())
        .unwrap_or_default()
}

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

/// Every column of an event, as [`HEAD`] names them (JSON and CSV).
fn event_row(e: &pb::Event) -> [String; 10] {
    [
        e.index.to_string(),
        rfc3339(e.time.as_ref()),
        event_type(e),
        e.actor.clone(),
        e.sender.clone(),
        e.recipients.join(" "),
        message_id(e),
        hex::encode(&e.case_ref),
        kind_name(pb::MessageKind::try_from(e.kind).unwrap_or_default()),
        e.detail.clone(),
    ]
}

fn print_events(events: &[pb::Event], format: Format) {
    match format {
        Format::Json => {
            let rows: Vec<serde_json::Value> = events
                .iter()
                .map(|e| {
                    serde_json::Value::Object(
                        HEAD.iter()
                            .map(|h| h.to_string())
                            .zip(event_row(e).into_iter().map(serde_json::Value::String))
                            .collect(),
                    )
                })
                .collect();
            print_json(&rows);
        }
        Format::Csv => {
            println!("{}", HEAD.join(","));
            for e in events {
                let cells: Vec<String> = event_row(e).iter().map(|c| csv_quoted(c)).collect();
                println!("{}", cells.join(","));
            }
        }
        Format::Table => print_events_table(events),
    }
}

fn print_events_table(events: &[pb::Event]) {
    let rows: Vec<[String; 8]> = events
        .iter()
        .map(|e| {
            let [index, time, event, actor, _, _, message, _, kind, detail] = event_row(e);
            let to = if e.recipients.is_empty() {
                String::new()
            } else {
                format!("-> {}", e.recipients.join(" "))
            };
            [index, time, event, actor, kind, message, to, detail]
        })
        .collect();
    print_table(
        &[
            &t!("audit-col-index"),
            &t!("audit-col-time"),
            &t!("audit-col-event"),
            &t!("audit-col-actor"),
            &t!("audit-col-kind"),
            &t!("audit-col-message"),
            &t!("audit-col-to"),
            &t!("audit-col-detail"),
        ],
        &rows,
    );
    println!("{}", t!("audit-events-count", count = events.len()));
}

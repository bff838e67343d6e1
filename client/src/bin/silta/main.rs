//! `silta`: the client program. Thin: parse, load configuration, call the library, print.
//!
//! Exit codes: 0 success; 1 failure (connection, relay refusal, rejected messages); 64 usage or
//! configuration error; 65 invalid form (nothing was sent).

mod cli;

use std::{process::ExitCode, time::Duration};

use clap::Parser as _;
use prost::Message as _;
use silta_client::{
    client::{Client, ClientConfig, ClientError, Received},
    keys::DeviceKeys,
    payload::{kind_name, parse_kind, read_form},
    seal::Draft,
};
use silta_proto::pb::{self, LegalBasis, Urgency};

use cli::{AuditCommand, Cli, Command, KeysCommand};

const EX_USAGE: u8 = 64;
const EX_DATAERR: u8 = 65;

/// A failure, with the exit code and a hint for the person at the keyboard.
struct Failure {
    code: u8,
    message: String,
    hint: Option<String>,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: EX_USAGE,
            message: message.into(),
            hint: None,
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let hint = match &e {
            ClientError::Connect(silta_client::ConnectError::Unreachable(_)) => {
                Some("is the relay running, and is `relay` in the configuration right?".into())
            }
            ClientError::Connect(silta_client::ConnectError::CertificateRejected { .. }) => {
                Some("ask your administrator for a valid certificate (silta-certs issue)".into())
            }
            ClientError::Keys(_) => {
                Some("create keys with `silta keys init`, then `silta keys publish`".into())
            }
            ClientError::Seal(silta_client::seal::SealError::NoKeys(_)) => {
                Some("the recipient must run `silta keys publish` first".into())
            }
            _ => None,
        };
        let code = match &e {
            ClientError::Config(_) => EX_USAGE,
            ClientError::Seal(silta_client::seal::SealError::Invalid(_)) => EX_DATAERR,
            _ => 1,
        };
        Failure {
            code,
            message: e.to_string(),
            hint,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
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
            },
    } = &cli.command
    {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
        let events = silta_client::audit::check_evidence(&text, log_key, message_id.as_deref())
            .map_err(|e| Failure {
                code: 1,
                message: format!("evidence does NOT hold: {e}"),
                hint: None,
            })?;
        println!(
            "evidence holds: {} event(s) included in a checkpoint signed by the log key",
            events.len()
        );
        for e in &events {
            println!("  {}", event_line(e));
        }
        return Ok(());
    }
    let config = ClientConfig::load(&cli.config).map_err(|e| Failure {
        code: EX_USAGE,
        message: e.to_string(),
        hint: Some("pass --config FILE (see client/silta.example.toml)".into()),
    })?;
    match cli.command {
        Command::Keys {
            command: KeysCommand::Init { device },
        } => {
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
            let case_ref = parse_case(&case)?;
            let text = std::fs::read_to_string(&form)
                .map_err(|e| Failure::usage(format!("{}: {e}", form.display())))?;
            let json = form.extension().is_some_and(|e| e == "json");
            let payload = read_form(kind, &text, json).map_err(|e| Failure {
                code: EX_DATAERR,
                message: format!("{}: {e}", form.display()),
                hint: Some("nothing was sent; fix the form and try again".into()),
            })?;
            let mut draft = Draft::new(kind, case_ref, recipients, payload);
            draft.urgency = enum_arg::<Urgency>("URGENCY_", &urgency, "--urgency")?;
            draft.legal_basis =
                enum_arg::<LegalBasis>("LEGAL_BASIS_", &legal_basis, "--legal-basis")?;
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
            let mut audit = config.connect().await?.audit();
            match command {
                AuditCommand::CheckEvidence { .. } => unreachable!("handled above"),
                AuditCommand::Verify {
                    log_key,
                    purpose,
                    state,
                } => {
                    let state = state.unwrap_or_else(|| config.state_dir.join("audit"));
                    match silta_client::audit::verify(&mut audit, &state, &log_key, &purpose).await
                    {
                        Ok(v) => println!(
                            "delivery log verified: {} entries (previously {}), root {}",
                            v.size,
                            v.previous,
                            hex::encode(v.root)
                        ),
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
                    let ev = silta_client::audit::prove(&mut audit, id.as_bytes(), &purpose)
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
                    write_synced(&path, text.as_bytes()).map_err(|e| Failure {
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
                        filter.case_ref = parse_case(&c)?.to_vec();
                    }
                    if let Some(p) = principal {
                        filter.principal = p;
                    }
                    let mut events = Vec::new();
                    let mut token = String::new();
                    loop {
                        let page = audit
                            .query(pb::QueryRequest {
                                filter: Some(filter.clone()),
                                purpose: purpose.clone(),
                                page_size: 500,
                                page_token: token,
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
                    print_events(&events, &format)?;
                }
            }
        }
        Command::Receive { out, wait } => {
            let client = Client::start(&config).await?;
            // Each message is written (or printed) before it is acknowledged.
            let keep = |delivered: &pb::DeliveredEnvelope,
                        opened: &silta_client::seal::Opened|
             -> Result<(), String> {
                let json = message_json(delivered, opened);
                let kind =
                    kind_name(pb::MessageKind::try_from(opened.signed.kind).unwrap_or_default());
                match &out {
                    Some(dir) => {
                        let id =
                            uuid::Uuid::from_slice(&opened.signed.message_id).unwrap_or_default();
                        let path = dir.join(format!("{id}.json"));
                        create_private_dir(dir)?;
                        if !path.exists() {
                            write_synced(&path, json.as_bytes())?;
                        }
                        println!(
                            "received {kind} from {} -> {}",
                            opened.signed.sender,
                            path.display()
                        );
                    }
                    None => println!("{json}"),
                }
                Ok(())
            };
            let items = client
                .receive(Duration::from_secs(wait), usize::MAX, keep)
                .await?;
            let mut rejected = 0;
            for item in &items {
                match item {
                    Received::Message { .. } => {}
                    Received::Rejected {
                        delivered,
                        rejected: r,
                    } => {
                        rejected += 1;
                        eprintln!("rejected a message from {}: {r}", delivered.sender);
                    }
                    Received::Duplicate { message_id } => {
                        eprintln!(
                            "duplicate of {} (already processed) acknowledged again",
                            hex::encode(message_id)
                        );
                    }
                    Received::Status(s) => println!(
                        "status: {} for {}: {}",
                        uuid::Uuid::from_slice(&s.message_id).unwrap_or_default(),
                        s.recipient,
                        pb::DeliveryState::try_from(s.state)
                            .unwrap_or_default()
                            .as_str_name()
                    ),
                }
            }
            print_key_changes(&client);
            if rejected > 0 {
                return Err(Failure {
                    code: 1,
                    message: format!("{rejected} message(s) rejected"),
                    hint: None,
                });
            }
        }
    }
    Ok(())
}

/// Creates `dir` (and parents) with mode 0700 if missing.
fn create_private_dir(dir: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Writes a message file: a temporary file (0600), fsync, rename, fsync of the folder.
fn write_synced(path: &std::path::Path, data: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    silta_certs::files::write_new(&tmp, data, silta_certs::files::SECRET_MODE)
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
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

fn print_key_changes(client: &Client) {
    for c in client.take_key_changes() {
        eprintln!(
            "warning: the key of {} device {} CHANGED from {} to {}; it verified against the CA. Confirm the new fingerprint with them by phone.",
            c.principal, c.device, c.old, c.new
        );
    }
}

fn parse_case(case: &str) -> Result<[u8; 16], Failure> {
    if case == "none" {
        return Ok([0; 16]);
    }
    let bytes = hex::decode(case.replace('-', "")).map_err(|_| {
        Failure::usage(format!("--case {case}: expected 32 hex digits or \"none\""))
    })?;
    bytes
        .try_into()
        .map_err(|_| Failure::usage(format!("--case {case}: expected 32 hex digits (16 bytes)")))
}

fn enum_arg<E: EnumName>(prefix: &str, value: &str, flag: &str) -> Result<E, Failure> {
    E::from_name(&format!(
        "{prefix}{}",
        value.to_ascii_uppercase().replace('-', "_")
    ))
    .ok_or_else(|| Failure::usage(format!("{flag} {value}: unknown value")))
}

trait EnumName: Sized {
    fn from_name(s: &str) -> Option<Self>;
}

impl EnumName for Urgency {
    fn from_name(s: &str) -> Option<Self> {
        Urgency::from_str_name(s).filter(|u| *u != Urgency::Unspecified)
    }
}

impl EnumName for LegalBasis {
    fn from_name(s: &str) -> Option<Self> {
        LegalBasis::from_str_name(s).filter(|u| *u != LegalBasis::Unspecified)
    }
}

/// A received message as JSON (proto3 JSON mapping of the payload).
fn message_json(delivered: &pb::DeliveredEnvelope, opened: &silta_client::seal::Opened) -> String {
    let pool = prost_reflect::DescriptorPool::decode(silta_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptors");
    let desc = pool
        .get_message_by_name("silta.v1.payload.Payload")
        .expect("Payload");
    let payload =
        prost_reflect::DynamicMessage::decode(desc, opened.payload.encode_to_vec().as_slice())
            .map(|m| serde_json::to_value(&m).unwrap_or_default())
            .unwrap_or_default();
    let s = &opened.signed;
    let value = serde_json::json!({
        "message_id": uuid::Uuid::from_slice(&s.message_id).map(|u| u.to_string()).unwrap_or_default(),
        "case_ref": hex::encode(&s.case_ref),
        "kind": kind_name(pb::MessageKind::try_from(s.kind).unwrap_or_default()),
        "from": s.sender,
        "from_device": s.sender_device,
        "sender_key": opened.sender_key.fingerprint,
        "to": s.recipients,
        "urgency": Urgency::try_from(s.urgency).unwrap_or_default().as_str_name(),
        "legal_basis": LegalBasis::try_from(s.legal_basis).unwrap_or_default().as_str_name(),
        "log_index": delivered.log_index,
        "payload": payload,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
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
    format!(
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
    )
}

fn print_events(events: &[pb::Event], format: &str) -> Result<(), Failure> {
    let row = |e: &pb::Event| {
        [
            e.index.to_string(),
            e.time
                .map(|t| {
                    time::OffsetDateTime::from_unix_timestamp(t.seconds)
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                })
                .unwrap_or_default(),
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
                    .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
                    .collect();
                println!("{}", cells.join(","));
            }
        }
        "table" => {
            for e in events {
                println!("{}", event_line(e));
            }
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

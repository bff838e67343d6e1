//! `silta receive`: fetch what is waiting, open and verify it, print it (or write it into a
//! folder), acknowledge it. The library records each opening in the access log (`received`,
//! with the purpose) before the message is printed or written.

use std::{path::PathBuf, time::Duration};

use silta_client::{
    ClientConfig,
    access::{AccessLog, current_user},
    client::{Client, Received},
    fsutil::{create_private_dir, write_atomic},
    ids::MessageId,
    receive::Opener,
    record::MessageRecord,
    seal::Opened,
    text::printable_line,
};
use silta_proto::pb;

use crate::Failure;

/// Receives until nothing new came for `wait` seconds. `purpose`: why (the access log), or
/// the purpose configured for automatic receiving (`[daemon] purpose`).
pub(crate) async fn run(
    config: &ClientConfig,
    out: Option<PathBuf>,
    wait: u64,
    purpose: Option<String>,
) -> Result<(), Failure> {
    let purpose = purpose
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| config.daemon.purpose.clone());
    let client = Client::start(config).await?;
    let log = AccessLog::in_state_dir(&config.state_dir);
    let (who, me) = (current_user(), client.principal().to_string());
    let opener = Opener {
        log: &log,
        who: &who,
        principal: &me,
        purpose: &purpose,
    };
    // Each message is written (or printed) after its opening is logged and before it is
    // acknowledged.
    let keep = |delivered: &pb::DeliveredEnvelope, opened: &Opened| keep(&out, delivered, opened);
    let items = client
        .receive(&opener, Duration::from_secs(wait), usize::MAX, keep)
        .await?;
    let rejected = report(&items);
    crate::print_key_changes(&client);
    if rejected > 0 {
        return Err(Failure {
            code: 1,
            message: format!("{rejected} message(s) rejected"),
            hint: None,
        });
    }
    Ok(())
}

/// Prints the message as JSON, or writes it as `<message-id>.json` into `out` (mode 0600).
fn keep(
    out: &Option<PathBuf>,
    delivered: &pb::DeliveredEnvelope,
    opened: &Opened,
) -> Result<(), String> {
    let record = MessageRecord::opened(delivered, opened);
    let mut json = serde_json::to_value(&record).map_err(|e| e.to_string())?;
    // `case_ref` (32 hex digits, zeros without a case): the name scripts read first.
    json["case_ref"] = record.case.to_string().into();
    let text = serde_json::to_string_pretty(&json).unwrap_or_default();
    match out {
        Some(dir) => {
            let path = dir.join(format!("{}.json", record.message_id));
            create_private_dir(dir)?;
            if !path.exists() {
                write_atomic(&path, text.as_bytes())?;
            }
            println!(
                "received {} from {} -> {}",
                printable_line(&record.kind),
                printable_line(&record.from),
                path.display()
            );
        }
        None => println!("{text}"),
    }
    Ok(())
}

/// Says what happened to what was not a new message; returns how many were rejected.
fn report(items: &[Received]) -> usize {
    let mut rejected = 0;
    let id_of = |bytes: &[u8]| {
        MessageId::from_slice(bytes).map_or_else(|_| hex::encode(bytes), |m| m.to_string())
    };
    for item in items {
        match item {
            Received::Message { .. } => {}
            Received::Rejected {
                delivered,
                rejected: r,
            } => {
                rejected += 1;
                eprintln!(
                    "rejected a message from {}: {}",
                    printable_line(&delivered.sender),
                    printable_line(&r.to_string())
                );
            }
            Received::Deferred {
                delivered,
                retry,
                tried,
            } => {
                let id = id_of(
                    delivered
                        .envelope
                        .as_ref()
                        .map(|e| e.message_id.as_slice())
                        .unwrap_or_default(),
                );
                let state = if *tried { "failed" } else { "is not due yet" };
                eprintln!(
                    "could not process message {id} from {} now: {} (try {} {state}; it comes again on a later receive)",
                    printable_line(&delivered.sender),
                    printable_line(&retry.error),
                    retry.attempts
                );
            }
            Received::Duplicate { message_id } => {
                eprintln!(
                    "duplicate of {} (already processed) acknowledged again",
                    id_of(message_id)
                );
            }
            Received::NotForThisDesk { delivered } => {
                eprintln!(
                    "message {} from {}: {}",
                    id_of(
                        delivered
                            .envelope
                            .as_ref()
                            .map(|e| e.message_id.as_slice())
                            .unwrap_or_default()
                    ),
                    printable_line(&delivered.sender),
                    silta_client::record::SEALED_BEFORE_NOTE
                );
            }
            Received::Status(s) => {
                let status = silta_client::record::DeliveryStatus::from_event(s);
                println!(
                    "status: {} for {}: {}{}",
                    id_of(&s.message_id),
                    printable_line(&s.recipient),
                    pb::DeliveryState::try_from(s.state)
                        .unwrap_or_default()
                        .as_str_name(),
                    if status.resendable() {
                        format!(" ({})", status.reason)
                    } else {
                        String::new()
                    }
                );
                if !status.what_to_do.is_empty() {
                    eprintln!("{}", printable_line(&status.what_to_do));
                }
            }
        }
    }
    rejected
}

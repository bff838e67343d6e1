//! `silta resend ID`: re-seal a message sent from here to the recipients whose copy is
//! undeliverable or unreadable, to their current keys, under a new id (the library's
//! [`silta_client::resend`]). At a centre whose daemon sent the message, the request is handed
//! to the daemon (a file in its `resend/` folder), which owns the queue and the sent/ files.

use silta_client::{
    ClientConfig,
    access::{AccessLog, current_user},
    client::Client,
    inbox,
    outbox::{Disclosure, Outbox},
    payload::kind_name,
    record::MessageRecord,
    resend::{Original, ResendError, Resent, resend},
    text::printable_line,
};

use crate::{EX_USAGE, Failure};

impl From<ResendError> for Failure {
    fn from(e: ResendError) -> Self {
        match e {
            ResendError::Unknown(m) => Failure {
                code: EX_USAGE,
                message: m,
                hint: Some(
                    "give the id (or its first 8+ characters) of a message sent from this installation: `silta inbox list` does not list sent messages, `silta inbox show ID` shows one".into(),
                ),
            },
            ResendError::NothingToResend(m) => Failure::failed(m),
            ResendError::NoKeys(m) => Failure {
                code: 1,
                message: m,
                hint: Some("nothing was sent".into()),
            },
            ResendError::ContentGone(m) => Failure {
                code: 1,
                message: m,
                hint: Some(
                    "retention deleted this installation's copy; send the content again from your case-management system (`silta send`), naming the earlier message in it".into(),
                ),
            },
            ResendError::Client(e) => e.into(),
        }
    }
}

pub(crate) async fn run(config: &ClientConfig, id: &str, json: bool) -> Result<(), Failure> {
    if let Some(done) = crate::resend_daemon::hand_to_daemon(config, id)? {
        println!("{done}");
        return Ok(());
    }
    let client = Client::start(config).await?;
    let record = match inbox::find(client.state(), id) {
        Ok(r) => r,
        Err(why) => return Err(unknown(&client, id, why).await),
    };
    let original = Original::from_record(&record)?;
    let outbox = Outbox::open(client.state(), AccessLog::in_state_dir(&config.state_dir))?;
    let disclosure = Disclosure {
        who: current_user(),
        purpose: format!(
            "re-sending {} {} to recipients who could not open it",
            kind_name(original.draft.kind),
            record.message_id
        ),
        keep_copy: true,
    };
    // One re-sending per call: an earlier one left unfinished is finished first, then the
    // others (bounded: each round finishes one recorded re-sending).
    for round in 0..8 {
        let result = resend(&client, &outbox, &original, &disclosure).await;
        crate::print_key_changes(&client);
        let resent = match result {
            Ok(r) => r,
            // The earlier one finished was all there was to do.
            Err(ResendError::NothingToResend(_)) if round > 0 => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        report(&record, &resent, json)?;
        if !resent.finished_earlier {
            break;
        }
    }
    Ok(())
}

/// Says what one re-sending did; an error if it was sent but something after went wrong.
fn report(record: &MessageRecord, resent: &Resent, json: bool) -> Result<(), Failure> {
    let new_id = uuid::Uuid::from_bytes(resent.sent.message_id);
    for w in &resent.warnings {
        eprintln!("warning: {}", printable_line(w));
    }
    if json {
        let v = serde_json::json!({
            "resend_of": record.message_id.to_string(),
            "message_id": new_id.to_string(),
            "to": resent.to,
            "log_index": resent.sent.receipt.log_index,
            "again": resent.sent.again,
            "finished_earlier": resent.finished_earlier,
            "why": resent.why,
            "warnings": resent.warnings,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for (who, st) in &resent.why {
            eprintln!(
                "{}: {} ({})",
                printable_line(who),
                st.state,
                printable_line(&st.reason)
            );
        }
        if resent.finished_earlier {
            eprintln!(
                "an earlier re-sending of this message had not finished: it is finished now (the same message {new_id}, sent once)"
            );
        } else if resent.sent.again {
            eprintln!(
                "this resend was made before: the recipients get it once (the same message {new_id})"
            );
        }
        println!(
            "re-sent {} {} to {} as {new_id}: accepted at log index {}",
            record.kind,
            record.message_id,
            resent.to.join(", "),
            resent.sent.receipt.log_index
        );
    }
    if !resent.sent.problems.is_empty() {
        return Err(Failure {
            code: 1,
            message: format!(
                "{new_id} WAS SENT (the relay accepted it at log index {}), but {}",
                resent.sent.receipt.log_index,
                resent.sent.problems.join("; ")
            ),
            hint: Some("do not send it again; keep this output and report it".into()),
        });
    }
    Ok(())
}

/// No kept copy of `id` here: the relay still knowing it as ours means retention deleted the
/// content; otherwise the id is unknown.
async fn unknown(client: &Client, id: &str, why: String) -> Failure {
    if let Ok(full) = silta_client::form::parse_message_id(id)
        && let Ok(Some(_)) = client.status(&full).await
    {
        return ResendError::ContentGone(format!(
            "message {} was sent from here, but its content is no longer kept here",
            id.trim()
        ))
        .into();
    }
    ResendError::Unknown(why).into()
}

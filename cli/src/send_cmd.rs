//! `silta send`: a form file with its envelope given by flags, sealed and sent through the
//! library's outbox (the disclosure logged first; a rerun after a failure sends the same
//! message).

use silta_client::{
    ClientConfig,
    access::{AccessLog, current_user},
    client::Client,
    form::{parse_case, parse_legal_basis, parse_urgency},
    outbox::{Disclosure, Key, Outbox, Sent, content_key},
    payload::{kind_name, parse_kind, read_form, send_purpose},
    seal::Draft,
};

use crate::{EX_DATAERR, Failure};

/// The flags of `silta send`.
pub(crate) struct SendArgs {
    pub(crate) kind: String,
    pub(crate) to: Vec<String>,
    pub(crate) case: String,
    pub(crate) urgency: String,
    pub(crate) legal_basis: Option<String>,
    pub(crate) form: std::path::PathBuf,
}

pub(crate) async fn run(config: &ClientConfig, args: SendArgs) -> Result<(), Failure> {
    let kind = parse_kind(&args.kind).map_err(|e| Failure::usage(e.to_string()))?;
    let recipients = args
        .to
        .iter()
        .map(|r| {
            r.parse()
                .map_err(|e| Failure::usage(format!("--to {r}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let case_ref = parse_case(&args.case).map_err(|e| Failure::usage(format!("--case: {e}")))?;
    silta_proto::policy::check_case(kind, &case_ref)
        .map_err(|e| Failure::usage(format!("--case: {e}")))?;
    let form = &args.form;
    let text = std::fs::read_to_string(form)
        .map_err(|e| Failure::usage(format!("{}: {e}", form.display())))?;
    let json = form.extension().is_some_and(|e| e == "json");
    let payload = read_form(kind, &text, json).map_err(|e| Failure {
        code: EX_DATAERR,
        message: format!("{}: {e}", form.display()),
        hint: Some(t!("hint-fix-form")),
    })?;
    check_languages(&payload)?;
    let mut draft = Draft::new(kind, case_ref, recipients, payload);
    draft.urgency =
        parse_urgency(&args.urgency).map_err(|e| Failure::usage(format!("--urgency: {e}")))?;
    if let Some(b) = &args.legal_basis {
        draft.legal_basis = legal_basis_for(kind, b)?;
    }
    let client = Client::start(config).await?;
    let sent = submit(config, &client, &draft, None).await?;
    println!(
        "sent {} {} to {}: accepted at log index {}",
        kind_name(kind),
        uuid::Uuid::from_bytes(sent.message_id),
        args.to.join(", "),
        sent.receipt.log_index
    );
    if sent.receipt_checked {
        println!("receipt verified: signed checkpoint and inclusion proof check out");
    }
    Ok(())
}

/// `--legal-basis` for a message of `kind`: a known basis, and one the kind may name
/// (`silta_proto::policy::allowed_bases`; the error lists them).
/// Every language field of a form holds a known ISO 639 code: a code the reader's program
/// cannot name is refused before anything is sealed (exit 64, with where to find the codes).
pub(crate) fn check_languages(payload: &silta_proto::pb::payload::Payload) -> Result<(), Failure> {
    match silta_client::i18n::unknown_languages(payload).first() {
        None => Ok(()),
        Some((field, code)) => Err(Failure {
            code: crate::EX_USAGE,
            message: t!("form-unknown-language", field = field, code = code),
            hint: Some(t!("form-unknown-language-hint")),
        }),
    }
}

pub(crate) fn legal_basis_for(
    kind: silta_proto::pb::MessageKind,
    flag: &str,
) -> Result<silta_proto::pb::LegalBasis, Failure> {
    let basis =
        parse_legal_basis(flag).map_err(|e| Failure::usage(format!("--legal-basis: {e}")))?;
    silta_proto::policy::check_basis(kind, basis)
        .map_err(|e| Failure::usage(format!("--legal-basis: {e}")))?;
    Ok(basis)
}

/// Sends `draft` through the outbox as a command a person runs: the disclosure is logged under
/// the person's login, the same content run again within an hour after a failure is the same
/// message, and a copy is kept for `silta inbox thread`. Key changes are printed; a problem
/// after the relay accepted the message is a failure that says it WAS sent. The access log
/// records `purpose` (the person's stated purpose), else what the kind is for.
pub(crate) async fn submit(
    config: &ClientConfig,
    client: &Client,
    draft: &Draft,
    purpose: Option<&str>,
) -> Result<Sent, Failure> {
    // A send's purpose is the one stated, else what the kind is for (never just its name).
    let purpose = purpose
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map_or_else(|| send_purpose(draft.kind).to_owned(), str::to_owned);
    submit_as(config, client, draft, purpose).await
}

/// [`submit`] with the purpose the access log records for the disclosure.
pub(crate) async fn submit_as(
    config: &ClientConfig,
    client: &Client,
    draft: &Draft,
    purpose: String,
) -> Result<Sent, Failure> {
    let outbox = Outbox::open(client.state(), AccessLog::in_state_dir(&config.state_dir))?;
    let key = Key::Content(content_key(draft));
    let disclosure = Disclosure {
        who: current_user(),
        purpose,
        keep_copy: true,
    };
    let result = outbox.submit(client, draft, &key, &disclosure).await;
    crate::print_key_changes(client);
    let sent = result?;
    if sent.again {
        let at = sent
            .earlier_attempt
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| silta_client::times::rfc3339_unix(d.as_secs() as i64))
            .unwrap_or_default();
        eprintln!(
            "sending again the same message {} (an earlier attempt did not finish at {at}): the recipients get it once",
            uuid::Uuid::from_bytes(sent.message_id)
        );
    }
    if !sent.problems.is_empty() {
        return Err(Failure {
            code: 1,
            message: format!(
                "{} {} WAS SENT (the relay accepted it at log index {}), but {}",
                kind_name(draft.kind),
                uuid::Uuid::from_bytes(sent.message_id),
                sent.receipt.log_index,
                sent.problems.join("; ")
            ),
            hint: Some("do not send it again; keep this output and report it".into()),
        });
    }
    Ok(sent)
}

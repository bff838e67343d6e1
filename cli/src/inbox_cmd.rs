//! `silta inbox ...` and `silta case ...`.

use std::{io::IsTerminal as _, path::Path, time::Duration};

use serde_json::{Value, json};
use silta_client::text::printable_line;
use silta_client::{
    ClientConfig,
    access::{AccessLog, Action, current_user},
    client::Client,
    form::parse_case,
    inbox::{self, Reader},
    record::{MessageRecord, RecordState},
    state::State,
};

use crate::{
    Failure,
    cli::{CaseCommand, InboxCommand, ShowFormat},
    output::{print_json, print_table},
};

/// How long a stated purpose holds for the same person (a working day).
const SESSION_HOURS: i64 = 8;

/// The purpose of this command's access to `case` (or, without a case, of listing and syncing,
/// which show no content): `--purpose` (for this case only; remembered for it), `$SILTA_PURPOSE`
/// (this command only), the purpose the same OS user gave for this case within 8 hours, or asked
/// (on a terminal). A purpose given for one case never covers another.
pub(crate) fn session_purpose(
    state_dir: &Path,
    flag: Option<String>,
    who: &str,
    scope: Scope,
) -> Result<String, Failure> {
    let dir = state_dir.join("sessions");
    // The user name hex-encoded: every name has its own file (mapping characters to '_' made
    // anna.k and anna_k share one).
    let file = dir.join(format!("u-{}.json", hex::encode(who.as_bytes())));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // {"general": {"purpose", "expires"}, "cases": {"<case hex>": {"purpose", "expires"}}};
    // the earlier form, one {"purpose", "expires"} for everything, counts as the general one.
    let mut saved: Value = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({}));
    if saved.get("purpose").is_some() {
        saved = json!({ "general": saved });
    }
    // A message without a case has its own slot (its id): the general (listing) purpose never
    // covers content.
    let slot = match scope {
        Scope::General => None,
        Scope::Case(c) => Some(hex::encode(c)),
        Scope::Message(m) => Some(format!("message-{}", hex::encode(m))),
    };
    let shown = match scope {
        Scope::General => None,
        Scope::Case(c) | Scope::Message(c) => Some(hex::encode(c)),
    };
    let is_message = matches!(scope, Scope::Message(_));
    let save = |mut saved: Value, purpose: &str| -> Result<(), Failure> {
        silta_client::fsutil::create_private_dir(&dir).map_err(Failure::failed)?;
        let v = json!({ "purpose": purpose, "expires": now + SESSION_HOURS * 3600 });
        match &slot {
            Some(c) => {
                if !saved["cases"].is_object() {
                    saved["cases"] = json!({});
                }
                saved["cases"][c] = v;
            }
            None => saved["general"] = v,
        }
        // Expired ones are dropped, so the file does not grow with every case ever opened.
        if let Some(cases) = saved["cases"].as_object_mut() {
            cases.retain(|_, v| v["expires"].as_i64().is_some_and(|e| e > now));
        }
        silta_client::fsutil::write_atomic(&file, saved.to_string().as_bytes())
            .map_err(Failure::failed)
    };
    if let Some(p) = flag.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()) {
        save(saved, &p)?;
        return Ok(p);
    }
    if let Ok(p) = std::env::var("SILTA_PURPOSE")
        && !p.trim().is_empty()
    {
        return Ok(p.trim().to_owned());
    }
    let kept = match &slot {
        Some(c) => &saved["cases"][c],
        None => &saved["general"],
    };
    if kept["expires"].as_i64().is_some_and(|e| e > now)
        && let Some(p) = kept["purpose"].as_str()
    {
        return Ok(p.to_owned());
    }
    if std::io::stdin().is_terminal() {
        match &shown {
            Some(m) if is_message => eprint!(
                "{} ",
                t!("inbox-purpose-prompt-message", message = m.to_string())
            ),
            Some(c) => eprint!("{} ", t!("inbox-purpose-prompt-case", case = c.to_string())),
            None => eprint!("{} ", t!("inbox-purpose-prompt")),
        }
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Failure::failed(e.to_string()))?;
        let p = line.trim().to_owned();
        if !p.is_empty() {
            save(saved, &p)?;
            return Ok(p);
        }
    }
    Err(Failure {
        code: crate::EX_USAGE,
        message: match &shown {
            Some(m) if is_message => {
                t!("inbox-purpose-missing-message", message = m.to_string())
            }
            Some(c) => t!("inbox-purpose-missing-case", case = c.to_string()),
            None => t!("inbox-purpose-missing"),
        },
        hint: Some(match &shown {
            Some(_) if is_message => t!("inbox-purpose-hint-message"),
            Some(_) => t!("inbox-purpose-hint-case"),
            None => t!("inbox-purpose-hint"),
        }),
    })
}

/// What a stated purpose is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope {
    /// Listing and syncing (no content shown).
    General,
    /// One case.
    Case([u8; 16]),
    /// One message without a case (a first-contact referral): its own purpose, by its id.
    Message([u8; 16]),
}

/// Who is reading, for which principal, and why: what every access-log entry of a command says.
struct Session {
    log: AccessLog,
    who: String,
    me: String,
    purpose: String,
}

impl Session {
    /// A session for listing and fetching (a general purpose; no content shown).
    fn start(config: &ClientConfig, purpose: Option<String>) -> Result<Self, Failure> {
        Self::for_scope(config, purpose, Scope::General)
    }

    /// A session touching `case` (its own purpose; none covers another case).
    fn for_case(
        config: &ClientConfig,
        purpose: Option<String>,
        case: &[u8; 16],
    ) -> Result<Self, Failure> {
        Self::for_scope(config, purpose, Scope::Case(*case))
    }

    fn for_scope(
        config: &ClientConfig,
        purpose: Option<String>,
        scope: Scope,
    ) -> Result<Self, Failure> {
        let who = current_user();
        Ok(Session {
            purpose: session_purpose(&config.state_dir, purpose, &who, scope)?,
            me: principal_of(config)?,
            log: AccessLog::in_state_dir(&config.state_dir),
            who,
        })
    }

    fn reader(&self) -> Reader<'_> {
        Reader {
            log: &self.log,
            who: &self.who,
            principal: &self.me,
            purpose: &self.purpose,
        }
    }

    /// Records an access; call it before showing anything.
    fn record(&self, action: Action, case: &[u8], messages: &[Vec<u8>]) -> Result<(), Failure> {
        self.reader()
            .record(action, case, messages)
            .map_err(|e| Failure::failed(e.to_string()))
    }
}

pub(crate) async fn run(
    config: &ClientConfig,
    purpose: Option<String>,
    command: InboxCommand,
) -> Result<(), Failure> {
    match command {
        InboxCommand::Sync { wait } => {
            let session = Session::start(config, purpose)?;
            let client = Client::start(config).await?;
            sync(&client, &session, wait).await?;
            share(&client, &session).await;
            Ok(())
        }
        InboxCommand::List {
            new,
            offline,
            wait,
            json,
        } => {
            let fetch = if offline { None } else { Some(wait) };
            list(config, purpose, new, fetch, json).await
        }
        InboxCommand::Show { id, json, format } => show(config, purpose, &id, json, format),
        InboxCommand::Thread { case, json } => thread(config, purpose, &case, json),
        InboxCommand::Ack { ids } => ack(config, &ids).await,
        InboxCommand::AccessReport {
            case,
            data_subject: true,
            with_staff,
            json,
        } => {
            let case = a_case(&case)?;
            let session = Session::for_case(config, purpose, &case)?;
            crate::claims_cmd::data_subject_report(
                config,
                &session.log,
                &session.who,
                &session.me,
                &session.purpose,
                &case,
                with_staff,
                json,
            )
            .await
        }
        InboxCommand::AccessReport { case, json, .. } => {
            access_report(config, purpose, &case, json)
        }
        InboxCommand::Due {
            offline,
            wait,
            json,
        } => due(config, purpose, (!offline).then_some(wait), json).await,
    }
}

/// `inbox due`: deadlines from the messages kept here (fetching first unless `--offline`).
async fn due(
    config: &ClientConfig,
    purpose: Option<String>,
    fetch: Option<u64>,
    json: bool,
) -> Result<(), Failure> {
    let records = match fetch {
        None => State::open(&config.state_dir)?.messages()?,
        Some(wait) => {
            let session = Session::start(config, purpose)?;
            let client = Client::start(config).await?;
            sync(&client, &session, wait).await?;
            client.state().messages()?
        }
    };
    let wait = Duration::from_secs(u64::from(config.inbox.urgent_unacked_minutes) * 60);
    let items = silta_client::due::due_items(&records, std::time::SystemTime::now(), Some(wait));
    if json {
        print_json(&items);
        return Ok(());
    }
    if items.is_empty() {
        println!("{}", t!("due-nothing"));
        return Ok(());
    }
    let rows: Vec<[String; 6]> = items
        .iter()
        .map(|i| {
            [
                if i.overdue {
                    t!("due-overdue")
                } else {
                    String::new()
                },
                i.due.clone(),
                due_what(i.what),
                kind_label(&i.kind),
                i.case.clone(),
                i.message_id.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "",
            &t!("col-due"),
            &t!("col-what"),
            &t!("col-from-message"),
            &t!("col-case"),
            &t!("col-id"),
        ],
        &rows,
    );
    Ok(())
}

/// What is due ([`silta_client::due::DueItem::what`]) in the reader's language.
fn due_what(what: &str) -> String {
    let id = format!("due-what-{what}");
    if silta_client::i18n::has(silta_client::i18n::Lang::En, &id) {
        silta_client::i18n::tr(lang(), &id, &[])
    } else {
        printable_line(what)
    }
}

/// `inbox list`: fetches first unless `fetch` is `None` (`--offline`); the list is recorded in
/// the access log (it shows cases, kinds and senders).
async fn list(
    config: &ClientConfig,
    purpose: Option<String>,
    new: bool,
    fetch: Option<u64>,
    json: bool,
) -> Result<(), Failure> {
    let session = Session::start(config, purpose)?;
    let with_holders = |state: &State| -> Result<_, Failure> {
        Ok((
            inbox::list(state, new)?,
            silta_client::claims::holders(&state.messages()?),
        ))
    };
    let (rows, held) = match fetch {
        None => with_holders(&State::open(&config.state_dir)?)?,
        Some(wait) => {
            let client = Client::start(config).await?;
            sync(&client, &session, wait).await?;
            with_holders(client.state())?
        }
    };
    if !rows.is_empty() {
        let ids: Vec<Vec<u8>> = rows.iter().map(inbox::id_bytes).collect();
        session.record(Action::Listed, &[], &ids)?;
    }
    if json {
        let brief: Vec<Value> = rows
            .iter()
            .map(|r| {
                let mut b = brief(r);
                b["held_by"] = json!(held.get(&r.case).map(|h| h.person.clone()));
                b
            })
            .collect();
        print_json(&brief);
    } else {
        print_list(&rows, &held);
    }
    Ok(())
}

/// `inbox show`: recorded in the access log before it is shown.
fn show(
    config: &ClientConfig,
    purpose: Option<String>,
    id: &str,
    json: bool,
    format: Option<ShowFormat>,
) -> Result<(), Failure> {
    let state = State::open(&config.state_dir)?;
    let record = inbox::find(&state, id).map_err(Failure::usage)?;
    // A message without a case has a purpose of its own, never the listing one.
    let scope = if record.case.is_none() {
        Scope::Message(record.message_id.0)
    } else {
        Scope::Case(record.case.0)
    };
    let session = Session::for_scope(config, purpose, scope)?;
    // A page (text or HTML, to print or keep) is a copy that can leave the screen: recorded as
    // such, so a data subject's access report tells it from a view.
    let action = match format {
        Some(_) if !json => Action::Printed,
        _ => Action::Shown,
    };
    session.record(
        action,
        &inbox::case_bytes(&record),
        &[inbox::id_bytes(&record)],
    )?;
    let now = silta_client::times::now_rfc3339();
    match format {
        _ if json => print_json(&sorted(&record)),
        None => print_message(&record),
        Some(ShowFormat::Text) => {
            print!("{}", crate::page::text(&record, lang(), &session.who, &now))
        }
        Some(ShowFormat::Html) => {
            print!("{}", crate::page::html(&record, lang(), &session.who, &now))
        }
    }
    Ok(())
}

/// `inbox thread`: a case's messages, recorded in the access log before they are shown.
fn thread(
    config: &ClientConfig,
    purpose: Option<String>,
    case: &str,
    json: bool,
) -> Result<(), Failure> {
    let case = a_case(case)?;
    let session = Session::for_case(config, purpose, &case)?;
    let state = State::open(&config.state_dir)?;
    let mut records = inbox::thread(&state, &case)?;
    // Access-log shares are the desks' bookkeeping, not the case's correspondence.
    let share = silta_client::payload::kind_name(silta_proto::pb::MessageKind::AccessLogShare);
    records.retain(|r| r.kind != share);
    if records.is_empty() {
        return Err(Failure::failed(t!(
            "inbox-no-case-messages",
            case = hex::encode(case)
        )));
    }
    let ids: Vec<Vec<u8>> = records.iter().map(inbox::id_bytes).collect();
    session.record(Action::Thread, &case, &ids)?;
    if json {
        print_json(&records.iter().map(sorted).collect::<Value>());
    } else {
        println!(
            "{}\n",
            t!(
                "inbox-thread-header",
                case = hex::encode(case),
                count = records.len()
            )
        );
        for r in &records {
            // The desks' bookkeeping: a claim is one line; an access-log share is not shown.
            if silta_client::claims::is_internal(r) {
                for c in silta_client::claims::claims(std::slice::from_ref(r), &r.case) {
                    println!("* {}\n", c.line_in(lang()));
                }
                continue;
            }
            print_message(r);
            println!();
        }
    }
    Ok(())
}

/// A case reference naming a case: "none" (all zeros) would gather every message without a
/// case into one "thread" or report, as if they were one person's.
fn a_case(case: &str) -> Result<[u8; 16], Failure> {
    let case = parse_case(case).map_err(|e| Failure::usage(format!("case: {e}")))?;
    if case == [0; 16] {
        return Err(Failure::usage(t!("case-none-refused")));
    }
    Ok(case)
}

/// `inbox ack`: the sender sees that the Assistance System took the messages in. A message whose
/// copy the relay expired first can never be acknowledged: it is marked "expired-at-relay", the
/// person is told to call or answer the sender, and the command exits 1 after the other ids.
async fn ack(config: &ClientConfig, ids: &[String]) -> Result<(), Failure> {
    let client = Client::start(config).await?;
    let mut expired = Vec::new();
    for id in ids {
        let record = inbox::find(client.state(), id).map_err(Failure::usage)?;
        let done = inbox::acknowledge(&client, &record, &current_user())
            .await
            .map_err(Failure::failed)?;
        if let Some(h) = &done.handled_elsewhere {
            println!(
                "not acknowledged from this desk: {} {} from {} was {}; nothing sent",
                printable_line(&done.kind),
                done.message_id,
                printable_line(&done.from),
                printable_line(&h.line())
            );
            continue;
        }
        if done.state == Some(RecordState::ExpiredAtRelay) {
            eprintln!(
                "{}",
                t!(
                    "inbox-ack-expired",
                    kind = kind_label(&done.kind),
                    id = done.message_id.to_string(),
                    from = &done.from
                )
            );
            expired.push(done.message_id.to_string());
            continue;
        }
        println!(
            "{}",
            t!(
                "inbox-acked",
                kind = kind_label(&done.kind),
                id = done.message_id.to_string(),
                from = &done.from
            )
        );
    }
    if expired.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(t!(
            "inbox-ack-expired-summary",
            count = expired.len(),
            ids = expired.join(", ")
        )))
    }
}

/// `inbox access-report`: who opened a case's messages, when and why; itself recorded first.
fn access_report(
    config: &ClientConfig,
    purpose: Option<String>,
    case: &str,
    json: bool,
) -> Result<(), Failure> {
    let case = a_case(case)?;
    let session = Session::for_case(config, purpose, &case)?;
    session.record(Action::Reported, &case, &[])?;
    let log = &session.log;
    // The case's messages and the ones they answer (a referral made before the case
    // reference existed), so accesses recorded without the case are found too.
    let mut ids: Vec<String> = Vec::new();
    let mut note = String::new();
    match State::open(&config.state_dir) {
        Ok(state) => {
            ids = inbox::thread_ids(&inbox::thread(&state, &case)?);
        }
        Err(e) => {
            note = format!("\n{}", t!("access-note-case-only", error = e.to_string()));
        }
    }
    let torn = match log.incomplete_lines() {
        Ok(lines) if !lines.is_empty() => {
            format!("\n{}", t!("access-note-torn", lines = format!("{lines:?}")))
        }
        _ => String::new(),
    };
    let entries = log.for_case(&case, &ids).map_err(|e| Failure {
        code: 2,
        message: t!("access-log-damaged", error = e.to_string()),
        hint: Some(t!("access-log-damaged-hint")),
    })?;
    if json {
        print_json(&entries);
        return Ok(());
    }
    println!(
        "{}\n",
        t!(
            "access-report-header",
            case = hex::encode(case),
            principal = &session.me,
            path = log.path().display().to_string()
        )
    );
    print_access_entries(&entries);
    println!(
        "\n{}{note}{torn}",
        t!("access-report-footer", count = entries.len())
    );
    Ok(())
}

fn print_access_entries(entries: &[silta_client::access::Entry]) {
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| {
            [
                e.time.clone(),
                e.person(),
                e.action.as_str().to_owned(),
                match e.messages.len() {
                    0 => "-".to_owned(),
                    1 => e.messages[0].clone(),
                    n => t!("access-n-messages", count = n),
                },
                if e.recipients.is_empty() {
                    e.purpose.clone()
                } else {
                    t!(
                        "access-purpose-to",
                        purpose = &e.purpose,
                        recipients = e.recipients.join(", ")
                    )
                },
            ]
        })
        .collect();
    print_table(
        &[
            &t!("col-when"),
            &t!("col-who"),
            &t!("col-what"),
            &t!("col-messages"),
            &t!("col-purpose"),
        ],
        &rows,
    );
}

async fn sync(client: &Client, session: &Session, wait: u64) -> Result<(), Failure> {
    let summary = inbox::sync(client, Duration::from_secs(wait), &session.reader()).await?;
    if !summary.new.is_empty() {
        eprintln!("{}", t!("inbox-new-messages", count = summary.new.len()));
    }
    for r in &summary.rejected {
        eprintln!("{}", t!("inbox-rejected", detail = r));
    }
    for w in &summary.resendable {
        eprintln!("{}", printable_line(w));
    }
    for d in &summary.not_for_this_desk {
        eprintln!("kept without content {}", printable_line(d));
    }
    for d in &summary.deferred {
        eprintln!("{}", t!("inbox-deferred", detail = d));
    }
    crate::print_key_changes(client);
    Ok(())
}

/// `inbox sync` sends this desk's new access-log entries to the organisation's other desks (for
/// a data subject's access report); a failure is said and left for the next sync.
async fn share(client: &Client, session: &Session) {
    match silta_client::claims::share_access_log(client, &session.log, &session.who, None).await {
        Ok(shared) => {
            if shared.entries > 0 {
                eprintln!(
                    "{}",
                    t!(
                        "sync-shared",
                        entries = shared.entries.to_string(),
                        messages = shared.messages.len().to_string()
                    )
                );
            }
            for f in &shared.failed {
                eprintln!("{}", t!("sync-share-failed", why = printable_line(f)));
            }
        }
        Err(e) => eprintln!(
            "{}",
            t!("sync-share-failed", why = printable_line(&e.to_string()))
        ),
    }
}

pub(crate) fn principal_of(config: &ClientConfig) -> Result<String, Failure> {
    let cert = std::fs::read(&config.cert)
        .map_err(|e| Failure::usage(format!("{}: {e}", config.cert.display())))?;
    let (me, _) = silta_client::client::own_identity(&cert)?;
    Ok(me.to_string())
}

fn short(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// As JSON with every object's keys in order (as `--json` always printed them, nested
/// delivery states included).
fn sorted(r: &MessageRecord) -> Value {
    serde_json::to_value(r).unwrap_or_default()
}

/// The case as records show it: 32 hex digits, or empty without a case.
fn case_text(r: &MessageRecord) -> String {
    if r.case.is_none() {
        String::new()
    } else {
        r.case.to_string()
    }
}

fn brief(r: &MessageRecord) -> Value {
    json!({
        "message_id": r.message_id, "case": case_text(r), "kind": r.kind, "from": r.from,
        "urgency": r.urgency, "received_at": r.received_at, "state": r.state,
        "handled_elsewhere": r.handled_elsewhere, "sealed_before_device": r.sealed_before_device,
    })
}

fn print_list(
    rows: &[MessageRecord],
    held: &std::collections::BTreeMap<silta_client::ids::CaseRef, silta_client::claims::Holder>,
) {
    if rows.is_empty() {
        println!("{}", t!("inbox-no-messages"));
        return;
    }
    let table: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let case = case_text(r);
            [
                short(&r.message_id.to_string(), 13),
                if case.is_empty() {
                    t!("case-none")
                } else {
                    short(&case, 12)
                },
                kind_label(&r.kind),
                printable_line(&r.from),
                urgency_label(&r.urgency).to_uppercase(),
                printable_line(r.received_at.as_deref().unwrap_or_default()),
                r.handled_line()
                    .map_or_else(|| state_label(r.state), |l| printable_line(&l)),
                held.get(&r.case)
                    .map_or_else(|| "—".to_owned(), |h| printable_line(&h.person)),
            ]
        })
        .collect();
    print_table(
        &[
            &t!("col-id"),
            &t!("col-case"),
            &t!("col-kind"),
            &t!("col-from"),
            &t!("col-urgency"),
            &t!("col-received"),
            &t!("col-state"),
            &t!("col-held-by"),
        ],
        &table,
    );
}

/// A label and its value on one line, the values aligned (`  from:        centre/x`).
fn field(label: &str, value: &str) {
    let label = format!("{label}:");
    println!("  {label:<12} {value}");
}

fn print_message(r: &MessageRecord) {
    let dir = if r.is_received() {
        t!("show-received")
    } else {
        t!("show-sent")
    };
    println!("{} {} — {dir}", kind_label(&r.kind), r.message_id);
    field(&t!("show-from"), &printable_line(&r.from));
    field(&t!("show-to"), &printable_line(&r.to.join(", ")));
    field(
        &t!("show-case"),
        &if r.case.is_none() {
            t!("show-case-none")
        } else {
            r.case.to_string()
        },
    );
    field(
        &t!("show-urgency"),
        &format!(
            "{}    {}: {}",
            urgency_label(&r.urgency),
            t!("show-legal-basis"),
            legal_basis_label(&r.legal_basis)
        ),
    );
    if let Some(id) = r.in_reply_to {
        field(&t!("show-in-reply-to"), &id.to_string());
    }
    field(
        &t!("show-written"),
        &t!(
            "show-written-accepted",
            written = &r.created_at,
            accepted = &r.accepted_at,
            index = r.log_index
        ),
    );
    let opt = |v: &Option<String>| printable_line(v.as_deref().unwrap_or_default());
    if r.is_received() {
        field(
            &t!("show-state"),
            &format!(
                "{}{}",
                state_label(r.state),
                match &r.acknowledged_by {
                    Some(by) if !by.is_empty() => format!(
                        " {}",
                        t!("show-acked-by", who = by, time = opt(&r.acknowledged_at))
                    ),
                    _ => String::new(),
                }
            ),
        );
        if let Some(line) = r.handled_line() {
            field(&t!("show-handled"), &printable_line(&line));
        }
        if !r.sealed_before_device {
            field(
                &t!("show-signed-by"),
                &t!(
                    "show-signed-by-device",
                    from = &r.from,
                    device = opt(&r.from_device),
                    key = opt(&r.sender_key)
                ),
            );
        }
    } else if let Some(m) = &r.recipients {
        if let Some(of) = r.resend_of {
            field(&t!("show-resends"), &of.to_string());
        }
        for (who, st) in m {
            println!(
                "  {}: {}{}{}",
                printable_line(who),
                silta_client::i18n::short_label(lang(), "DELIVERY_STATE_", st.state.as_str()),
                Some(&st.reason)
                    .filter(|d| !d.is_empty() && st.resendable())
                    .map(|d| format!(" [{}]", printable_line(d)))
                    .unwrap_or_default(),
                Some(&st.detail)
                    .filter(|d| !d.is_empty())
                    .map(|d| format!(" ({})", printable_line(d)))
                    .unwrap_or_default()
            );
            let resent = r.resent_as.iter().find(|x| x.to.contains(who));
            match resent {
                Some(x) => println!(
                    "    {}",
                    t!(
                        "show-resent-as",
                        id = x.message_id.to_string(),
                        time = &x.at
                    )
                ),
                None if !st.what_to_do.is_empty() => {
                    println!("    {}", printable_line(&st.what_to_do))
                }
                None => {}
            }
        }
    }
    if let Some(i) = crate::page::interpreter(r, lang()) {
        println!("  {}", i);
    }
    println!("  ---");
    for row in crate::page::body_rows(r, lang()) {
        let pad = " ".repeat(2 + 2 * row.depth);
        match &row.value {
            Some(v) if row.label.is_empty() => println!("{pad}- {v}"),
            Some(v) => println!("{pad}{}: {v}", row.label),
            None if row.label.is_empty() => println!("{pad}-"),
            None => println!("{pad}{}:", row.label),
        }
    }
}

fn lang() -> silta_client::i18n::Lang {
    silta_client::i18n::current()
}

/// A kind's label in the reader's language (`referral` -> "Referral").
pub(crate) fn kind_label(kind: &str) -> String {
    silta_client::i18n::short_label(lang(), "MESSAGE_KIND_", kind)
}

/// An urgency's label in the reader's language.
pub(crate) fn urgency_label(u: &str) -> String {
    silta_client::i18n::short_label(lang(), "URGENCY_", u)
}

/// A legal basis's label in the reader's language.
pub(crate) fn legal_basis_label(b: &str) -> String {
    silta_client::i18n::short_label(lang(), "LEGAL_BASIS_", b)
}

/// A kept message's state in the reader's language.
pub(crate) fn state_label(s: Option<RecordState>) -> String {
    match s {
        Some(RecordState::New) => t!("record-state-new"),
        Some(RecordState::Acknowledged) => t!("record-state-acknowledged"),
        Some(RecordState::Sent) => t!("record-state-sent"),
        Some(RecordState::ExpiredAtRelay) => t!("record-state-expired-at-relay"),
        None => String::new(),
    }
}

pub(crate) async fn case(config: &ClientConfig, command: CaseCommand) -> Result<(), Failure> {
    match command {
        CaseCommand::New { label, json } => {
            let me = principal_of(config)?;
            if !me.starts_with("assistance/") {
                return Err(Failure::usage(t!(
                    "case-new-not-assistance",
                    principal = &me
                )));
            }
            let state = State::open(&config.state_dir)?;
            let mut case = [0u8; 16];
            getrandom::fill(&mut case).map_err(|e| Failure::failed(e.to_string()))?;
            let case_hex = hex::encode(case);
            let record = json!({
                "case": case_hex,
                "label": label.clone().unwrap_or_default(),
                "issued_at": silta_client::times::now_rfc3339(),
                "issued_by": current_user(),
            });
            state.put_case(&case, &record)?;
            if json {
                print_json(&record);
            } else {
                println!("{case_hex}");
                eprintln!("{}", t!("case-new-issued"));
            }
        }
        CaseCommand::List => {
            let state = State::open(&config.state_dir)?;
            crate::claims_cmd::list(&state)?;
        }
        command @ (CaseCommand::Claim { .. }
        | CaseCommand::Handover { .. }
        | CaseCommand::Release { .. }
        | CaseCommand::Show { .. }) => {
            crate::claims_cmd::run(config, command).await?;
        }
        command @ (CaseCommand::Close { .. } | CaseCommand::Reopen { .. }) => {
            crate::retention_cmd::case(config, command)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn got(r: Result<String, Failure>) -> String {
        r.unwrap_or_else(|f| panic!("{}", f.message))
    }

    #[test]
    fn a_purpose_is_remembered_per_case_and_never_covers_another() {
        // What this test controls: no $SILTA_PURPOSE, no terminal to ask at.
        if std::env::var_os("SILTA_PURPOSE").is_some() || std::io::stdin().is_terminal() {
            eprintln!("skipped: SILTA_PURPOSE is set or stdin is a terminal");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = ([0xa; 16], [0xb; 16]);
        let scope = |case: Option<&[u8; 16]>| case.map_or(Scope::General, |c| Scope::Case(*c));
        let p = |flag: Option<&str>, case: Option<&[u8; 16]>| {
            session_purpose(dir.path(), flag.map(str::to_owned), "anna", scope(case))
        };
        assert_eq!(got(p(Some("assessing A"), Some(&a))), "assessing A");
        assert_eq!(got(p(None, Some(&a))), "assessing A");
        // Not for case B, and not for listing either.
        let refused = p(None, Some(&b)).unwrap_err();
        assert_eq!(refused.code, crate::EX_USAGE);
        assert!(
            refused.message.contains(&hex::encode(b)),
            "{}",
            refused.message
        );
        assert!(p(None, None).is_err());
        // A general purpose (listing) does not cover a case.
        assert_eq!(got(p(Some("triage"), None)), "triage");
        assert_eq!(got(p(None, None)), "triage");
        assert!(p(None, Some(&b)).is_err());
        assert_eq!(got(p(None, Some(&a))), "assessing A");
        // Another person's purpose is theirs.
        assert!(session_purpose(dir.path(), None, "ben", Scope::Case(a)).is_err());
        // The earlier form (one purpose for everything) counts as the general purpose only.
        let later = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
        std::fs::write(
            dir.path()
                .join(format!("sessions/u-{}.json", hex::encode("carl"))),
            json!({"purpose": "old session", "expires": later}).to_string(),
        )
        .unwrap();
        assert_eq!(
            got(session_purpose(dir.path(), None, "carl", Scope::General)),
            "old session"
        );
        assert!(session_purpose(dir.path(), None, "carl", Scope::Case(a)).is_err());
        // Expired: asked again.
        let file = dir
            .path()
            .join(format!("sessions/u-{}.json", hex::encode("anna")));
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        v["cases"][hex::encode(a)]["expires"] = json!(1);
        std::fs::write(&file, v.to_string()).unwrap();
        assert!(p(None, Some(&a)).is_err());
    }

    #[test]
    fn a_message_without_a_case_has_its_own_purpose_and_names_have_their_own_files() {
        if std::env::var_os("SILTA_PURPOSE").is_some() || std::io::stdin().is_terminal() {
            eprintln!("skipped: SILTA_PURPOSE is set or stdin is a terminal");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (m, n) = ([0x1; 16], [0x2; 16]);
        let p = |who: &str, flag: Option<&str>, scope: Scope| {
            session_purpose(dir.path(), flag.map(str::to_owned), who, scope)
        };
        // The listing purpose does not cover a message without a case.
        assert_eq!(got(p("anna", Some("triage"), Scope::General)), "triage");
        let refused = p("anna", None, Scope::Message(m)).unwrap_err();
        assert_eq!(refused.code, crate::EX_USAGE);
        assert!(
            refused.message.contains(&hex::encode(m)),
            "{}",
            refused.message
        );
        // Nor does a case's purpose cover a message whose id has the same bytes, or another one.
        assert_eq!(got(p("anna", Some("case m"), Scope::Case(m))), "case m");
        assert!(p("anna", None, Scope::Message(m)).is_err());
        assert_eq!(
            got(p("anna", Some("reading m"), Scope::Message(m))),
            "reading m"
        );
        assert_eq!(got(p("anna", None, Scope::Message(m))), "reading m");
        assert!(p("anna", None, Scope::Message(n)).is_err());
        // anna.k and anna_k are two people with two files.
        assert_eq!(got(p("anna.k", Some("hers"), Scope::General)), "hers");
        assert!(p("anna_k", None, Scope::General).is_err());
    }
}

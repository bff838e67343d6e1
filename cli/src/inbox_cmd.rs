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

/// The purpose of this session: `--purpose`, `$SILTA_PURPOSE`, the session file, or asked.
fn session_purpose(state_dir: &Path, flag: Option<String>, who: &str) -> Result<String, Failure> {
    let dir = state_dir.join("sessions");
    let file = dir.join(format!(
        "{}.json",
        who.chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            })
            .collect::<String>()
    ));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let save = |purpose: &str| -> Result<(), Failure> {
        silta_client::fsutil::create_private_dir(&dir).map_err(Failure::failed)?;
        let v = json!({ "purpose": purpose, "expires": now + SESSION_HOURS * 3600 });
        silta_client::fsutil::write_atomic(&file, v.to_string().as_bytes()).map_err(Failure::failed)
    };
    if let Some(p) = flag.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()) {
        save(&p)?;
        return Ok(p);
    }
    if let Ok(p) = std::env::var("SILTA_PURPOSE")
        && !p.trim().is_empty()
    {
        return Ok(p.trim().to_owned());
    }
    if let Ok(text) = std::fs::read_to_string(&file)
        && let Ok(v) = serde_json::from_str::<Value>(&text)
        && v["expires"].as_i64().is_some_and(|e| e > now)
        && let Some(p) = v["purpose"].as_str()
    {
        return Ok(p.to_owned());
    }
    if std::io::stdin().is_terminal() {
        eprint!("{} ", t!("inbox-purpose-prompt"));
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Failure::failed(e.to_string()))?;
        let p = line.trim().to_owned();
        if !p.is_empty() {
            save(&p)?;
            return Ok(p);
        }
    }
    Err(Failure {
        code: crate::EX_USAGE,
        message: t!("inbox-purpose-missing"),
        hint: Some(t!("inbox-purpose-hint")),
    })
}

/// Who is reading, for which principal, and why: what every access-log entry of a command says.
struct Session {
    log: AccessLog,
    who: String,
    me: String,
    purpose: String,
}

impl Session {
    fn start(config: &ClientConfig, purpose: Option<String>) -> Result<Self, Failure> {
        let who = current_user();
        Ok(Session {
            purpose: session_purpose(&config.state_dir, purpose, &who)?,
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
            sync(&client, &session, wait).await
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
        InboxCommand::AccessReport { case, json } => access_report(config, purpose, &case, json),
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
        println!("nothing due");
        return Ok(());
    }
    let rows: Vec<[String; 6]> = items
        .iter()
        .map(|i| {
            [
                if i.overdue { "OVERDUE" } else { "" }.to_owned(),
                i.due.clone(),
                i.what.to_owned(),
                i.kind.clone(),
                i.case.clone(),
                i.message_id.clone(),
            ]
        })
        .collect();
    print_table(&["", "due", "what", "from message", "case", "id"], &rows);
    Ok(())
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
    let rows = match fetch {
        None => {
            let state = State::open(&config.state_dir)?;
            inbox::list(&state, new)?
        }
        Some(wait) => {
            let client = Client::start(config).await?;
            sync(&client, &session, wait).await?;
            inbox::list(client.state(), new)?
        }
    };
    if !rows.is_empty() {
        let ids: Vec<Vec<u8>> = rows.iter().map(inbox::id_bytes).collect();
        session.record(Action::Listed, &[], &ids)?;
    }
    if json {
        let brief: Vec<Value> = rows.iter().map(brief).collect();
        print_json(&brief);
    } else {
        print_list(&rows);
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
    let session = Session::start(config, purpose)?;
    let state = State::open(&config.state_dir)?;
    let record = inbox::find(&state, id).map_err(Failure::usage)?;
    session.record(
        Action::Shown,
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
    let session = Session::start(config, purpose)?;
    let case = a_case(case)?;
    let state = State::open(&config.state_dir)?;
    let records = inbox::thread(&state, &case)?;
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
    let session = Session::start(config, purpose)?;
    let case = a_case(case)?;
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
                e.who.clone(),
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
    for d in &summary.deferred {
        eprintln!("{}", t!("inbox-deferred", detail = d));
    }
    crate::print_key_changes(client);
    Ok(())
}

fn principal_of(config: &ClientConfig) -> Result<String, Failure> {
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
    })
}

fn print_list(rows: &[MessageRecord]) {
    if rows.is_empty() {
        println!("{}", t!("inbox-no-messages"));
        return;
    }
    let table: Vec<[String; 7]> = rows
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
                state_label(r.state),
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
        field(
            &t!("show-signed-by"),
            &t!(
                "show-signed-by-device",
                from = &r.from,
                device = opt(&r.from_device),
                key = opt(&r.sender_key)
            ),
        );
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
            let rows: Vec<[String; 4]> = state
                .cases()?
                .iter()
                .map(|c| {
                    let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                    [s("case"), s("issued_at"), s("issued_by"), s("label")]
                })
                .collect();
            print_table(
                &[
                    &t!("col-case"),
                    &t!("col-issued"),
                    &t!("col-by"),
                    &t!("col-label"),
                ],
                &rows,
            );
        }
        command @ (CaseCommand::Close { .. } | CaseCommand::Reopen { .. }) => {
            crate::retention_cmd::case(config, command)?;
        }
    }
    Ok(())
}

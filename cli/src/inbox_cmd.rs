//! `silta inbox ...` and `silta case ...`.

use std::{io::IsTerminal as _, path::Path, time::Duration};

use serde_json::{Value, json};
use silta_client::text::{printable, printable_line};
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
    cli::{CaseCommand, InboxCommand},
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
        eprint!("Purpose of this session (recorded in the access log with every case you open): ");
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
        message: "the access log needs the purpose of this session".into(),
        hint: Some("add --purpose \"...\" (remembered for 8 hours) or set SILTA_PURPOSE".into()),
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
        InboxCommand::Show { id, json } => show(config, purpose, &id, json),
        InboxCommand::Thread { case, json } => thread(config, purpose, &case, json),
        InboxCommand::Ack { ids } => ack(config, &ids).await,
        InboxCommand::AccessReport { case, json } => access_report(config, purpose, &case, json),
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
) -> Result<(), Failure> {
    let session = Session::start(config, purpose)?;
    let state = State::open(&config.state_dir)?;
    let record = inbox::find(&state, id).map_err(Failure::usage)?;
    session.record(
        Action::Shown,
        &inbox::case_bytes(&record),
        &[inbox::id_bytes(&record)],
    )?;
    if json {
        print_json(&sorted(&record));
    } else {
        print_message(&record);
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
        return Err(Failure::failed(format!(
            "no messages of case {} here",
            hex::encode(case)
        )));
    }
    let ids: Vec<Vec<u8>> = records.iter().map(inbox::id_bytes).collect();
    session.record(Action::Thread, &case, &ids)?;
    if json {
        print_json(&records.iter().map(sorted).collect::<Value>());
    } else {
        println!(
            "case {} — {} message(s)\n",
            hex::encode(case),
            records.len()
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
        return Err(Failure::usage(
            "case: give a case reference (32 hex digits); messages without a case (\"none\") \
             belong to no one case: `silta inbox list` shows them, `silta inbox show ID` opens one"
                .to_owned(),
        ));
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
                "NOT acknowledged: {} {} from {} expired at the relay before it was acknowledged. \
                 The sender was told it EXPIRED and may send it again: call or answer {} so they \
                 know it arrived here. (Marked expired-at-relay; retention deletes it by its rules.)",
                printable_line(&done.kind),
                done.message_id,
                printable_line(&done.from),
                printable_line(&done.from)
            );
            expired.push(done.message_id.to_string());
            continue;
        }
        println!(
            "acknowledged {} {} from {} (the sender sees it)",
            printable_line(&done.kind),
            done.message_id,
            printable_line(&done.from)
        );
    }
    if expired.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "{} message(s) expired at the relay and cannot be acknowledged: {}",
            expired.len(),
            expired.join(", ")
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
            note = format!("\nnote: only entries recorded under the case are shown ({e})");
        }
    }
    let torn = match log.incomplete_lines() {
        Ok(lines) if !lines.is_empty() => format!(
            "\nnote: line(s) {lines:?} of the log are writes cut short (a crash or power loss); they hold no entry"
        ),
        _ => String::new(),
    };
    let entries = log.for_case(&case, &ids).map_err(|e| Failure {
        code: 2,
        message: format!("ACCESS LOG DAMAGED: {e}"),
        hint: Some("keep the file as it is and report this".into()),
    })?;
    if json {
        print_json(&entries);
        return Ok(());
    }
    println!(
        "Access to case {} recorded by {} ({})\n",
        hex::encode(case),
        session.me,
        log.path().display()
    );
    print_access_entries(&entries);
    println!(
        "\n{} entries; the log's hash chain is intact.{note}{torn}",
        entries.len()
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
                    n => format!("{n} messages"),
                },
                if e.recipients.is_empty() {
                    e.purpose.clone()
                } else {
                    format!("{} (to {})", e.purpose, e.recipients.join(", "))
                },
            ]
        })
        .collect();
    print_table(&["when (UTC)", "who", "what", "messages", "purpose"], &rows);
}

async fn sync(client: &Client, session: &Session, wait: u64) -> Result<(), Failure> {
    let summary = inbox::sync(client, Duration::from_secs(wait), &session.reader()).await?;
    if !summary.new.is_empty() {
        eprintln!("{} new message(s)", summary.new.len());
    }
    for r in &summary.rejected {
        eprintln!("rejected a message {}", printable_line(r));
    }
    for w in &summary.resendable {
        eprintln!("{}", printable_line(w));
    }
    for d in &summary.not_for_this_desk {
        eprintln!("kept without content {}", printable_line(d));
    }
    for d in &summary.deferred {
        eprintln!(
            "could not process a message now (left for a later sync; the others were not held up) {}",
            printable_line(d)
        );
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
        "handled_elsewhere": r.handled_elsewhere, "sealed_before_device": r.sealed_before_device,
    })
}

fn print_list(rows: &[MessageRecord]) {
    if rows.is_empty() {
        println!("no messages");
        return;
    }
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let case = case_text(r);
            [
                short(&r.message_id.to_string(), 13),
                if case.is_empty() {
                    "(none)".into()
                } else {
                    short(&case, 12)
                },
                printable_line(&r.kind),
                printable_line(&r.from),
                printable_line(&r.urgency).to_uppercase(),
                printable_line(r.received_at.as_deref().unwrap_or_default()),
                r.handled_line()
                    .map(|l| printable_line(&l))
                    .unwrap_or_else(|| r.state.map(|s| s.as_str()).unwrap_or_default().to_owned()),
            ]
        })
        .collect();
    print_table(
        &[
            "id",
            "case",
            "kind",
            "from",
            "urgency",
            "received (UTC)",
            "state",
        ],
        &table,
    );
}

fn print_message(r: &MessageRecord) {
    let dir = if r.is_received() { "received" } else { "sent" };
    println!("{} {} — {dir}", printable_line(&r.kind), r.message_id);
    println!("  from:        {}", printable_line(&r.from));
    println!("  to:          {}", printable_line(&r.to.join(", ")));
    println!(
        "  case:        {}",
        if r.case.is_none() {
            "(none yet)".into()
        } else {
            r.case.to_string()
        }
    );
    println!(
        "  urgency:     {}    legal basis: {}",
        printable_line(&r.urgency),
        printable_line(&r.legal_basis)
    );
    if let Some(id) = r.in_reply_to {
        println!("  in reply to: {id}");
    }
    println!(
        "  written:     {}    accepted by the relay: {} (log index {})",
        printable_line(&r.created_at),
        printable_line(&r.accepted_at),
        r.log_index
    );
    let opt = |v: &Option<String>| printable_line(v.as_deref().unwrap_or_default());
    if r.is_received() {
        println!(
            "  state:       {}{}",
            r.state.map(|s| s.as_str()).unwrap_or_default(),
            match &r.acknowledged_by {
                Some(by) if !by.is_empty() =>
                    format!(" by {} at {}", printable_line(by), opt(&r.acknowledged_at)),
                _ => String::new(),
            }
        );
        if let Some(line) = r.handled_line() {
            println!("  handled:     {}", printable_line(&line));
        }
        if !r.sealed_before_device {
            println!(
                "  signed by:   {} device {} (key {})",
                printable_line(&r.from),
                opt(&r.from_device),
                opt(&r.sender_key)
            );
        }
    } else if let Some(m) = &r.recipients {
        if let Some(of) = r.resend_of {
            println!("  re-sends:    {of}");
        }
        for (who, st) in m {
            println!(
                "  {}: {}{}{}",
                printable_line(who),
                st.state,
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
                    "    re-sent as {} at {}",
                    x.message_id,
                    printable_line(&x.at)
                ),
                None if !st.what_to_do.is_empty() => {
                    println!("    {}", printable_line(&st.what_to_do))
                }
                None => {}
            }
        }
    }
    println!("  ---");
    if let Some(body) = r.payload.as_object().and_then(|o| o.values().next()) {
        render(body, 2);
    }
}

fn render(v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                match v {
                    Value::Object(_) | Value::Array(_) => {
                        println!("{pad}{k}:");
                        render(v, indent + 2);
                    }
                    _ => println!("{pad}{k}: {}", scalar(v)),
                }
            }
        }
        Value::Array(a) => {
            for v in a {
                match v {
                    Value::Object(_) | Value::Array(_) => {
                        println!("{pad}-");
                        render(v, indent + 2);
                    }
                    _ => println!("{pad}- {}", scalar(v)),
                }
            }
        }
        other => println!("{pad}{}", scalar(other)),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => printable(s),
        other => other.to_string(),
    }
}

pub(crate) async fn case(config: &ClientConfig, command: CaseCommand) -> Result<(), Failure> {
    match command {
        CaseCommand::New { label, json } => {
            let me = principal_of(config)?;
            if !me.starts_with("assistance/") {
                return Err(Failure::usage(format!(
                    "case references are issued by the Assistance System; {me} uses the one it was given"
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
                eprintln!(
                    "new case reference issued; use it with --case (it says nothing about the person)"
                );
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
            print_table(&["case", "issued (UTC)", "by", "label"], &rows);
        }
        command @ (CaseCommand::Close { .. } | CaseCommand::Reopen { .. }) => {
            crate::retention_cmd::case(config, command)?;
        }
    }
    Ok(())
}

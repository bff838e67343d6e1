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

/// The purpose of this command's access to `case` (or, without a case, of listing and syncing,
/// which show no content): `--purpose` (for this case only; remembered for it), `$SILTA_PURPOSE`
/// (this command only), the purpose the same OS user gave for this case within 8 hours, or asked
/// (on a terminal). A purpose given for one case never covers another.
pub(crate) fn session_purpose(
    state_dir: &Path,
    flag: Option<String>,
    who: &str,
    case: Option<&[u8; 16]>,
) -> Result<String, Failure> {
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
    // {"general": {"purpose", "expires"}, "cases": {"<case hex>": {"purpose", "expires"}}};
    // the earlier form, one {"purpose", "expires"} for everything, counts as the general one.
    let mut saved: Value = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({}));
    if saved.get("purpose").is_some() {
        saved = json!({ "general": saved });
    }
    let slot = case.map(hex::encode);
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
    let what = match &slot {
        Some(c) => format!("your access to case {c}"),
        None => "this session (listing, fetching)".to_owned(),
    };
    if std::io::stdin().is_terminal() {
        eprint!("Purpose of {what} (recorded in the access log): ");
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
        message: format!("the access log needs the purpose of {what}"),
        hint: Some(match &slot {
            Some(_) => "add --purpose \"...\" (for this case only; remembered for it for 8 hours) or set SILTA_PURPOSE".into(),
            None => "add --purpose \"...\" (remembered for 8 hours) or set SILTA_PURPOSE".into(),
        }),
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
    /// A session for listing and fetching (a general purpose; no content shown).
    fn start(config: &ClientConfig, purpose: Option<String>) -> Result<Self, Failure> {
        Self::for_case(config, purpose, None)
    }

    /// A session touching `case` (its own purpose; none covers another case).
    fn for_case(
        config: &ClientConfig,
        purpose: Option<String>,
        case: Option<&[u8; 16]>,
    ) -> Result<Self, Failure> {
        let who = current_user();
        Ok(Session {
            purpose: session_purpose(&config.state_dir, purpose, &who, case)?,
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
        InboxCommand::Show { id, json } => show(config, purpose, &id, json),
        InboxCommand::Thread { case, json } => thread(config, purpose, &case, json),
        InboxCommand::Ack { ids } => ack(config, &ids).await,
        InboxCommand::AccessReport {
            case,
            data_subject: true,
            with_staff,
            json,
        } => {
            let case = a_case(&case)?;
            let session = Session::for_case(config, purpose, Some(&case))?;
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
) -> Result<(), Failure> {
    let state = State::open(&config.state_dir)?;
    let record = inbox::find(&state, id).map_err(Failure::usage)?;
    let case = (!record.case.is_none()).then_some(record.case.0);
    let session = Session::for_case(config, purpose, case.as_ref())?;
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
    let case = a_case(case)?;
    let session = Session::for_case(config, purpose, Some(&case))?;
    let state = State::open(&config.state_dir)?;
    let mut records = inbox::thread(&state, &case)?;
    // Access-log shares are the desks' bookkeeping, not the case's correspondence.
    records.retain(|r| r.kind != "access-log-share");
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
            // The desks' bookkeeping: a claim is one line; an access-log share is not shown.
            if silta_client::claims::is_internal(r) {
                for c in silta_client::claims::claims(std::slice::from_ref(r), &r.case) {
                    println!("* {}\n", c.line());
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
    let case = a_case(case)?;
    let session = Session::for_case(config, purpose, Some(&case))?;
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
                e.person(),
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
    for d in &summary.deferred {
        eprintln!(
            "could not process a message now (left for a later sync; the others were not held up) {}",
            printable_line(d)
        );
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
                    "shared {} access-log entries with the other desks ({} message(s))",
                    shared.entries,
                    shared.messages.len()
                );
            }
            for f in &shared.failed {
                eprintln!(
                    "could not share this desk's access log (tried again at the next sync): {}",
                    printable_line(f)
                );
            }
        }
        Err(e) => eprintln!(
            "could not share this desk's access log (tried again at the next sync): {}",
            printable_line(&e.to_string())
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
    })
}

fn print_list(
    rows: &[MessageRecord],
    held: &std::collections::BTreeMap<silta_client::ids::CaseRef, silta_client::claims::Holder>,
) {
    if rows.is_empty() {
        println!("no messages");
        return;
    }
    let table: Vec<[String; 8]> = rows
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
                r.state.map(|s| s.as_str()).unwrap_or_default().to_owned(),
                held.get(&r.case)
                    .map_or_else(|| "—".to_owned(), |h| printable_line(&h.person)),
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
            "held by",
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
        println!(
            "  signed by:   {} device {} (key {})",
            printable_line(&r.from),
            opt(&r.from_device),
            opt(&r.sender_key)
        );
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
        let p = |flag: Option<&str>, case: Option<&[u8; 16]>| {
            session_purpose(dir.path(), flag.map(str::to_owned), "anna", case)
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
        assert!(session_purpose(dir.path(), None, "ben", Some(&a)).is_err());
        // The earlier form (one purpose for everything) counts as the general purpose only.
        let later = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
        std::fs::write(
            dir.path().join("sessions/carl.json"),
            json!({"purpose": "old session", "expires": later}).to_string(),
        )
        .unwrap();
        assert_eq!(
            got(session_purpose(dir.path(), None, "carl", None)),
            "old session"
        );
        assert!(session_purpose(dir.path(), None, "carl", Some(&a)).is_err());
        // Expired: asked again.
        let file = dir.path().join("sessions/anna.json");
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        v["cases"][hex::encode(a)]["expires"] = json!(1);
        std::fs::write(&file, v.to_string()).unwrap();
        assert!(p(None, Some(&a)).is_err());
    }
}

//! `silta case claim|handover|release|show`, the "held by" column of `silta case list`, and
//! `silta inbox access-report CASE --data-subject` (merged across the organisation's desks).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use silta_client::{
    ClientConfig,
    access::{Access, AccessLog, Action, declared_user, os_user},
    claims::{self, ClaimAction},
    client::Client,
    ids::CaseRef,
    state::State,
    text::printable_line,
};

use crate::{
    Failure,
    cli::CaseCommand,
    output::{print_json, print_table},
};

/// `case list`: the cases issued here and those of kept messages, with who holds each.
pub(crate) fn list(state: &State) -> Result<(), Failure> {
    let records = state.messages()?;
    let held = claims::holders(&records);
    let mut cases: BTreeMap<CaseRef, [String; 3]> = BTreeMap::new();
    for c in state.cases()? {
        let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
        if let Ok(case) = s("case").parse::<CaseRef>() {
            cases.insert(case, [s("issued_at"), s("issued_by"), s("label")]);
        }
    }
    for r in records.iter().filter(|r| !r.case.is_none()) {
        cases
            .entry(r.case)
            .or_insert_with(|| ["-".into(), "-".into(), String::new()]);
    }
    let rows: Vec<[String; 5]> = cases
        .into_iter()
        .map(|(case, [at, by, label])| {
            let holder = held.get(&case).map_or_else(
                || "—".to_owned(),
                |h| {
                    let who = if h.desk.is_empty() {
                        h.person.clone()
                    } else {
                        format!("{} (desk {})", h.person, h.desk)
                    };
                    if h.forced {
                        format!("{who} {}", t!("case-held-forced"))
                    } else {
                        who
                    }
                },
            );
            [case.to_string(), at, by, holder, label]
        })
        .collect();
    print_table(
        &[
            &t!("col-case"),
            &t!("col-issued"),
            &t!("col-by"),
            &t!("col-held-by"),
            &t!("col-label"),
        ],
        &rows,
    );
    Ok(())
}

pub(crate) async fn run(config: &ClientConfig, command: CaseCommand) -> Result<(), Failure> {
    let (case, action, to, note, force) = match command {
        CaseCommand::Claim { case, note, force } => (case, ClaimAction::Claim, None, note, force),
        CaseCommand::Handover {
            case,
            to,
            note,
            force,
        } => (case, ClaimAction::Handover, Some(to), note, force),
        CaseCommand::Release { case, note, force } => {
            (case, ClaimAction::Release, None, note, force)
        }
        CaseCommand::Show { case, json } => return show(config, &case, json),
        _ => unreachable!("the other case commands are handled elsewhere"),
    };
    let case = a_case(&case)?;
    let to = match to.map(|t| t.trim().to_owned()) {
        Some(t) if t.is_empty() || t.contains(char::is_whitespace) => {
            return Err(Failure::usage(
                "--to: the colleague's user name, as the access log names them (no spaces)",
            ));
        }
        other => other.unwrap_or_default(),
    };
    let client = Client::start(config).await?;
    let me = client.principal().clone();
    let desk = client.keys().device_id().to_owned();
    let os = os_user();
    let person = match declared_user() {
        Some(d) if d != os.name => format!("{} ({d})", os.name),
        _ => os.name.clone(),
    };
    let records = client.state().messages()?;
    let current = claims::holder(&claims::claims(&records, &CaseRef(case)));
    // Only the holder hands over or releases; a case someone else holds is not taken silently.
    // The holder is the user at the desk (the same user name at another machine is not them).
    let mine = current.as_ref().is_some_and(|h| h.is(&os.name, &desk));
    let refused = match action {
        ClaimAction::Claim => current.as_ref().is_some_and(|_| !mine),
        ClaimAction::Handover | ClaimAction::Release => !mine,
    };
    let held_by = current.as_ref().map_or_else(
        || "nobody".to_owned(),
        |h| format!("{} since {}", printable_line(&h.person), h.since),
    );
    if refused && !force {
        return Err(Failure {
            code: crate::EX_USAGE,
            message: format!(
                "case {} is held by {held_by} (as synced here), not by you ({})",
                hex::encode(case),
                os.name
            ),
            hint: Some(
                "run `silta inbox sync` for the latest claims; add --force to do it anyway (the claim's note and the access log say it was forced)"
                    .into(),
            ),
        });
    }
    let mut note = note.unwrap_or_default().trim().to_owned();
    let mut purpose = match action {
        ClaimAction::Claim => "case claim: taking the case".to_owned(),
        ClaimAction::Handover => format!("case claim: handing the case to {to}"),
        ClaimAction::Release => "case claim: releasing the case".to_owned(),
    };
    if refused {
        let forced = format!("[forced; held by {}]", holder_label(current.as_ref()));
        note = if note.is_empty() {
            forced.clone()
        } else {
            format!("{forced} {note}")
        };
        purpose = format!("{purpose} {forced}");
    }
    let draft = claims::claim_draft(&me, case, action, &person, &desk, &to, &note);
    let sent = crate::send_cmd::submit_as(config, &client, &draft, purpose).await?;
    let done = match action {
        ClaimAction::Claim => format!(
            "you ({person}) hold case {} at desk {desk}",
            hex::encode(case)
        ),
        ClaimAction::Handover => format!("case {} handed over to {to}", hex::encode(case)),
        ClaimAction::Release => format!("case {} released: nobody holds it", hex::encode(case)),
    };
    println!(
        "{done} (claim {} accepted at log index {}; the other desks see it at their next sync)",
        uuid::Uuid::from_bytes(sent.message_id),
        sent.receipt.log_index
    );
    Ok(())
}

fn holder_label(h: Option<&claims::Holder>) -> String {
    h.map_or_else(|| "nobody".to_owned(), |h| h.person.clone())
}

/// `case show`: the holder and the claim history, from what was synced here.
fn show(config: &ClientConfig, case: &str, json: bool) -> Result<(), Failure> {
    let case = CaseRef(a_case(case)?);
    let state = State::open(&config.state_dir)?;
    let history = claims::claims(&state.messages()?, &case);
    let holder = claims::holder(&history);
    if json {
        print_json(&json!({
            "case": case.to_string(),
            "held_by": holder.as_ref().map(|h| json!({"person": h.person, "desk": h.desk, "since": h.since, "forced": h.forced})),
            "history": history.iter().map(|c| json!({
                "message_id": c.message_id.to_string(), "log_index": c.log_index, "at": c.at,
                "line": c.line(), "forced_over": c.forced,
            })).collect::<Vec<Value>>(),
        }));
        return Ok(());
    }
    println!("case {case}");
    match &holder {
        Some(h) if h.desk.is_empty() => {
            println!("held by: {} since {}", printable_line(&h.person), h.since)
        }
        Some(h) => println!(
            "held by: {} at desk {} since {}",
            printable_line(&h.person),
            printable_line(&h.desk),
            h.since
        ),
        None => println!("held by: nobody"),
    }
    for c in &history {
        match &c.forced {
            // Computed here from the claims before it, whatever the claim's note says.
            Some(held) => println!(
                "  {} {}",
                c.line(),
                t!("case-claim-forced", holder = printable_line(held))
            ),
            None => println!("  {}", c.line()),
        }
    }
    if history.is_empty() {
        println!("  (no claims synced here; `silta inbox sync` fetches the other desks' claims)");
    }
    Ok(())
}

fn a_case(case: &str) -> Result<[u8; 16], Failure> {
    let case =
        silta_client::form::parse_case(case).map_err(|e| Failure::usage(format!("case: {e}")))?;
    if case == [0; 16] {
        return Err(Failure::usage(
            "case: give a case reference (32 hex digits)".to_owned(),
        ));
    }
    Ok(case)
}

/// `inbox access-report CASE --data-subject [--with-staff]`.
#[allow(clippy::too_many_arguments)] // the session's parts, passed as they are
pub(crate) async fn data_subject_report(
    config: &ClientConfig,
    log: &AccessLog,
    who: &str,
    me: &str,
    purpose: &str,
    case: &[u8; 16],
    with_staff: bool,
    json: bool,
) -> Result<(), Failure> {
    let case_ref = CaseRef(*case);
    let client = Client::start(config).await?;
    // This desk's latest entries go to the other desks first, so their reports include them.
    match claims::share_access_log(&client, log, who, Some(case_ref)).await {
        Ok(s) if !s.failed.is_empty() => eprintln!(
            "note: this desk's latest entries could not be shared now: {}",
            printable_line(&s.failed.join("; "))
        ),
        Ok(_) => {}
        Err(e) => eprintln!(
            "note: this desk's latest entries could not be shared now: {}",
            printable_line(&e.to_string())
        ),
    }
    let purpose = if with_staff {
        format!(
            "{purpose} [data subject's access report WITH staff identities, for the controller's internal use]"
        )
    } else {
        format!("{purpose} [data subject's access report]")
    };
    log.record(&Access {
        who,
        principal: me,
        action: Action::Reported,
        case,
        messages: &[],
        purpose: &purpose,
        recipients: &[],
    })
    .map_err(|e| Failure::failed(e.to_string()))?;
    let entries = log.read().map_err(|e| Failure {
        code: 2,
        message: format!("ACCESS LOG DAMAGED: {e}"),
        hint: Some("keep the file as it is and report this".into()),
    })?;
    let records = client.state().messages()?;
    let desk = client.keys().device_id().to_owned();
    let (rows, coverage) = claims::merged(&entries, &records, &case_ref, &desk);
    let when = |e: &silta_proto::pb::payload::AccessLogEntry| {
        silta_client::times::rfc3339(e.time.as_ref())
    };
    let staff = |e: &silta_proto::pb::payload::AccessLogEntry| {
        let mut s = format!("{} (uid {}", e.os_user, e.uid);
        if !e.declared_user.is_empty() {
            s.push_str(&format!("; says: {}", e.declared_user));
        }
        s.push(')');
        s
    };
    if json {
        print_json(&json!({
            "case": case_ref.to_string(),
            "controller": me,
            "covers": coverage.iter().map(|c| json!({"desk": c.desk, "until": c.until, "own": c.own})).collect::<Vec<Value>>(),
            "entries": rows.iter().map(|r| {
                let mut v = json!({
                    "time": when(&r.entry), "desk": r.desk, "action": r.entry.action,
                    "kind": claims::entry_kind(&r.entry), "purpose": r.entry.purpose,
                });
                if with_staff {
                    v["staff"] = json!(staff(&r.entry));
                }
                v
            }).collect::<Vec<Value>>(),
        }));
        return Ok(());
    }
    println!(
        "Access to the data of case {case_ref} at {me}: when, why, and at which desk\n\
         (what the data subject is owed: GDPR Art. 15, Finnish 906/2019 s. 17)\n"
    );
    if with_staff {
        let table: Vec<[String; 6]> = rows
            .iter()
            .map(|r| {
                [
                    when(&r.entry),
                    r.desk.clone(),
                    r.entry.action.clone(),
                    claims::entry_kind(&r.entry),
                    r.entry.purpose.clone(),
                    staff(&r.entry),
                ]
            })
            .collect();
        print_table(
            &["when (UTC)", "desk", "what", "message", "purpose", "staff"],
            &table,
        );
    } else {
        let table: Vec<[String; 5]> = rows
            .iter()
            .map(|r| {
                [
                    when(&r.entry),
                    r.desk.clone(),
                    r.entry.action.clone(),
                    claims::entry_kind(&r.entry),
                    r.entry.purpose.clone(),
                ]
            })
            .collect();
        print_table(
            &["when (UTC)", "desk", "what", "message", "purpose"],
            &table,
        );
    }
    let covers: Vec<String> = coverage
        .iter()
        .map(|c| {
            if c.own {
                format!("{} (to {}, this desk's own log)", c.desk, c.until)
            } else {
                format!("{} (to {})", c.desk, c.until)
            }
        })
        .collect();
    println!(
        "\n{} entries. Covers desks: {}.\nDesks that never shared their access log of this case are not covered; \
         `silta inbox sync` takes in the other desks' latest shares.{}",
        rows.len(),
        printable_line(&covers.join(", ")),
        if with_staff {
            ""
        } else {
            " Staff are not named (--with-staff names them, for the controller's internal use)."
        }
    );
    Ok(())
}

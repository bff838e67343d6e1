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
                        t!("claim-holder-at-desk", person = &h.person, desk = &h.desk)
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
            return Err(Failure::usage(t!("claim-to-invalid")));
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
        || t!("claim-nobody"),
        |h| {
            t!(
                "claim-held-since",
                person = printable_line(&h.person),
                since = &h.since
            )
        },
    );
    if refused && !force {
        return Err(Failure {
            code: crate::EX_USAGE,
            message: t!(
                "claim-refused",
                case = hex::encode(case),
                holder = held_by,
                user = &os.name
            ),
            hint: Some(t!("claim-refused-hint")),
        });
    }
    let mut note = note.unwrap_or_default().trim().to_owned();
    // The purpose (access log) and the "[forced; ...]" note (read by every desk, kept in the
    // claim) stay in English whatever the reader's language: a log is evidence, and its
    // wording stays stable.
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
    let case = hex::encode(case);
    let done = match action {
        ClaimAction::Claim => t!(
            "claim-done-claim",
            person = &person,
            case = &case,
            desk = &desk
        ),
        ClaimAction::Handover => t!("claim-done-handover", case = &case, to = &to),
        ClaimAction::Release => t!("claim-done-release", case = &case),
    };
    println!(
        "{}",
        t!(
            "claim-sent",
            done = done,
            id = uuid::Uuid::from_bytes(sent.message_id).to_string(),
            index = sent.receipt.log_index.to_string()
        )
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
    println!("{}", t!("claim-show-case", case = case.to_string()));
    let held = match &holder {
        Some(h) if h.desk.is_empty() => t!(
            "claim-show-held-by",
            person = printable_line(&h.person),
            since = &h.since
        ),
        Some(h) => t!(
            "claim-show-held-by-desk",
            person = printable_line(&h.person),
            desk = printable_line(&h.desk),
            since = &h.since
        ),
        None => t!("claim-show-held-by-nobody"),
    };
    println!("{held}");
    let lang = silta_client::i18n::current();
    for c in &history {
        match &c.forced {
            // Computed here from the claims before it, whatever the claim's note says.
            Some(held) => println!(
                "  {} {}",
                c.line_in(lang),
                t!("case-claim-forced", holder = printable_line(held))
            ),
            None => println!("  {}", c.line_in(lang)),
        }
    }
    if history.is_empty() {
        println!("  {}", t!("claim-show-none"));
    }
    Ok(())
}

fn a_case(case: &str) -> Result<[u8; 16], Failure> {
    let case =
        silta_client::form::parse_case(case).map_err(|e| Failure::usage(format!("case: {e}")))?;
    if case == [0; 16] {
        return Err(Failure::usage(t!("claim-case-missing")));
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
            "{}",
            t!(
                "ds-share-failed",
                why = printable_line(&s.failed.join("; "))
            )
        ),
        Ok(_) => {}
        Err(e) => eprintln!(
            "{}",
            t!("ds-share-failed", why = printable_line(&e.to_string()))
        ),
    }
    // Recorded in the access log: in English whatever the reader's language (evidence, stable).
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
        message: t!("access-log-damaged", error = e.to_string()),
        hint: Some(t!("access-log-damaged-hint")),
    })?;
    let records = client.state().messages()?;
    let desk = client.keys().device_id().to_owned();
    let (rows, coverage) = claims::merged(&entries, &records, &case_ref, &desk);
    let when = |e: &silta_proto::pb::payload::AccessLogEntry| {
        silta_client::times::rfc3339(e.time.as_ref())
    };
    let staff = |e: &silta_proto::pb::payload::AccessLogEntry| {
        if e.declared_user.is_empty() {
            t!("ds-staff", user = &e.os_user, uid = e.uid.to_string())
        } else {
            t!(
                "ds-staff-declared",
                user = &e.os_user,
                uid = e.uid.to_string(),
                declared = &e.declared_user
            )
        }
    };
    let lang = silta_client::i18n::current();
    // What a data subject reads: the action and the kind by their labels.
    let what = |e: &silta_proto::pb::payload::AccessLogEntry| {
        let id = format!("access-action-{}", e.action);
        if silta_client::i18n::has(silta_client::i18n::Lang::En, &id) {
            silta_client::i18n::tr(lang, &id, &[])
        } else {
            printable_line(&e.action)
        }
    };
    let kind = |e: &silta_proto::pb::payload::AccessLogEntry| {
        silta_client::i18n::short_label(lang, "MESSAGE_KIND_", &claims::entry_kind(e))
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
        "{}\n",
        t!("ds-header", case = case_ref.to_string(), controller = me)
    );
    if with_staff {
        let table: Vec<[String; 6]> = rows
            .iter()
            .map(|r| {
                [
                    when(&r.entry),
                    r.desk.clone(),
                    what(&r.entry),
                    kind(&r.entry),
                    r.entry.purpose.clone(),
                    staff(&r.entry),
                ]
            })
            .collect();
        print_table(
            &[
                &t!("col-when"),
                &t!("col-desk"),
                &t!("col-what"),
                &t!("col-message"),
                &t!("col-purpose"),
                &t!("col-staff"),
            ],
            &table,
        );
    } else {
        let table: Vec<[String; 5]> = rows
            .iter()
            .map(|r| {
                [
                    when(&r.entry),
                    r.desk.clone(),
                    what(&r.entry),
                    kind(&r.entry),
                    r.entry.purpose.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                &t!("col-when"),
                &t!("col-desk"),
                &t!("col-what"),
                &t!("col-message"),
                &t!("col-purpose"),
            ],
            &table,
        );
    }
    let covers: Vec<String> = coverage
        .iter()
        .map(|c| {
            if c.own {
                t!("ds-covers-own", desk = &c.desk, until = &c.until)
            } else {
                t!("ds-covers", desk = &c.desk, until = &c.until)
            }
        })
        .collect();
    println!(
        "\n{}\n{}{}",
        t!(
            "ds-footer",
            count = rows.len(),
            desks = printable_line(&covers.join(", "))
        ),
        t!("ds-not-covered"),
        if with_staff {
            String::new()
        } else {
            format!(" {}", t!("ds-staff-not-named"))
        }
    );
    Ok(())
}

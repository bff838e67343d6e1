//! `silta case close|reopen` and `silta purge`: retention on this installation
//! ([`silta_client::retention`]).

use std::time::SystemTime;

use serde_json::json;
use silta_client::{
    ClientConfig,
    access::current_user,
    ids::CaseRef,
    retention::{self, Actor, ClosedCases, RetentionError, Sweep},
    state::State,
};

use crate::{
    Failure,
    cli::CaseCommand,
    output::{print_json, print_table},
};

impl From<RetentionError> for Failure {
    fn from(e: RetentionError) -> Self {
        Failure::failed(e.to_string())
    }
}

fn principal_of(config: &ClientConfig) -> Result<String, Failure> {
    let cert = std::fs::read(&config.cert)
        .map_err(|e| Failure::usage(format!("{}: {e}", config.cert.display())))?;
    let (me, _) = silta_client::client::own_identity(&cert)?;
    Ok(me.to_string())
}

fn case_ref(text: &str) -> Result<CaseRef, Failure> {
    let case: CaseRef = text.parse().map_err(|e| Failure::usage(format!("{e}")))?;
    if case.is_none() {
        return Err(Failure::usage(
            "a case reference of zeros means \"no case\"; give the case's reference",
        ));
    }
    Ok(case)
}

/// `silta case close CASE` and `silta case reopen CASE`.
pub(crate) fn case(config: &ClientConfig, command: CaseCommand) -> Result<(), Failure> {
    let me = principal_of(config)?;
    let who = current_user();
    let actor = Actor {
        who: &who,
        principal: &me,
    };
    match command {
        CaseCommand::Close { case, reason } => {
            let case = case_ref(&case)?;
            let reason = reason.unwrap_or_else(|| "case closed".into());
            let (closed, new) =
                retention::close_case(&config.state_dir, actor, case, &reason, SystemTime::now())?;
            let days = config.retention.closed_case_days;
            if new {
                println!(
                    "case {case} closed; its messages are deleted from this installation after {days} days (retention.closed_case_days); `silta case reopen {case}` undoes it until then"
                );
            } else {
                println!(
                    "case {case} was already closed at {} by {}; nothing changed",
                    closed.closed_at, closed.closed_by
                );
            }
        }
        CaseCommand::Reopen { case, reason } => {
            let case = case_ref(&case)?;
            let reason = reason.unwrap_or_else(|| "case reopened".into());
            match retention::reopen_case(&config.state_dir, actor, case, &reason)? {
                Some(c) => println!(
                    "case {case} reopened (it was closed at {} by {}); messages deleted before now stay deleted",
                    c.closed_at, c.closed_by
                ),
                None => {
                    return Err(Failure::usage(format!("case {case} is not closed here")));
                }
            }
        }
        CaseCommand::New { .. }
        | CaseCommand::List
        | CaseCommand::Claim { .. }
        | CaseCommand::Handover { .. }
        | CaseCommand::Release { .. }
        | CaseCommand::Show { .. } => unreachable!("handled in inbox_cmd"),
    }
    Ok(())
}

/// `silta purge [--dry-run] [--json]`.
pub(crate) fn purge(config: &ClientConfig, dry_run: bool, json: bool) -> Result<(), Failure> {
    let (plan, items) = sweep(config, dry_run)?;
    if json {
        print_purge_json(dry_run, &items, &plan);
    } else {
        print_purge_table(dry_run, &items, &plan);
    }
    Ok(())
}

/// Plans the sweep and, unless `dry_run`, applies it: the plan and what went (or would go).
fn sweep(
    config: &ClientConfig,
    dry_run: bool,
) -> Result<(retention::Plan, Vec<retention::Doomed>), Failure> {
    let me = principal_of(config)?;
    let who = current_user();
    // Refused while the daemon runs (it sweeps by itself), before its state is opened.
    let queue = retention::open_daemon_queue(config)?;
    let jobs = match &queue {
        Some(db) => Some(
            db.open_tree("msgid_job")
                .map_err(|e| Failure::failed(format!("daemon queue: {e}")))?,
        ),
        None => None,
    };
    let state = State::open(&config.state_dir)?;
    let folders = silta_client::daemon::Folders::under(&config.daemon.folder);
    let closed = ClosedCases::in_state_dir(&config.state_dir).load()?;
    let sweep = Sweep {
        state: Some(&state),
        folders: config.daemon.folder.exists().then_some(&folders),
        jobs: jobs.as_ref(),
        policy: &config.retention,
        closed: &closed,
        now: SystemTime::now(),
    };
    let plan = sweep.plan()?;
    let items = if dry_run {
        plan.doomed.clone()
    } else {
        let actor = Actor {
            who: &who,
            principal: &me,
        };
        let items = sweep.apply(&plan, &config.state_dir, actor)?;
        for k in retention::sweep_retired_keys(config, actor, sweep.now)? {
            eprintln!(
                "deleted the device identity retired {} ago (fingerprint {}): retention.retired_key_days = {}",
                humantime_days(sweep.now, k.retired_at),
                k.fingerprint,
                config.retention.retired_key_days
            );
        }
        items
    };
    Ok((plan, items))
}

fn print_purge_json(dry_run: bool, items: &[retention::Doomed], plan: &retention::Plan) {
    let list = |v: &[retention::Doomed]| -> Vec<serde_json::Value> {
        v.iter()
            .map(|d| {
                json!({
                    "message_id": d.message_id,
                    "case": d.case,
                    "kind": d.kind,
                    "where": d.place.as_str(),
                    "rule": d.rule.as_str(),
                    "files": d.files,
                })
            })
            .collect()
    };
    print_json(&json!({
        "dry_run": dry_run,
        (if dry_run { "would_delete" } else { "deleted" }): list(items),
        "held": plan.held.iter().map(|h| json!({
            "message_id": h.message_id, "case": h.case, "where": h.place.as_str(), "why": h.why,
        })).collect::<Vec<_>>(),
        "problems": plan.problems,
    }));
}

fn print_purge_table(dry_run: bool, items: &[retention::Doomed], plan: &retention::Plan) {
    let rows: Vec<[String; 5]> = items
        .iter()
        .map(|d| {
            [
                d.message_id.clone(),
                if d.case.is_empty() {
                    "-".into()
                } else {
                    d.case.clone()
                },
                d.kind.clone(),
                d.place.as_str().to_owned(),
                d.rule.as_str().to_owned(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("nothing is due for deletion");
    } else {
        print_table(&["message", "case", "kind", "where", "rule"], &rows);
    }
    for h in &plan.held {
        eprintln!(
            "kept for now: message {} ({}): {}",
            h.message_id,
            h.place.as_str(),
            h.why
        );
    }
    for p in &plan.problems {
        eprintln!("warning: {p}");
    }
    if dry_run {
        eprintln!("dry run: nothing was deleted ({} would go)", items.len());
    } else if !items.is_empty() {
        eprintln!(
            "deleted {} copies; each deletion is in the access log (purged)",
            items.len()
        );
    }
}

fn humantime_days(now: SystemTime, then: SystemTime) -> String {
    let days = now.duration_since(then).unwrap_or_default().as_secs() / 86_400;
    format!("{days} days")
}

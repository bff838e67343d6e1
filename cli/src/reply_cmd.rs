//! The reply commands, one for every kind a person writes (`request-info`, `decision`,
//! `meeting ...`, `assessment`, `agreement`, `agreement-answer`, `consultation`,
//! `consultation-reply`, `consent-record`, `referral`, `info-response`,
//! `emergency-confirmation`, `status-update`, `case-transfer`, `consent-withdrawal`,
//! `exit-notice`): each turns its flags into the message's fields; [`compose::send_with`]
//! merges them over the form, fills in what the local state knows ([`Complete`]), seals, sends
//! and records the message.

use base64::Engine as _;
use serde_json::{Value, json};
use silta_client::{ClientConfig, inbox, state::State};
use silta_proto::pb::MessageKind;

use crate::{
    Failure,
    cli::{Agreement, AgreementAnswer, Assessment, Compose, MeetingCommand, ReplyCommand},
    compose::{self, Address, enum_value, slot},
};

/// A message to send: its kind, the common flags, and the fields from the command's own flags.
type Message = (MessageKind, Compose, Value);

/// What a command fills in from the local state once it is open.
enum Complete {
    Nothing,
    /// A service agreement: the version it supersedes (`--supersedes`, else the latest of the
    /// case) and its number (previous + 1).
    Agreement {
        supersedes: Option<String>,
    },
    /// An answer to the version replied to; a counter-draft is version + 1 superseding it.
    AgreementAnswer,
    /// An emergency confirmation issues a case reference unless one was given.
    IssueCase,
    /// A case transfer goes to the receiving centre too.
    Transfer {
        receiving: String,
    },
}

pub(crate) async fn run(config: &ClientConfig, command: ReplyCommand) -> Result<(), Failure> {
    // Every flag is checked before anything is connected.
    let today = time::OffsetDateTime::now_utc().date();
    let (complete, (kind, compose, fields)) = match command {
        ReplyCommand::Agreement(a) => {
            let supersedes = a.supersedes.clone();
            (Complete::Agreement { supersedes }, agreement(a)?)
        }
        ReplyCommand::AgreementAnswer(a) => (Complete::AgreementAnswer, agreement_answer(a)?),
        ReplyCommand::EmergencyConfirmation {
            compose,
            measures,
            written_referral_deadline,
            centre_client_id,
        } => {
            let Some(deadline) = written_referral_deadline else {
                return Err(Failure::usage(t!("cmd-written-referral-deadline-required")));
            };
            let d = date(&deadline, "--written-referral-deadline")?;
            if d < today {
                return Err(Failure::usage(t!(
                    "cmd-deadline-past",
                    flag = "--written-referral-deadline",
                    date = d.to_string(),
                    today = today.to_string()
                )));
            }
            let fields = json!({
                "interim_measures": measures, "written_referral_deadline": deadline,
                "centre_client_id": centre_client_id,
            });
            (
                Complete::IssueCase,
                (MessageKind::EmergencyReferralConfirmation, compose, fields),
            )
        }
        ReplyCommand::CaseTransfer {
            compose,
            receiving_centre,
            effective_date,
            handover,
            client_informed,
            client_consented,
            old_access_revoked,
        } => {
            let Some(receiving) = receiving_centre else {
                return Err(Failure::usage(t!("cmd-receiving-centre-required")));
            };
            if let Some(d) = &effective_date {
                date(d, "--effective-date")?;
            }
            let fields = json!({
                "receiving_centre": receiving, "effective_date": effective_date,
                "handover": handover, "client_informed": client_informed,
                "client_consented": client_consented,
                "old_centre_access_revoked": old_access_revoked,
            });
            (
                Complete::Transfer { receiving },
                (MessageKind::CaseTransfer, compose, fields),
            )
        }
        other => (Complete::Nothing, message(other, today)?),
    };
    compose::send_with(
        config,
        kind,
        &compose,
        fields,
        |state, address, body| match complete {
            Complete::Nothing => Ok(()),
            Complete::Agreement { supersedes } => {
                complete_agreement(state, address, body, supersedes.as_deref())
            }
            Complete::AgreementAnswer => complete_answer(address, body),
            Complete::IssueCase => issue_case(state, address, body),
            Complete::Transfer { receiving } => {
                if !address.to.contains(&receiving) {
                    address.to.push(receiving);
                }
                Ok(())
            }
        },
    )
    .await
}

/// A `YYYY-MM-DD` flag.
fn date(value: &str, flag: &str) -> Result<time::Date, Failure> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value.trim(), &format)
        .map_err(|_| Failure::usage(t!("cmd-date-format", flag = flag, value = value)))
}

/// A flag with the date of something that happened: a date, not after today.
fn past_date(value: &Option<String>, flag: &str, today: time::Date) -> Result<(), Failure> {
    if let Some(v) = value {
        let d = date(v, flag)?;
        if d > today {
            return Err(Failure::usage(t!(
                "cmd-date-future",
                flag = flag,
                date = d.to_string(),
                today = today.to_string()
            )));
        }
    }
    Ok(())
}

fn message(command: ReplyCommand, today: time::Date) -> Result<Message, Failure> {
    Ok(match command {
        ReplyCommand::RequestInfo {
            compose,
            items,
            deadline,
            note,
        } => {
            let fields = json!({ "items": items, "deadline": deadline, "legal_basis_note": note });
            (MessageKind::InformationRequest, compose, fields)
        }
        ReplyCommand::Decision {
            compose,
            admitted,
            date,
            recovery_period_end,
        } => {
            past_date(&date, "--date", today)?;
            let fields = decision(admitted, date, recovery_period_end)?;
            (MessageKind::AdmissionDecisionNotice, compose, fields)
        }
        ReplyCommand::Meeting { command } => meeting(command)?,
        ReplyCommand::Assessment(a) => assessment(a)?,
        // Handled in `run` (they need the local state).
        ReplyCommand::Agreement(_)
        | ReplyCommand::AgreementAnswer(_)
        | ReplyCommand::EmergencyConfirmation { .. }
        | ReplyCommand::CaseTransfer { .. } => {
            return Err(Failure::usage("internal: command handled elsewhere"));
        }
        ReplyCommand::ConsultationReply {
            compose,
            advice,
            proceed,
            urgent,
            interpreter_language,
        } => {
            if compose.case.as_deref().is_some_and(|c| c != "none") {
                return Err(Failure::usage(t!("cmd-consultation-reply-case")));
            }
            let fields = json!({
                "advice": advice, "proceed_to_referral": proceed, "urgent": urgent,
                "interpreter_language": interpreter_language,
            });
            (MessageKind::ConsultationReply, compose, fields)
        }
        ReplyCommand::ConsentRecord {
            compose,
            person_name,
            date,
            language,
            interpreter_used,
            informed_about,
            scope,
            child_consented,
            guardian_name,
            guardian_role,
            guardian_signed,
        } => {
            past_date(&date, "--date", today)?;
            let fields = json!({
                "person_name": person_name, "date": date, "language": language,
                "interpreter_used": interpreter_used, "informed_about": informed_about,
                "scope": scope, "child_consented": child_consented,
                "guardian_name": guardian_name, "guardian_role": guardian_role,
                "guardian_signed": guardian_signed,
            });
            (MessageKind::ConsentRecord, compose, fields)
        }
        ReplyCommand::StatusUpdate {
            compose,
            change,
            description,
            new_location,
        } => {
            let changes = [
                "client-moving",
                "centre-closing",
                "operator-change",
                "security-situation",
                "asylum-status",
                "hospitalisation",
                "client-missing",
                "representative-change",
                "other",
            ];
            let change = change
                .map(|c| enum_value("CHANGE_KIND_", "--change", &c, &changes))
                .transpose()?;
            let fields = json!({
                "change": change, "description": description, "new_location": new_location,
            });
            (MessageKind::StatusUpdate, compose, fields)
        }
        ReplyCommand::ConsentWithdrawal {
            compose,
            date,
            withdrawn,
            received_how,
            actions,
        } => {
            past_date(&date, "--date", today)?;
            if let Some(h) = &received_how
                && !matches!(h.as_str(), "oral" | "written")
            {
                return Err(Failure::usage(t!("cmd-received-how", value = h)));
            }
            let fields = json!({
                "date": date, "withdrawn": withdrawn, "received_how": received_how,
                "actions_required": actions,
            });
            (MessageKind::ConsentWithdrawal, compose, fields)
        }
        ReplyCommand::ExitNotice {
            compose,
            reason,
            effective_date,
            centre_actions,
        } => {
            let reason = reason
                .map(|r| {
                    enum_value(
                        "EXIT_REASON_",
                        "--reason",
                        &r,
                        &["left-voluntarily", "removed-by-decision"],
                    )
                })
                .transpose()?;
            if let Some(d) = &effective_date {
                date(d, "--effective-date")?;
            }
            let fields = json!({
                "reason": reason, "effective_date": effective_date,
                "centre_actions": centre_actions,
            });
            (MessageKind::ExitNotice, compose, fields)
        }
        ReplyCommand::Consultation {
            compose,
            indicators,
            questions,
        } => {
            let fields = json!({ "indicators": indicators, "questions": questions });
            (MessageKind::AnonymousConsultation, compose, fields)
        }
        ReplyCommand::Referral {
            compose,
            interpreter_language,
            interpreter_dialect,
            interpreter_note,
        } => {
            if compose.form.is_none() {
                return Err(Failure::usage(
                    "a referral is written in a form: --form referral.toml (see client/forms/referral.toml)",
                ));
            }
            let mut interpreter = serde_json::Map::new();
            for (k, v) in [
                ("language", interpreter_language),
                ("dialect", interpreter_dialect),
                ("note", interpreter_note),
            ] {
                if let Some(v) = v {
                    interpreter.insert(k.into(), v.into());
                }
            }
            let fields = if interpreter.is_empty() {
                json!({})
            } else {
                json!({ "interpreter": interpreter })
            };
            (MessageKind::Referral, compose, fields)
        }
        ReplyCommand::InfoResponse {
            compose,
            answers,
            not_held,
        } => {
            let fields = info_response(&answers, &not_held)?;
            (MessageKind::InformationResponse, compose, fields)
        }
    })
}

fn decision(
    admitted: Option<String>,
    date: Option<String>,
    recovery_period_end: Option<String>,
) -> Result<Value, Failure> {
    let outcome = admitted
        .map(|a| match a.to_ascii_lowercase().as_str() {
            "yes" | "admitted" => Ok("ADMISSION_OUTCOME_ADMITTED"),
            "no" | "not-admitted" => Ok("ADMISSION_OUTCOME_NOT_ADMITTED"),
            _ => Err(Failure::usage(format!("--admitted {a}: yes or no"))),
        })
        .transpose()?;
    Ok(json!({
        "outcome": outcome,
        "decision_date": date,
        "recovery_period_granted": recovery_period_end.is_some(),
        "recovery_period_end": recovery_period_end,
    }))
}

fn meeting(command: MeetingCommand) -> Result<Message, Failure> {
    Ok(match command {
        MeetingCommand::Propose {
            compose,
            slots,
            place,
            remote_link,
            client_attends,
            interpreter,
            safety,
        } => {
            let slots = slots
                .iter()
                .map(|s| slot(s))
                .collect::<Result<Vec<_>, _>>()?;
            let fields = json!({
                "slots": slots, "place": place, "remote_link": remote_link,
                "client_attends": client_attends, "interpreter_language": interpreter,
                "safety_precautions": safety,
            });
            (MessageKind::MeetingProposal, compose, fields)
        }
        MeetingCommand::Confirm {
            compose,
            slot: at,
            place,
            client_attends,
            interpreter,
        } => {
            let at = at.map(|s| slot(&s)).transpose()?;
            let fields = json!({
                "slot": at, "place": place, "client_attends": client_attends,
                "interpreter_language": interpreter,
            });
            (MessageKind::MeetingConfirmation, compose, fields)
        }
        MeetingCommand::Cancel { compose, reason } => (
            MessageKind::MeetingCancellation,
            compose,
            json!({ "reason": reason }),
        ),
        MeetingCommand::Reply {
            compose,
            answer,
            slot: at,
            note,
        } => {
            let answers = ["accept", "decline", "counter-proposal"];
            let answer = answer
                .map(|a| enum_value("MEETING_ANSWER_", "--answer", &a, &answers))
                .transpose()?;
            let at = at.map(|s| slot(&s)).transpose()?;
            let fields = json!({ "answer": answer, "accepted_slot": at, "note": note });
            (MessageKind::MeetingReply, compose, fields)
        }
    })
}

fn assessment(flags: Assessment) -> Result<Message, Failure> {
    let Assessment {
        compose,
        meeting_date,
        overall,
        threat,
        measures,
        criminal_case,
        support_person,
        client_view,
    } = flags;
    let one_of = |prefix: &str, flag: &str, value: Option<String>, allowed: &[&str]| {
        value
            .map(|v| enum_value(prefix, flag, &v, allowed))
            .transpose()
    };
    let threat = one_of(
        "THREAT_LEVEL_",
        "--threat",
        threat,
        &["none", "low", "moderate", "high"],
    )?;
    let criminal_case = one_of(
        "CRIMINAL_CASE_STATUS_",
        "--criminal-case",
        criminal_case,
        &["none", "report-filed", "pre-trial-investigation", "court"],
    )?;
    let support_person = one_of(
        "SUPPORT_PERSON_NEED_",
        "--support-person",
        support_person,
        &["yes", "no", "arranged"],
    )?;
    let fields = json!({
        "meeting_date": meeting_date, "overall_situation": overall,
        "security_threat": threat, "safety_measures": measures,
        "criminal_case": criminal_case, "support_person": support_person,
        "client_view": client_view,
    });
    Ok((MessageKind::JointAssessmentRecord, compose, fields))
}

fn agreement(flags: Agreement) -> Result<Message, Failure> {
    let Agreement {
        compose,
        services,
        procedures,
        review_date,
        status,
        version,
        supersedes: _,
    } = flags;
    let items = services
        .iter()
        .map(|s| service(s))
        .collect::<Result<Vec<_>, _>>()?;
    let status = status
        .map(|s| {
            enum_value(
                "AGREEMENT_STATUS_",
                "--status",
                &s,
                &["draft", "agreed", "superseded"],
            )
        })
        .transpose()?;
    let fields = json!({
        "items": items, "procedures": procedures, "review_date": review_date,
        "status": status, "version": version,
    });
    Ok((MessageKind::ServiceAgreement, compose, fields))
}

fn agreement_answer(flags: AgreementAnswer) -> Result<Message, Failure> {
    let AgreementAnswer {
        compose,
        accept,
        counter_draft,
        services,
        procedures,
        review_date,
        note,
    } = flags;
    if compose.reply_to.is_none() {
        return Err(Failure::usage(t!("cmd-answer-reply-to-required")));
    }
    let fields = match (accept, counter_draft) {
        (true, false) => {
            if !services.is_empty() || procedures.is_some() || review_date.is_some() {
                return Err(Failure::usage(t!("cmd-answer-accept-with-draft")));
            }
            json!({ "answer": "AGREEMENT_ANSWER_ACCEPT", "note": note })
        }
        (false, true) => {
            let items = services
                .iter()
                .map(|s| service(s))
                .collect::<Result<Vec<_>, _>>()?;
            json!({
                "answer": "AGREEMENT_ANSWER_COUNTER_DRAFT", "note": note,
                "counter_draft": {
                    "items": items, "procedures": procedures, "review_date": review_date,
                    "status": "AGREEMENT_STATUS_DRAFT",
                },
            })
        }
        _ => {
            return Err(Failure::usage(t!("cmd-answer-how")));
        }
    };
    Ok((MessageKind::ServiceAgreementAnswer, compose, fields))
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The versions of the service agreement in `case` known here (sent or received, agreements and
/// counter-drafts): (version, message id), latest last.
fn agreement_versions(state: &State, case: &[u8; 16]) -> Result<Vec<(u64, [u8; 16])>, Failure> {
    let mut out = Vec::new();
    for r in inbox::thread(state, case)? {
        let version = match r.kind.as_str() {
            "service-agreement" => r.payload["service_agreement"]["version"].as_u64(),
            "service-agreement-answer" => {
                r.payload["service_agreement_answer"]["counter_draft"]["version"].as_u64()
            }
            _ => None,
        };
        if let Some(v) = version {
            out.push((v, r.message_id.0));
        }
    }
    out.sort();
    Ok(out)
}

/// A service agreement's `supersedes` and `version`, unless the flags or the form gave them.
fn complete_agreement(
    state: &State,
    address: &Address,
    body: &mut Value,
    supersedes: Option<&str>,
) -> Result<(), Failure> {
    let versions = agreement_versions(state, &address.case)?;
    let previous = match supersedes {
        Some(s) => {
            let r = inbox::find(state, s)
                .map_err(|e| Failure::usage(format!("--supersedes {s}: {e}")))?;
            let v = versions
                .iter()
                .find(|(_, id)| *id == r.message_id.0)
                .ok_or_else(|| Failure::usage(t!("cmd-supersedes-not-version", id = s)))?;
            Some(*v)
        }
        None if body.get("supersedes").is_some() => None,
        None => versions.last().copied(),
    };
    if let (Some((version, id)), Some(obj)) = (previous, body.as_object_mut()) {
        obj.insert("supersedes".into(), b64(&id));
        obj.entry("version").or_insert(json!(version + 1));
    }
    if let Some(obj) = body.as_object_mut() {
        obj.entry("version").or_insert(json!(1));
    }
    Ok(())
}

/// The answer names the version replied to; a counter-draft is the next version superseding it.
fn complete_answer(address: &Address, body: &mut Value) -> Result<(), Failure> {
    let Some(r) = &address.replied else {
        return Err(Failure::usage(t!("cmd-answer-reply-to-version")));
    };
    let version = match r.kind.as_str() {
        "service-agreement" => r.payload["service_agreement"]["version"].as_u64(),
        _ => None,
    }
    .ok_or_else(|| {
        Failure::usage(t!(
            "cmd-reply-to-not-agreement",
            id = r.message_id.to_string(),
            kind = crate::inbox_cmd::kind_label(&r.kind)
        ))
    })?;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("version".into(), json!(version));
        obj.insert("agreement".into(), b64(&r.message_id.0));
        if let Some(d) = obj.get_mut("counter_draft").and_then(Value::as_object_mut) {
            d.insert("version".into(), json!(version + 1));
            d.insert("supersedes".into(), b64(&r.message_id.0));
        }
    }
    Ok(())
}

/// An emergency confirmation starts the case: a new random reference (as `case new`), recorded
/// here, unless `--case` (or the message replied to) gave one.
fn issue_case(state: &State, address: &mut Address, body: &mut Value) -> Result<(), Failure> {
    if address.case == [0; 16] {
        let mut case = [0u8; 16];
        getrandom::fill(&mut case).map_err(|e| Failure::failed(format!("case reference: {e}")))?;
        state.put_case(
            &case,
            &json!({
                "case": hex::encode(case),
                "issued_at": silta_client::times::now_rfc3339(),
                "issued_by": silta_client::access::current_user(),
                "label": "emergency referral",
            }),
        )?;
        address.case = case;
        eprintln!("{}", t!("cmd-case-issued", case = hex::encode(case)));
    }
    if let Some(obj) = body.as_object_mut() {
        obj.insert("case_ref".into(), b64(&address.case));
    }
    Ok(())
}

/// `--service SERVICE=RESPONSIBLE[:CONTACT ROLE]`.
fn service(s: &str) -> Result<Value, Failure> {
    let (service, rest) = s.split_once('=').ok_or_else(|| {
        Failure::usage(format!(
            "--service {s}: write SERVICE=RESPONSIBLE[:CONTACT ROLE]"
        ))
    })?;
    let (responsible, contact) = rest.split_once(':').unwrap_or((rest, ""));
    let responsible = enum_value(
        "RESPONSIBLE_PARTY_",
        "--service",
        responsible,
        &["assistance-system", "centre", "municipality", "other"],
    )?;
    Ok(json!({ "service": service, "responsible": responsible, "contact_role": contact }))
}

fn info_response(answers: &[String], not_held: &[String]) -> Result<Value, Failure> {
    let mut list = Vec::new();
    for a in answers {
        let (item, answer) = a
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("--answer {a}: write ITEM=ANSWER")))?;
        list.push(json!({ "item": item, "answer": answer }));
    }
    for item in not_held {
        list.push(json!({ "item": item, "not_held": true }));
    }
    Ok(json!({ "answers": list }))
}

//! The reply commands (`request-info`, `decision`, `meeting ...`, `assessment`, `agreement`,
//! `consultation`, `referral`, `info-response`): each turns its flags into the message's fields;
//! [`compose::send`] merges them over the form, seals, sends and records the message.

use serde_json::{Value, json};
use silta_client::ClientConfig;
use silta_proto::pb::MessageKind;

use crate::{
    Failure,
    cli::{Agreement, Assessment, Compose, MeetingCommand, ReplyCommand},
    compose::{self, enum_value, slot},
};

/// A message to send: its kind, the common flags, and the fields from the command's own flags.
type Message = (MessageKind, Compose, Value);

pub(crate) async fn run(config: &ClientConfig, command: ReplyCommand) -> Result<(), Failure> {
    // Every flag is checked before anything is connected.
    let (kind, compose, fields) = message(command)?;
    compose::send(config, kind, &compose, fields).await
}

fn message(command: ReplyCommand) -> Result<Message, Failure> {
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
            let fields = decision(admitted, date, recovery_period_end)?;
            (MessageKind::AdmissionDecisionNotice, compose, fields)
        }
        ReplyCommand::Meeting { command } => meeting(command)?,
        ReplyCommand::Assessment(a) => assessment(a)?,
        ReplyCommand::Agreement(a) => agreement(a)?,
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

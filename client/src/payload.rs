//! The payload schema's rules: which body goes with which kind, what each kind must and must not
//! carry, and reading forms (TOML or JSON, in the proto3 JSON mapping) into payloads.
//!
//! Rules enforced before anything is sealed:
//! - the body matches the kind, and the kind may travel from the sender's role to every
//!   recipient's role (DESIGN §5);
//! - a referral carries a consent record; a child's referral also the guardian's or
//!   representative's signed consent (and, for ages 15–17, the child's own), and is `urgent` or
//!   `emergency`;
//! - an anonymous consultation has no fields that identify a person, and its free text is checked
//!   for identifiers (dates, personal identity codes, phone numbers, e-mail addresses, long
//!   numbers);
//! - an admission decision notice carries yes/no and dates only (it has no other fields).

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use silta_certs::Principal;
use silta_proto::pb::{
    MessageKind, Urgency,
    payload::{self as pl, Payload, payload::Body},
};

/// Why a payload or form was refused; the text says what is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, PayloadError> {
    Err(PayloadError(m.into()))
}

/// The kind a body belongs to.
pub fn kind_of(body: &Body) -> MessageKind {
    use MessageKind as K;
    match body {
        Body::AnonymousConsultation(_) => K::AnonymousConsultation,
        Body::ConsultationReply(_) => K::ConsultationReply,
        Body::ConsentRecord(_) => K::ConsentRecord,
        Body::Referral(_) => K::Referral,
        Body::EmergencyReferralConfirmation(_) => K::EmergencyReferralConfirmation,
        Body::InformationRequest(_) => K::InformationRequest,
        Body::InformationResponse(_) => K::InformationResponse,
        Body::AdmissionDecisionNotice(_) => K::AdmissionDecisionNotice,
        Body::MeetingProposal(_) => K::MeetingProposal,
        Body::MeetingConfirmation(_) => K::MeetingConfirmation,
        Body::MeetingCancellation(_) => K::MeetingCancellation,
        Body::MeetingReply(_) => K::MeetingReply,
        Body::JointAssessmentRecord(_) => K::JointAssessmentRecord,
        Body::ServiceAgreement(_) => K::ServiceAgreement,
        Body::StatusUpdate(_) => K::StatusUpdate,
        Body::CaseTransfer(_) => K::CaseTransfer,
        Body::ConsentWithdrawal(_) => K::ConsentWithdrawal,
        Body::ExitNotice(_) => K::ExitNotice,
        Body::ServiceAgreementAnswer(_) => K::ServiceAgreementAnswer,
        Body::CaseClaim(_) => K::CaseClaim,
        Body::AccessLogShare(_) => K::AccessLogShare,
    }
}

/// The short name of a kind, as on the command line and in forms: `referral`,
/// `anonymous-consultation`, ...
pub fn kind_name(kind: MessageKind) -> String {
    kind.as_str_name()
        .trim_start_matches("MESSAGE_KIND_")
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// What a message of `kind` is sent for, in words a data subject's access report can show: the
/// purpose recorded when it is sent and no purpose was stated (never just the kind's name).
pub fn send_purpose(kind: MessageKind) -> &'static str {
    use MessageKind as K;
    match kind {
        K::Unspecified => "sending a message",
        K::AnonymousConsultation => {
            "asking the Assistance System for advice without identifying the person"
        }
        K::ConsultationReply => "advising a centre on an anonymous consultation",
        K::ConsentRecord => "recording the person's consent to the referral",
        K::Referral => "referring the person to the Assistance System",
        K::EmergencyReferralConfirmation => "confirming services started after a phone referral",
        K::InformationRequest => "asking for the information the admission decision needs",
        K::InformationResponse => "answering the Assistance System's information request",
        K::AdmissionDecisionNotice => "telling the referring centre the admission decision",
        K::MeetingProposal | K::MeetingConfirmation | K::MeetingCancellation | K::MeetingReply => {
            "arranging the joint meeting"
        }
        K::JointAssessmentRecord => {
            "sharing the parts of the joint assessment the person agreed to"
        }
        K::ServiceAgreement | K::ServiceAgreementAnswer => "agreeing the division of work",
        K::StatusUpdate => "telling the other party of a change in the case",
        K::CaseTransfer => "transferring the case to the person's new centre",
        K::ConsentWithdrawal => "passing on the person's withdrawal of consent",
        K::ExitNotice => "telling the centre the client relationship ends",
        K::CaseClaim => "coordinating which desk handles the case",
        K::AccessLogShare => "answering a data subject's access request",
    }
}

/// Parses a kind's short name (`referral`, `meeting-proposal`, `MEETING_PROPOSAL`).
pub fn parse_kind(name: &str) -> Result<MessageKind, PayloadError> {
    let upper = name.trim().to_ascii_uppercase().replace('-', "_");
    match MessageKind::from_str_name(&format!("MESSAGE_KIND_{upper}")) {
        Some(k) if k != MessageKind::Unspecified => Ok(k),
        _ => err(format!(
            "unknown message kind {name:?}; kinds are: {}",
            (1..)
                .map_while(|k| MessageKind::try_from(k).ok())
                .map(kind_name)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Checks a payload to be sent against its kind, the direction it travels, and the kind's
/// rules; and every language field holds a code of [`crate::i18n::LANGUAGES`] (the `silta`
/// commands and the daemon's outbox alike: a form naming a language as `"Dari"` is refused
/// before anything is sealed).
///
/// A received message is judged by [`validate_on`], which checks a language code's form only:
/// a code a newer sender knows is shown as it is rather than refused.
pub fn validate(
    kind: MessageKind,
    urgency: Urgency,
    payload: &Payload,
    sender: &Principal,
    recipients: &[Principal],
) -> Result<(), PayloadError> {
    let today = time::OffsetDateTime::now_utc().date();
    validate_on(kind, urgency, payload, sender, recipients, today)?;
    check_known_languages(payload)
}

/// Every language field of `payload` holds a code of [`crate::i18n::LANGUAGES`]; the error
/// names the first field that does not.
pub fn check_known_languages(payload: &Payload) -> Result<(), PayloadError> {
    match crate::i18n::unknown_languages(payload).first() {
        None => Ok(()),
        Some((field, code)) => err(format!(
            "{field}: {:?} is not a language code silta knows (ISO 639-1 where a language has one, \
             else ISO 639-3, e.g. fi, sv, ar, prs; `silta languages` lists them)",
            crate::text::printable_line(code)
        )),
    }
}

/// [`validate`] as of `date` (a received message is judged as of the day it was written, so a
/// birthday between writing and opening does not make it invalid).
pub fn validate_on(
    kind: MessageKind,
    urgency: Urgency,
    payload: &Payload,
    sender: &Principal,
    recipients: &[Principal],
    date: time::Date,
) -> Result<(), PayloadError> {
    let Some(body) = &payload.body else {
        return err("the payload is empty");
    };
    if kind_of(body) != kind {
        return err(format!(
            "the body is a {} but the message kind is {}",
            kind_name(kind_of(body)),
            kind_name(kind)
        ));
    }
    for r in recipients {
        if !silta_proto::policy::may_send(sender.role().as_str(), kind, r.role().as_str()) {
            return err(format!(
                "a {} may not send {} to {} (role {})",
                sender.role(),
                kind_name(kind),
                r,
                r.role()
            ));
        }
    }
    match body {
        Body::Referral(r) => validate_referral(r, urgency, date),
        Body::ConsentRecord(c) => {
            validate_consent(c, "consent record", date)?;
            check_language(&c.language, "consent record: language")
        }
        Body::AnonymousConsultation(c) => validate_consultation(c),
        Body::AdmissionDecisionNotice(n) => validate_admission(n, date),
        Body::ConsultationReply(r) => validate_consultation_reply(r),
        Body::EmergencyReferralConfirmation(c) => validate_emergency_confirmation(c, date),
        Body::StatusUpdate(u) => validate_status_update(u),
        Body::CaseTransfer(t) => validate_transfer(t),
        Body::ConsentWithdrawal(w) => validate_withdrawal(w, date),
        Body::ExitNotice(n) => validate_exit(n),
        Body::ServiceAgreement(a) => validate_agreement(a, "service agreement"),
        Body::ServiceAgreementAnswer(a) => validate_agreement_answer(a),
        _ => Ok(()),
    }
}

/// A date of something that already happened (a decision, a consent, a withdrawal): a date, and
/// not after `today` (the day the message is written).
fn past_date(s: &str, what: &str, today: time::Date) -> Result<time::Date, PayloadError> {
    let d = parse_date(s).map_err(|e| PayloadError(format!("{what} {e}")))?;
    if d > today {
        return err(format!(
            "{what} {d} is after today ({today}): it is the date of something that already happened"
        ));
    }
    Ok(d)
}

/// An optional date field: empty, or `YYYY-MM-DD`.
fn optional_date(s: &str, what: &str) -> Result<(), PayloadError> {
    if !s.trim().is_empty() {
        parse_date(s).map_err(|e| PayloadError(format!("{what} {e}")))?;
    }
    Ok(())
}

/// A language field: empty, or an ISO 639 code (two or three lowercase letters: `fi`, `sv`,
/// `prs`). The list of codes and their names is the localisation's; this checks the shape.
pub fn check_language(code: &str, what: &str) -> Result<(), PayloadError> {
    if code.is_empty() {
        return Ok(());
    }
    if !(2..=3).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_lowercase()) {
        return err(format!(
            "{what} {code:?} is not an ISO 639 language code (two or three lowercase letters, e.g. fi, sv, en, ar, prs)"
        ));
    }
    Ok(())
}

fn validate_consultation_reply(r: &pl::ConsultationReply) -> Result<(), PayloadError> {
    if r.advice.trim().is_empty() {
        return err("consultation reply: advice is required");
    }
    check_language(
        &r.interpreter_language,
        "consultation reply: interpreter_language",
    )
}

fn validate_emergency_confirmation(
    c: &pl::EmergencyReferralConfirmation,
    today: time::Date,
) -> Result<(), PayloadError> {
    const WHAT: &str = "emergency referral confirmation";
    if c.case_ref.len() != 16 || c.case_ref.iter().all(|b| *b == 0) {
        return err(format!(
            "{WHAT}: case_ref (the case reference issued, 16 bytes) is required"
        ));
    }
    if c.written_referral_deadline.trim().is_empty() {
        return err(format!(
            "{WHAT}: written_referral_deadline (YYYY-MM-DD) is required"
        ));
    }
    let d = parse_date(&c.written_referral_deadline)
        .map_err(|e| PayloadError(format!("{WHAT}: written_referral_deadline {e}")))?;
    if d < today {
        return err(format!(
            "{WHAT}: written_referral_deadline {d} is in the past (today is {today})"
        ));
    }
    Ok(())
}

fn validate_status_update(u: &pl::StatusUpdate) -> Result<(), PayloadError> {
    if u.change == pl::ChangeKind::Unspecified as i32 {
        return err("status update: change (the kind of event, CHANGE_KIND_...) is required");
    }
    Ok(())
}

fn validate_transfer(t: &pl::CaseTransfer) -> Result<(), PayloadError> {
    let centre: Principal = t.receiving_centre.parse().map_err(|e| {
        PayloadError(format!(
            "case transfer: receiving_centre {:?} is not a principal <role>/<id>: {e}",
            t.receiving_centre
        ))
    })?;
    if centre.role().as_str() != "centre" {
        return err(format!(
            "case transfer: receiving_centre {centre} is not a centre"
        ));
    }
    if t.effective_date.trim().is_empty() {
        return err("case transfer: effective_date (YYYY-MM-DD) is required");
    }
    optional_date(&t.effective_date, "case transfer: effective_date")
}

fn validate_withdrawal(w: &pl::ConsentWithdrawal, today: time::Date) -> Result<(), PayloadError> {
    past_date(&w.date, "consent withdrawal: date", today)?;
    if w.withdrawn.trim().is_empty() {
        return err(
            "consent withdrawal: withdrawn (\"whole_referral\" or the sharing scope withdrawn) is required",
        );
    }
    if !matches!(w.received_how.as_str(), "" | "oral" | "written") {
        return err(format!(
            "consent withdrawal: received_how {:?}: \"oral\" or \"written\"",
            w.received_how
        ));
    }
    Ok(())
}

fn validate_exit(n: &pl::ExitNotice) -> Result<(), PayloadError> {
    if n.reason == pl::ExitReason::Unspecified as i32 {
        return err(
            "exit notice: reason (EXIT_REASON_LEFT_VOLUNTARILY or EXIT_REASON_REMOVED_BY_DECISION) is required",
        );
    }
    if n.effective_date.trim().is_empty() {
        return err("exit notice: effective_date (YYYY-MM-DD) is required");
    }
    optional_date(&n.effective_date, "exit notice: effective_date")
}

fn validate_agreement(a: &pl::ServiceAgreement, what: &str) -> Result<(), PayloadError> {
    if a.version == 0 {
        return err(format!("{what}: version (1 or more) is required"));
    }
    if !a.supersedes.is_empty() && a.supersedes.len() != 16 {
        return err(format!(
            "{what}: supersedes must be a message id (16 bytes)"
        ));
    }
    if a.version > 1 && a.supersedes.is_empty() {
        return err(format!(
            "{what}: version {} must name the version it supersedes (supersedes)",
            a.version
        ));
    }
    optional_date(&a.review_date, &format!("{what}: review_date"))?;
    for i in &a.items {
        optional_date(&i.start_date, &format!("{what}: items.start_date"))?;
        optional_date(&i.review_date, &format!("{what}: items.review_date"))?;
    }
    Ok(())
}

fn validate_agreement_answer(a: &pl::ServiceAgreementAnswer) -> Result<(), PayloadError> {
    const WHAT: &str = "service agreement answer";
    if a.agreement.len() != 16 {
        return err(format!(
            "{WHAT}: agreement (the message id of the version answered) is required"
        ));
    }
    if a.version == 0 {
        return err(format!(
            "{WHAT}: version (of the agreement answered) is required"
        ));
    }
    match pl::AgreementAnswer::try_from(a.answer).unwrap_or_default() {
        pl::AgreementAnswer::Unspecified => err(format!(
            "{WHAT}: answer (AGREEMENT_ANSWER_ACCEPT or AGREEMENT_ANSWER_COUNTER_DRAFT) is required"
        )),
        pl::AgreementAnswer::Accept => {
            if a.counter_draft.is_some() {
                return err(format!("{WHAT}: an acceptance carries no counter_draft"));
            }
            Ok(())
        }
        pl::AgreementAnswer::CounterDraft => {
            let Some(d) = &a.counter_draft else {
                return err(format!(
                    "{WHAT}: a counter-draft answer carries the centre's draft (counter_draft)"
                ));
            };
            validate_agreement(d, "service agreement answer: counter_draft")?;
            if d.version != a.version + 1 || d.supersedes != a.agreement {
                return err(format!(
                    "{WHAT}: the counter_draft is version {} superseding the version answered (version {}, supersedes = agreement)",
                    a.version + 1,
                    a.version + 1
                ));
            }
            if d.status != pl::AgreementStatus::Draft as i32 {
                return err(format!(
                    "{WHAT}: the counter_draft's status is AGREEMENT_STATUS_DRAFT"
                ));
            }
            Ok(())
        }
    }
}

/// Yes/no and dates only: the dates must be dates, and the contact only a short name, role and
/// phone, so no reasons can be slipped into free text.
fn validate_admission(
    n: &pl::AdmissionDecisionNotice,
    today: time::Date,
) -> Result<(), PayloadError> {
    if n.outcome == pl::AdmissionOutcome::Unspecified as i32 {
        return err(
            "admission decision notice: outcome (ADMISSION_OUTCOME_ADMITTED or ADMISSION_OUTCOME_NOT_ADMITTED) is required",
        );
    }
    past_date(
        &n.decision_date,
        "admission decision notice: decision_date",
        today,
    )?;
    if !n.recovery_period_end.is_empty() {
        parse_date(&n.recovery_period_end).map_err(|e| {
            PayloadError(format!(
                "admission decision notice: recovery_period_end {e}"
            ))
        })?;
    }
    if let Some(c) = &n.contact {
        for (field, value) in [("role", &c.role), ("name", &c.name), ("phone", &c.phone)] {
            if value.chars().count() > 60 {
                return err(format!(
                    "admission decision notice: contact.{field} is longer than 60 characters; the notice carries yes/no and dates only"
                ));
            }
        }
    }
    Ok(())
}

/// Parses `YYYY-MM-DD`.
pub(crate) fn parse_date(s: &str) -> Result<time::Date, PayloadError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &format)
        .map_err(|_| PayloadError(format!("{s:?} is not a date YYYY-MM-DD")))
}

fn validate_consent(
    c: &pl::ConsentRecord,
    what: &str,
    today: time::Date,
) -> Result<(), PayloadError> {
    if c.person_name.trim().is_empty() {
        return err(format!("{what}: person_name (who consented) is required"));
    }
    if c.date.trim().is_empty() {
        return err(format!("{what}: date of consent is required"));
    }
    past_date(&c.date, &format!("{what}: date"), today)?;
    if c.informed_about.is_empty() {
        return err(format!(
            "{what}: informed_about must list what the person was told about the Assistance System's services"
        ));
    }
    Ok(())
}

fn validate_referral(
    r: &pl::Referral,
    urgency: Urgency,
    today: time::Date,
) -> Result<(), PayloadError> {
    let Some(person) = &r.person else {
        return err("referral: person is required");
    };
    if person.name.trim().is_empty() && person.uma_number.trim().is_empty() {
        return err("referral: person.name or person.uma_number is required");
    }
    let Some(consent) = &r.consent else {
        return err(
            "referral: a consent record is required (consent): no referral may be made without the person's consent",
        );
    };
    validate_consent(consent, "referral consent", today)?;
    let age = pl::AgeGroup::try_from(person.age_group).unwrap_or_default();
    // The stated age group must agree with a given date of birth: a child is never referred
    // under adult rules by mistake.
    if !person.date_of_birth.trim().is_empty() {
        let dob = parse_date(&person.date_of_birth)
            .map_err(|e| PayloadError(format!("referral: person.date_of_birth {e}")))?;
        let mut years = today.year() - dob.year();
        if (today.month() as u8, today.day()) < (dob.month() as u8, dob.day()) {
            years -= 1;
        }
        let expected = match years {
            ..15 => pl::AgeGroup::ChildUnder15,
            15..18 => pl::AgeGroup::Child15To17,
            _ => pl::AgeGroup::Adult,
        };
        if age != expected {
            return err(format!(
                "referral: person.age_group {} does not match the date of birth (age {years}: {})",
                age.as_str_name(),
                expected.as_str_name()
            ));
        }
    }
    if age == pl::AgeGroup::Unspecified {
        return err(
            "referral: person.age_group is required (AGE_GROUP_ADULT, AGE_GROUP_CHILD_UNDER_15 or AGE_GROUP_CHILD_15_TO_17)",
        );
    }
    if matches!(age, pl::AgeGroup::ChildUnder15 | pl::AgeGroup::Child15To17) {
        if consent.guardian_name.trim().is_empty()
            || consent.guardian_role.trim().is_empty()
            || !consent.guardian_signed
        {
            return err(
                "referral of a child: the guardian's or representative's consent is required (consent.guardian_name, consent.guardian_role, consent.guardian_signed = true)",
            );
        }
        if age == pl::AgeGroup::Child15To17 && !consent.child_consented {
            return err(
                "referral of a child aged 15-17: the child's own consent is required (consent.child_consented = true)",
            );
        }
        if !matches!(urgency, Urgency::Urgent | Urgency::Emergency) {
            return err(
                "referral of a child: all child referrals are urgent; send with urgency urgent or emergency",
            );
        }
    }
    Ok(())
}

fn validate_consultation(c: &pl::AnonymousConsultation) -> Result<(), PayloadError> {
    let texts = c
        .indicators
        .iter()
        .map(|s| ("indicators", s.as_str()))
        .chain([("questions", c.questions.as_str())]);
    for (field, text) in texts {
        if let Some(what) = find_identifier(text) {
            return err(format!(
                "anonymous consultation: {field} seems to contain {what}; a consultation must not identify the person"
            ));
        }
    }
    Ok(())
}

/// Looks for things in free text that identify a person. Conservative: a false alarm asks the
/// writer to rephrase; a miss could expose someone.
pub(crate) fn find_identifier(text: &str) -> Option<&'static str> {
    if text
        .split_whitespace()
        .any(|w| w.contains('@') && w.contains('.'))
    {
        return Some("an e-mail address");
    }
    let chars: Vec<char> = text.chars().collect();
    // Runs of digits with the separators that dates, identity codes and phone numbers use.
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit()
            || (chars[i] == '+' && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()))
        {
            let start = i;
            let mut digits = 0;
            let mut seps = Vec::new();
            while i < chars.len() {
                let c = chars[i];
                if c.is_ascii_digit() {
                    digits += 1;
                } else if matches!(c, '.' | '/' | '-' | '+' | ' ' | 'A' | 'a')
                    && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit())
                    && i > start
                {
                    seps.push(c);
                } else if c == '+' && i == start {
                } else {
                    break;
                }
                i += 1;
            }
            let dated =
                seps.iter().filter(|c| matches!(c, '.' | '/' | '-')).count() >= 2 && digits >= 4;
            if dated {
                return Some("a date (of birth?)");
            }
            if digits >= 10
                && seps.iter().any(|c| matches!(c, '-' | '+' | 'A' | 'a'))
                && digits <= 11
            {
                return Some("a personal identity code");
            }
            if digits >= 6 {
                return Some("a long number (phone, identity code or UMA number?)");
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Reads a form (TOML or JSON, by `json`) for `kind` into a payload. Field names are those of
/// the kind's message in `payload.proto` (snake_case or lowerCamelCase); enums by name
/// (`"AGE_GROUP_ADULT"`); times as RFC 3339 strings; bytes as base64. Unknown fields are refused,
/// so a field the kind does not have (a name in an anonymous consultation) never slips through.
pub fn read_form(kind: MessageKind, text: &str, json: bool) -> Result<Payload, PayloadError> {
    read_form_value(kind, parse_form_text(text, json)?)
}

/// Parses a form file's text (TOML, or JSON) into a JSON value.
pub fn parse_form_text(text: &str, json: bool) -> Result<serde_json::Value, PayloadError> {
    if json {
        serde_json::from_str(text).map_err(|e| PayloadError(format!("form is not valid JSON: {e}")))
    } else {
        let t: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            PayloadError(format!("form is not valid TOML: {}", e.message()))
        })?;
        serde_json::to_value(t).map_err(|e| PayloadError(format!("form: {e}")))
    }
}

/// Reads a form's body (already parsed, in the proto3 JSON mapping) as a payload of `kind`.
pub fn read_form_value(
    kind: MessageKind,
    value: serde_json::Value,
) -> Result<Payload, PayloadError> {
    let field = kind_name(kind).replace('-', "_");
    let wrapped = serde_json::json!({ field.clone(): value });
    let pool = DescriptorPool::decode(silta_proto::FILE_DESCRIPTOR_SET)
        .map_err(|e| PayloadError(format!("schema: {e}")))?;
    let desc = pool
        .get_message_by_name("silta.v1.payload.Payload")
        .ok_or_else(|| PayloadError("schema: no silta.v1.payload.Payload".into()))?;
    let dynamic = DynamicMessage::deserialize(desc, wrapped).map_err(|e| {
        let msg = e.to_string();
        let hint = if msg.contains("unrecognized field") || msg.contains("unknown field") {
            format!(
                " (the {} form has no such field; see proto/silta/v1/payload.proto)",
                kind_name(kind)
            )
        } else {
            String::new()
        };
        PayloadError(format!("form for {}: {msg}{hint}", kind_name(kind)))
    })?;
    Payload::decode(dynamic.encode_to_vec().as_slice())
        .map_err(|e| PayloadError(format!("form: {e}")))
}

/// A payload in the proto3 JSON mapping (`{"referral": {...}}`).
pub(crate) fn payload_json(payload: &Payload) -> serde_json::Value {
    DescriptorPool::decode(silta_proto::FILE_DESCRIPTOR_SET)
        .ok()
        .and_then(|pool| pool.get_message_by_name("silta.v1.payload.Payload"))
        .and_then(|desc| DynamicMessage::decode(desc, payload.encode_to_vec().as_slice()).ok())
        .and_then(|m| {
            // The field names of the schema and the forms (`person_name`), not lowerCamelCase.
            let options = prost_reflect::SerializeOptions::new().use_proto_field_name(true);
            m.serialize_with_options(serde_json::value::Serializer, &options)
                .ok()
        })
        .unwrap_or_default()
}

/// The payload a record keeps in the proto3 JSON mapping ([`payload_json`]), read back (what
/// `silta resend` re-seals). The kind must be `kind`: a record whose content is not that kind's is
/// refused.
pub fn payload_from_json(
    kind: MessageKind,
    value: &serde_json::Value,
) -> Result<Payload, PayloadError> {
    let field = kind_name(kind).replace('-', "_");
    let body = value
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get(&field))
        .ok_or_else(|| PayloadError(format!("the kept content is not a {}", kind_name(kind))))?;
    read_form_value(kind, body.clone())
}

/// Whether a message of `kind` may answer (`in_reply_to`) a message of `replied` (kind name):
/// `in_reply_to` is envelope metadata the relay stores in clear, so an identified message that
/// answers the anonymous consultation (or its reply) would tie it to a person's case. Only the
/// consultation's own kinds (a consultation reply, a follow-up consultation) answer them.
pub fn check_reply_link(kind: MessageKind, replied: &str) -> Result<(), PayloadError> {
    let anonymous = [
        MessageKind::AnonymousConsultation,
        MessageKind::ConsultationReply,
    ];
    if anonymous.iter().any(|k| kind_name(*k) == replied) && !anonymous.contains(&kind) {
        return Err(PayloadError(format!(
            "a {} does not answer a {replied}: in_reply_to is stored by the relay, and would link the anonymous consultation to the case (send it without --reply-to, with --to and --case)",
            kind_name(kind)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_payloads_read_back_as_they_were() {
        let payload = Payload {
            body: Some(Body::ConsultationReply(pl::ConsultationReply {
                advice: "call today".into(),
                ..Default::default()
            })),
        };
        let json = payload_json(&payload);
        assert_eq!(
            payload_from_json(MessageKind::ConsultationReply, &json).unwrap(),
            payload
        );
        // Another kind's content, or nothing, is refused.
        assert!(payload_from_json(MessageKind::Referral, &json).is_err());
        assert!(
            payload_from_json(MessageKind::ConsultationReply, &serde_json::Value::Null).is_err()
        );
    }

    #[test]
    fn dates_of_things_that_happened_may_not_be_after_the_day_written() {
        let today = time::macros::date!(2026 - 11 - 30);
        let nas: Principal = "assistance/nas".parse().unwrap();
        let centre: Principal = "centre/a".parse().unwrap();
        let check = |kind, body, from: &Principal, to: &Principal| {
            let payload = Payload { body: Some(body) };
            validate_on(
                kind,
                Urgency::Normal,
                &payload,
                from,
                std::slice::from_ref(to),
                today,
            )
        };
        let decision = |d: &str| {
            Body::AdmissionDecisionNotice(pl::AdmissionDecisionNotice {
                outcome: pl::AdmissionOutcome::Admitted as i32,
                decision_date: d.into(),
                ..Default::default()
            })
        };
        let k = MessageKind::AdmissionDecisionNotice;
        assert!(check(k, decision("2026-11-30"), &nas, &centre).is_ok());
        let e = check(k, decision("2026-12-01"), &nas, &centre).unwrap_err();
        assert!(e.0.contains("after today"), "{e}");
        let withdrawal = |d: &str| {
            Body::ConsentWithdrawal(pl::ConsentWithdrawal {
                date: d.into(),
                withdrawn: "whole_referral".into(),
                ..Default::default()
            })
        };
        let k = MessageKind::ConsentWithdrawal;
        assert!(check(k, withdrawal("2026-11-29"), &centre, &nas).is_ok());
        assert!(check(k, withdrawal("2026-12-24"), &centre, &nas).is_err());
        let consent = |d: &str| {
            Body::ConsentRecord(pl::ConsentRecord {
                person_name: "A".into(),
                date: d.into(),
                informed_about: vec!["services".into()],
                ..Default::default()
            })
        };
        let k = MessageKind::ConsentRecord;
        assert!(check(k, consent("2026-11-30"), &centre, &nas).is_ok());
        assert!(check(k, consent("2026-12-01"), &centre, &nas).is_err());
        assert!(check(k, consent("yesterday"), &centre, &nas).is_err());
    }

    #[test]
    fn new_kinds_are_checked() {
        let nas: Principal = "assistance/nas".parse().unwrap();
        let centre: Principal = "centre/a".parse().unwrap();
        let today = time::macros::date!(2026 - 11 - 30);
        let check = |kind, body, from: &Principal, to: &Principal| {
            let payload = Payload { body: Some(body) };
            validate_on(
                kind,
                Urgency::Normal,
                &payload,
                from,
                std::slice::from_ref(to),
                today,
            )
        };
        // An exit notice names its reason.
        let exit = pl::ExitNotice {
            effective_date: "2026-12-31".into(),
            ..Default::default()
        };
        let k = MessageKind::ExitNotice;
        assert!(check(k, Body::ExitNotice(exit.clone()), &nas, &centre).is_err());
        let exit = pl::ExitNotice {
            reason: pl::ExitReason::LeftVoluntarily as i32,
            ..exit
        };
        assert!(check(k, Body::ExitNotice(exit), &nas, &centre).is_ok());
        // A counter-draft is there exactly when the answer is a counter-draft.
        let id = vec![7u8; 16];
        let draft = pl::ServiceAgreement {
            version: 2,
            status: pl::AgreementStatus::Draft as i32,
            supersedes: id.clone(),
            ..Default::default()
        };
        let answer = |a: pl::AgreementAnswer, d: Option<pl::ServiceAgreement>| {
            Body::ServiceAgreementAnswer(pl::ServiceAgreementAnswer {
                version: 1,
                agreement: id.clone(),
                answer: a as i32,
                counter_draft: d,
                note: String::new(),
            })
        };
        let k = MessageKind::ServiceAgreementAnswer;
        use pl::AgreementAnswer as A;
        assert!(check(k, answer(A::Accept, None), &centre, &nas).is_ok());
        assert!(check(k, answer(A::Accept, Some(draft.clone())), &centre, &nas).is_err());
        assert!(check(k, answer(A::CounterDraft, None), &centre, &nas).is_err());
        assert!(
            check(
                k,
                answer(A::CounterDraft, Some(draft.clone())),
                &centre,
                &nas
            )
            .is_ok()
        );
        let wrong = pl::ServiceAgreement {
            version: 3,
            ..draft
        };
        assert!(check(k, answer(A::CounterDraft, Some(wrong)), &centre, &nas).is_err());
        // Languages are ISO 639 codes.
        let reply = |l: &str| {
            Body::ConsultationReply(pl::ConsultationReply {
                advice: "refer".into(),
                interpreter_language: l.into(),
                ..Default::default()
            })
        };
        let k = MessageKind::ConsultationReply;
        assert!(check(k, reply("prs"), &nas, &centre).is_ok());
        assert!(check(k, reply("Dari"), &nas, &centre).is_err());
    }

    #[test]
    fn kind_names_round_trip() {
        for k in 1..=21 {
            let kind = MessageKind::try_from(k).unwrap();
            assert_eq!(parse_kind(&kind_name(kind)).unwrap(), kind);
        }
        assert_eq!(
            parse_kind("meeting-proposal").unwrap(),
            MessageKind::MeetingProposal
        );
        assert!(parse_kind("gossip").is_err());
    }

    #[test]
    fn identifiers_in_free_text() {
        for bad in [
            "born 12.03.1999",
            "DOB 1999-03-12",
            "hetu 120399-123A",
            "call +358 40 1234567",
            "UMA 12345678",
            "mail x.y@example.fi",
        ] {
            assert!(find_identifier(bad).is_some(), "{bad}");
        }
        for ok in [
            "worked 14 hours a day",
            "passport taken by employer",
            "age band 15-17",
            "in 2023",
        ] {
            assert_eq!(find_identifier(ok), None, "{ok}");
        }
    }

    #[test]
    fn only_the_consultation_kinds_answer_the_anonymous_consultation() {
        for replied in ["anonymous-consultation", "consultation-reply"] {
            for kind in [
                MessageKind::Referral,
                MessageKind::EmergencyReferralConfirmation,
                MessageKind::InformationRequest,
                MessageKind::ConsentRecord,
            ] {
                assert!(
                    check_reply_link(kind, replied).is_err(),
                    "{kind:?} {replied}"
                );
            }
            assert!(check_reply_link(MessageKind::ConsultationReply, replied).is_ok());
        }
        assert!(check_reply_link(MessageKind::InformationRequest, "referral").is_ok());
    }
}

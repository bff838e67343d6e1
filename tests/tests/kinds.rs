//! A command for every kind (issue 13, part C), as processes against a real relay: each new
//! reply command sends its kind and threads it (`--reply-to`), the service agreement's versions
//! chain (`supersedes`) through a counter-draft and an acceptance, dates of things that happened
//! may not be in the future, `inbox due` lists an information request until it is answered, and
//! the daemon's notifications carry no content.

use std::{path::Path, process::Command, time::Duration};

use serde_json::Value;
use silta_tests::{TestPki, TestRelay, TestUser};

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");
const CENTRE: &str = "centre/joutseno";
const OTHER: &str = "centre/other";
const NAS: &str = "assistance/nas";

fn silta(user: &TestUser, args: &[&str]) -> std::process::Output {
    Command::new(SILTA)
        .arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .args(args)
        .env("SILTA_PURPOSE", "testing the commands")
        .env("SILTA_USER", "tester")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a command that must succeed and print JSON; returns it.
fn json(user: &TestUser, args: &[&str]) -> Value {
    let o = silta(user, args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", out(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", out(&o)))
}

/// Sends with `args` (+ --json); returns the message id and the case.
fn send(user: &TestUser, args: &[&str]) -> (String, String) {
    let mut a = args.to_vec();
    a.push("--json");
    let v = json(user, &a);
    (
        v["message_id"].as_str().unwrap().to_owned(),
        v["case"].as_str().unwrap().to_owned(),
    )
}

/// Fetches at `user` and shows message `id` as JSON.
fn fetch_show(user: &TestUser, id: &str) -> Value {
    let o = silta(user, &["inbox", "sync", "--wait", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    json(user, &["inbox", "show", id, "--json"])
}

/// What the recipient sees: the kind, and the message it answers.
fn assert_arrived(user: &TestUser, id: &str, kind: &str, in_reply_to: Option<&str>) -> Value {
    let v = fetch_show(user, id);
    assert_eq!(v["kind"], kind, "{v}");
    assert_eq!(
        v["in_reply_to"].as_str().unwrap_or(""),
        in_reply_to.unwrap_or(""),
        "{v}"
    );
    v
}

fn day(days: i64) -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn b64_id(id: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::parse_str(id).unwrap().as_bytes())
}

async fn users(pki: &TestPki, relay: &TestRelay) -> (TestUser, TestUser, TestUser) {
    let centre = TestUser::new(pki, relay.addr, CENTRE, "server-1");
    let nas = TestUser::new(pki, relay.addr, NAS, "desk-1");
    let other = TestUser::new(pki, relay.addr, OTHER, "server-1");
    for u in [&centre, &nas, &other] {
        u.published().await;
    }
    (centre, nas, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_new_command_sends_its_kind_and_threads_it() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (centre, nas, other) = users(&pki, &relay).await;

    // The consultation and its reply: no case reference, and the reply refuses one.
    let (consultation, _) = send(
        &centre,
        &[
            "consultation",
            "--to",
            NAS,
            "--indicator",
            "passport held",
            "--questions",
            "refer?",
        ],
    );
    fetch_show(&nas, &consultation);
    let o = silta(
        &nas,
        &[
            "consultation-reply",
            "--reply-to",
            &consultation,
            "--advice",
            "refer",
            "--case",
            &"ab".repeat(16),
        ],
    );
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    let o = silta(
        &nas,
        &[
            "consultation-reply",
            "--reply-to",
            &consultation,
            "--advice",
            "refer",
            "--interpreter-language",
            "Arabic",
        ],
    );
    // An unknown language code is a usage error, refused before anything is sealed (64), as
    // for every language field (tests/tests/languages.rs).
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    assert!(out(&o).contains("ISO 639"), "{}", out(&o));
    let (reply, reply_case) = send(
        &nas,
        &[
            "consultation-reply",
            "--reply-to",
            &consultation,
            "--advice",
            "refer with consent",
            "--proceed",
            "--urgent",
            "--interpreter-language",
            "ar",
        ],
    );
    assert_eq!(reply_case, "");
    let v = assert_arrived(&centre, &reply, "consultation-reply", Some(&consultation));
    assert_eq!(
        v["payload"]["consultation_reply"]["interpreter_language"],
        "ar"
    );
    assert_eq!(v["urgency"], "normal");

    // Nothing identified answers the consultation or its reply (in_reply_to is relay
    // metadata): refused before anything is sent.
    for answered in [&consultation, &reply] {
        let user = if answered == &consultation {
            &nas
        } else {
            &centre
        };
        let o = silta(
            user,
            &[
                "emergency-confirmation",
                "--reply-to",
                answered,
                "--to",
                CENTRE,
                "--measure",
                "safe housing",
                "--written-referral-deadline",
                &day(3),
            ],
        );
        assert_eq!(o.status.code(), Some(64), "{}", out(&o));
        assert!(out(&o).contains("anonymous consultation"), "{}", out(&o));
    }

    // The emergency confirmation issues the case reference; its deadline may not be past.
    let o = silta(
        &nas,
        &[
            "emergency-confirmation",
            "--to",
            CENTRE,
            "--measure",
            "safe housing",
        ],
    );
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    let o = silta(
        &nas,
        &[
            "emergency-confirmation",
            "--to",
            CENTRE,
            "--written-referral-deadline",
            &day(-1),
        ],
    );
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    let (emergency, case) = send(
        &nas,
        &[
            "emergency-confirmation",
            "--to",
            CENTRE,
            "--urgency",
            "emergency",
            "--measure",
            "safe housing",
            "--measure",
            "interpreter",
            "--written-referral-deadline",
            &day(3),
            "--centre-client-id",
            "K-17",
        ],
    );
    assert_eq!(case.len(), 32);
    let cases = silta(&nas, &["case", "list"]);
    assert!(out(&cases).contains(&case), "{}", out(&cases));
    let v = assert_arrived(&centre, &emergency, "emergency-referral-confirmation", None);
    assert_eq!(v["case"], case);
    assert_eq!(
        v["payload"]["emergency_referral_confirmation"]["case_ref"],
        base64_hex(&case)
    );
    // The centre learned the case: listed with when it was learned.
    let cases = silta(&centre, &["case", "list"]);
    assert!(out(&cases).contains(&case), "{}", out(&cases));

    // Consent record (centre), in the case, answering the confirmation.
    let o = silta(
        &centre,
        &[
            "consent-record",
            "--reply-to",
            &emergency,
            "--person-name",
            "A. Person",
            "--date",
            &day(1),
            "--informed-about",
            "services",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(64),
        "a consent dated tomorrow: {}",
        out(&o)
    );
    let (consent, c) = send(
        &centre,
        &[
            "consent-record",
            "--reply-to",
            &emergency,
            "--person-name",
            "A. Person",
            "--date",
            &day(0),
            "--informed-about",
            "services",
            "--language",
            "fi",
        ],
    );
    assert_eq!(c, case);
    let v = assert_arrived(&nas, &consent, "consent-record", Some(&emergency));
    assert_eq!(v["legal_basis"], "consent");
    assert_eq!(
        v["urgency"], "emergency",
        "the urgency of the message answered"
    );

    // Status updates, both directions.
    let (update, _) = send(
        &centre,
        &[
            "status-update",
            "--reply-to",
            &emergency,
            "--change",
            "client-moving",
            "--description",
            "moves next week",
        ],
    );
    assert_arrived(&nas, &update, "status-update", Some(&emergency));
    let (update_back, _) = send(
        &nas,
        &[
            "status-update",
            "--reply-to",
            &update,
            "--change",
            "security-situation",
            "--description",
            "calmer",
        ],
    );
    let v = assert_arrived(&centre, &update_back, "status-update", Some(&update));
    assert_eq!(
        v["payload"]["status_update"]["change"],
        "CHANGE_KIND_SECURITY_SITUATION"
    );
    let o = silta(
        &nas,
        &[
            "status-update",
            "--reply-to",
            &update,
            "--change",
            "weather",
        ],
    );
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));

    // A decision dated tomorrow is refused before anything is sent.
    let o = silta(
        &nas,
        &[
            "decision",
            "--reply-to",
            &consent,
            "--admitted",
            "yes",
            "--date",
            &day(1),
        ],
    );
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    assert!(out(&o).contains("after today"), "{}", out(&o));

    // Service agreement: v1; the centre's counter-draft (v2, superseding v1); the Assistance
    // System's next version supersedes the counter-draft by default; the centre accepts it.
    let (v1, _) = send(
        &nas,
        &[
            "agreement",
            "--to",
            CENTRE,
            "--case",
            &case,
            "--service",
            "accommodation=centre",
            "--status",
            "draft",
        ],
    );
    let a = assert_arrived(&centre, &v1, "service-agreement", None);
    assert_eq!(a["payload"]["service_agreement"]["version"], 1);
    let o = silta(&centre, &["agreement-answer", "--reply-to", &v1]);
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    let (counter, _) = send(
        &centre,
        &[
            "agreement-answer",
            "--reply-to",
            &v1,
            "--counter-draft",
            "--service",
            "accommodation=centre",
            "--service",
            "support person=assistance-system",
            "--note",
            "a support person too",
        ],
    );
    let a = assert_arrived(&nas, &counter, "service-agreement-answer", Some(&v1));
    let answer = &a["payload"]["service_agreement_answer"];
    assert_eq!(answer["answer"], "AGREEMENT_ANSWER_COUNTER_DRAFT");
    assert_eq!(answer["version"], 1);
    assert_eq!(answer["agreement"], b64_id(&v1));
    assert_eq!(answer["counter_draft"]["version"], 2);
    assert_eq!(answer["counter_draft"]["supersedes"], b64_id(&v1));
    assert_eq!(answer["counter_draft"]["status"], "AGREEMENT_STATUS_DRAFT");
    let (v3, _) = send(
        &nas,
        &[
            "agreement",
            "--to",
            CENTRE,
            "--case",
            &case,
            "--service",
            "accommodation=centre",
            "--service",
            "support person=assistance-system",
            "--status",
            "agreed",
            "--review-date",
            "2027-03-01",
        ],
    );
    let a = assert_arrived(&centre, &v3, "service-agreement", None);
    assert_eq!(a["payload"]["service_agreement"]["version"], 3);
    assert_eq!(
        a["payload"]["service_agreement"]["supersedes"],
        b64_id(&counter)
    );
    let (accept, _) = send(
        &centre,
        &["agreement-answer", "--reply-to", &v3, "--accept"],
    );
    let a = assert_arrived(&nas, &accept, "service-agreement-answer", Some(&v3));
    assert_eq!(
        a["payload"]["service_agreement_answer"]["answer"],
        "AGREEMENT_ANSWER_ACCEPT"
    );
    assert_eq!(a["payload"]["service_agreement_answer"]["version"], 3);
    // --supersedes names an earlier version explicitly.
    let (v4, _) = send(
        &nas,
        &[
            "agreement",
            "--to",
            CENTRE,
            "--case",
            &case,
            "--service",
            "accommodation=centre",
            "--status",
            "draft",
            "--supersedes",
            &v3,
        ],
    );
    let a = assert_arrived(&centre, &v4, "service-agreement", None);
    assert_eq!(a["payload"]["service_agreement"]["version"], 4);
    assert_eq!(a["payload"]["service_agreement"]["supersedes"], b64_id(&v3));

    // Consent withdrawal, both directions (the last messages in this case on consent).
    let o = silta(
        &centre,
        &[
            "consent-withdrawal",
            "--reply-to",
            &v4,
            "--date",
            &day(1),
            "--withdrawn",
            "whole_referral",
        ],
    );
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    let (withdrawal, _) = send(
        &centre,
        &[
            "consent-withdrawal",
            "--reply-to",
            &v4,
            "--date",
            &day(0),
            "--withdrawn",
            "sharing with the municipality",
            "--received-how",
            "oral",
            "--action",
            "stop sharing",
        ],
    );
    assert_arrived(&nas, &withdrawal, "consent-withdrawal", Some(&v4));
    let (withdrawal_back, _) = send(
        &nas,
        &[
            "consent-withdrawal",
            "--reply-to",
            &withdrawal,
            "--date",
            &day(0),
            "--withdrawn",
            "whole_referral",
            "--received-how",
            "written",
            "--action",
            "delete the pending referral",
        ],
    );
    assert_arrived(
        &centre,
        &withdrawal_back,
        "consent-withdrawal",
        Some(&withdrawal),
    );

    // A second case: transferred to the other centre (both centres get it), then the exit.
    let case2 = String::from_utf8(silta(&nas, &["case", "new"]).stdout)
        .unwrap()
        .trim()
        .to_owned();
    let (opening, _) = send(
        &nas,
        &[
            "status-update",
            "--to",
            CENTRE,
            "--case",
            &case2,
            "--change",
            "other",
            "--description",
            "case opened",
        ],
    );
    fetch_show(&centre, &opening);
    let (transfer, _) = send(
        &nas,
        &[
            "case-transfer",
            "--reply-to",
            &opening,
            "--receiving-centre",
            OTHER,
            "--effective-date",
            &day(7),
            "--handover",
            "the safety plan",
            "--client-informed",
            "--client-consented",
            "--old-access-revoked",
        ],
    );
    let v = assert_arrived(&other, &transfer, "case-transfer", Some(&opening));
    assert_eq!(v["to"], serde_json::json!([CENTRE, OTHER]), "{v}");
    assert_eq!(v["case"], case2);
    assert_arrived(&centre, &transfer, "case-transfer", Some(&opening));
    let o = silta(
        &nas,
        &[
            "exit-notice",
            "--to",
            OTHER,
            "--case",
            &case2,
            "--reason",
            "gone",
            "--effective-date",
            &day(30),
        ],
    );
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    let (exit, _) = send(
        &nas,
        &[
            "exit-notice",
            "--reply-to",
            &transfer,
            "--to",
            OTHER,
            "--reason",
            "left-voluntarily",
            "--effective-date",
            &day(30),
            "--centre-action",
            "end the plan",
        ],
    );
    let v = assert_arrived(&other, &exit, "exit-notice", Some(&transfer));
    assert_eq!(
        v["payload"]["exit_notice"]["reason"],
        "EXIT_REASON_LEFT_VOLUNTARILY"
    );

    // The thread of the first case at the Assistance System shows every kind, in order.
    let thread = json(&nas, &["inbox", "thread", &case, "--json"]);
    let kinds: Vec<&str> = thread
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for k in [
        "emergency-referral-confirmation",
        "consent-record",
        "status-update",
        "service-agreement",
        "service-agreement-answer",
        "consent-withdrawal",
    ] {
        assert!(kinds.contains(&k), "{k} missing in {kinds:?}");
    }
    // Sent with the stated purpose (SILTA_PURPOSE), not the kind's name.
    let log = std::fs::read_to_string(nas.dir.path().join("state/access.log")).unwrap();
    assert!(log.contains("testing the commands"), "{log}");
    assert!(!log.contains("\"sending "), "{log}");
}

/// The case reference (hex) as the payload's bytes field shows it (base64).
fn base64_hex(case: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(hex::decode(case).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_due_lists_an_information_request_until_it_is_answered() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (centre, nas, _other) = users(&pki, &relay).await;
    let case = String::from_utf8(silta(&nas, &["case", "new"]).stdout)
        .unwrap()
        .trim()
        .to_owned();
    let deadline = day(2);
    let (request, _) = send(
        &nas,
        &[
            "request-info",
            "--to",
            CENTRE,
            "--case",
            &case,
            "--item",
            "current address",
            "--deadline",
            &deadline,
        ],
    );
    let due = json(&centre, &["inbox", "due", "--json"]);
    let items = due.as_array().unwrap();
    assert_eq!(items.len(), 1, "{due}");
    assert_eq!(items[0]["what"], "information-response");
    assert_eq!(items[0]["kind"], "information-request");
    assert_eq!(items[0]["message_id"], request);
    assert_eq!(items[0]["case"], case);
    assert_eq!(items[0]["due"], deadline);
    assert_eq!(items[0]["overdue"], false);
    let text = out(&silta(&centre, &["inbox", "due", "--offline"]));
    assert!(
        text.contains(&request) && !text.contains("current address"),
        "{text}"
    );
    // In the reader's language: the headings, what is due and the kind by their labels.
    let fi = out(&silta(
        &centre,
        &["--lang", "fi", "inbox", "due", "--offline"],
    ));
    assert!(
        fi.contains("määräaika")
            && fi.contains("vastaus tietopyyntöön")
            && fi.contains("Tietopyyntö")
            && fi.contains(&request),
        "{fi}"
    );
    let sv = out(&silta(
        &centre,
        &["--lang", "sv", "inbox", "due", "--offline"],
    ));
    assert!(
        sv.contains("förfaller")
            && sv.contains("svar på begäran om uppgifter")
            && sv.contains("Begäran om uppgifter"),
        "{sv}"
    );
    send(
        &centre,
        &[
            "info-response",
            "--reply-to",
            &request,
            "--not-held",
            "current address",
        ],
    );
    let due = json(&centre, &["inbox", "due", "--offline", "--json"]);
    assert_eq!(due, serde_json::json!([]), "answered: no longer due");
    // The setting is checked.
    let path = centre.dir.path().join("silta.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n[inbox]\nurgent_unacked_minutes = 0\n");
    std::fs::write(&path, text).unwrap();
    let o = silta(&centre, &["inbox", "due", "--offline"]);
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    assert!(out(&o).contains("urgent_unacked_minutes"), "{}", out(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_notifies_new_and_due_messages_without_their_content() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let (centre, nas, _other) = users(&pki, &relay).await;
    let hook_log = centre.dir.path().join("hook.log");
    let hook = centre.dir.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$@\" >> {0}\ncat >> {0}\necho >> {0}\n",
            hook_log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let path = centre.dir.path().join("silta.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[daemon]\nfolder = \"folders\"\nscan_interval_ms = 100\nsettle_ms = 100\nnotify_keep = 3\nnotify_command = [\"{}\"]\n",
        hook.display()
    ));
    std::fs::write(&path, text).unwrap();
    let mut daemon = tokio::process::Command::new(SILTA)
        .arg("--config")
        .arg(&path)
        .arg("daemon")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let case = String::from_utf8(silta(&nas, &["case", "new"]).stdout)
        .unwrap()
        .trim()
        .to_owned();
    const MARKER: &str = "MARKER-SECRET-ITEM";
    let (request, _) = send(
        &nas,
        &[
            "request-info",
            "--to",
            CENTRE,
            "--case",
            &case,
            "--urgency",
            "urgent",
            "--item",
            MARKER,
            "--note",
            MARKER,
            "--deadline",
            &day(2),
        ],
    );
    let notify = centre.dir.path().join("folders/notify");
    let files = |dir: &Path| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut found = Vec::new();
    for _ in 0..100 {
        found = files(&notify);
        if found.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        found.len(),
        2,
        "a message and a due notification: {found:?}"
    );
    let mut events = Vec::new();
    for f in &found {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(!text.contains(MARKER), "content in a notification: {text}");
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(f).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["message_id"], request);
        assert_eq!(v["kind"], "information-request");
        assert_eq!(v["urgency"], "urgent");
        assert_eq!(v["case"], case);
        events.push(v["event"].as_str().unwrap().to_owned());
        if v["event"] == "due" {
            assert_eq!(v["due"], day(2));
        }
    }
    events.sort();
    assert_eq!(events, ["due", "message"]);
    // The hook ran for both, with kind, urgency and id only.
    for _ in 0..100 {
        if std::fs::read_to_string(&hook_log).is_ok_and(|t| t.matches(&request).count() >= 4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(&hook_log).unwrap();
    assert!(
        log.contains(&format!("message information-request urgent {request}")),
        "{log}"
    );
    assert!(
        log.contains(&format!("due information-request urgent {request}")),
        "{log}"
    );
    assert!(!log.contains(MARKER), "{log}");
    // At most notify_keep files are kept.
    for i in 0..3 {
        send(
            &nas,
            &[
                "status-update",
                "--to",
                CENTRE,
                "--case",
                &case,
                "--change",
                "other",
                "--description",
                &format!("{MARKER} {i}"),
            ],
        );
    }
    for _ in 0..100 {
        if files(&notify)
            .iter()
            .any(|f| f.to_string_lossy().contains("message"))
            && files(&notify).len() == 3
        {
            let texts: Vec<String> = files(&notify)
                .iter()
                .map(|f| std::fs::read_to_string(f).unwrap())
                .collect();
            if texts.iter().all(|t| t.contains("status-update")) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = files(&notify);
    assert_eq!(left.len(), 3, "{left:?}");
    for f in &left {
        let t = std::fs::read_to_string(f).unwrap();
        assert!(t.contains("status-update") && !t.contains(MARKER), "{t}");
    }
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
}

//! The programs people use, as processes against a real relay: `silta init` for each role and
//! its error messages, the inbox and reply commands, the access log and its report, the demo.
//! Outputs people read are compared with golden files in tests/golden/ (SILTA_BLESS=1 rewrites).

use std::{path::Path, process::Command};

use silta_certs::ca::{CertificateAuthority, LeafSpec, Validity};
use silta_tests::{TRUST_DOMAIN, TestIdentity, TestPki, TestRelay, TestUser, assert_golden};

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");

fn run(config: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(SILTA);
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("SILTA_PURPOSE")
        // English, whatever the machine's locale (the golden files are English).
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG")
        .env("SILTA_USER", "tester");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::null()).output().unwrap()
}

/// The OS user the access log names (the tests' process user), and the redaction of it and its
/// uid in golden files.
fn os_user() -> String {
    silta_client::access::os_user().name
}

fn person_redacted() -> [(String, String); 1] {
    let os = silta_client::access::os_user();
    [(
        format!("{} (uid {}", os.name, os.uid),
        "[OS-USER] (uid [UID]".to_owned(),
    )]
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Writes `identity`'s files and the CA into `dir`; returns the `init` arguments for them.
fn init_args(
    pki: &TestPki,
    dir: &Path,
    identity: &TestIdentity,
    role: &str,
    port: u16,
) -> Vec<String> {
    std::fs::write(dir.join("ca.pem"), pki.ca.cert_pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), &identity.cert_pem).unwrap();
    std::fs::write(dir.join("cert.key"), &identity.key_pem).unwrap();
    [
        "init",
        "--role",
        role,
        "--relay",
        &format!("localhost:{port}"),
        "--ca",
        &dir.join("ca.pem").display().to_string(),
        "--cert",
        &dir.join("cert.pem").display().to_string(),
        "--key",
        &dir.join("cert.key").display().to_string(),
        "--state-dir",
        &dir.join("state").display().to_string(),
        "--folder",
        &dir.join("folders").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn init(
    pki: &TestPki,
    identity: &TestIdentity,
    role: &str,
    port: u16,
) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let args = init_args(pki, dir.path(), identity, role, port);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&dir.path().join("silta.toml"), &args, &[]);
    (dir, o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_sets_up_every_role_and_says_why_a_certificate_is_refused() {
    let mut pki = TestPki::new();
    let revoked = pki.client("centre/revoked");
    pki.revoke(&revoked);
    let relay = TestRelay::start(&pki, |_| {}).await;
    let port = relay.addr.port();

    for (principal, role, says) in [
        (
            "centre/joutseno",
            "centre",
            "published the keys of device default",
        ),
        (
            "assistance/nas",
            "assistance",
            "published the keys of device default",
        ),
        ("auditor/dpo", "auditor", "the delivery log holds"),
    ] {
        let (dir, o) = init(&pki, &pki.client(principal), role, port);
        assert_eq!(o.status.code(), Some(0), "{}", out(&o));
        assert!(out(&o).contains(says), "{}", out(&o));
        let config = std::fs::read_to_string(dir.path().join("silta.toml")).unwrap();
        assert_eq!(config.contains("[daemon]"), role == "centre", "{config}");
        assert_golden(
            &format!("init-{role}"),
            &out(&o),
            &[(&dir.path().display().to_string(), "[DIR]")],
        );
        // Running it again with the same settings is harmless; keys are kept, not replaced.
        if role != "auditor" {
            let before = std::fs::read(dir.path().join("state/keys/signing-key.pem")).unwrap();
            let args = init_args(&pki, dir.path(), &pki.client(principal), role, port);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let again = run(&dir.path().join("silta.toml"), &args, &[]);
            assert_eq!(again.status.code(), Some(0), "{}", out(&again));
            assert!(out(&again).contains("device keys already exist"));
            assert_eq!(
                before,
                std::fs::read(dir.path().join("state/keys/signing-key.pem")).unwrap()
            );
        }
    }

    // Every refusal says what is wrong and what to do, with its own exit code.
    let other_ca =
        CertificateAuthority::generate("Other CA", TRUST_DOMAIN, Validity::days_from_now(30))
            .unwrap();
    let foreign: TestIdentity = other_ca
        .issue_client(&"centre/joutseno".parse().unwrap(), 7)
        .unwrap()
        .into();
    let principal = "centre/joutseno".parse().unwrap();
    let expired = pki.issue(&LeafSpec::client(
        &principal,
        TRUST_DOMAIN,
        Validity::expired(),
    ));
    let early = pki.issue(&LeafSpec::client(
        &principal,
        TRUST_DOMAIN,
        Validity::not_yet_valid(),
    ));
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (name, identity, role, port, code, says) in [
        (
            "init-wrong-role",
            pki.client("centre/joutseno"),
            "assistance",
            port,
            64,
            "is for centre/joutseno, not for the role assistance",
        ),
        ("init-expired", expired, "centre", port, 77, "has EXPIRED"),
        (
            "init-not-yet-valid",
            early,
            "centre",
            port,
            77,
            "is NOT YET VALID",
        ),
        (
            "init-revoked",
            revoked.clone(),
            "centre",
            port,
            77,
            "it has been REVOKED",
        ),
        (
            "init-other-ca",
            foreign,
            "centre",
            port,
            77,
            "not issued by the relay's CA",
        ),
        (
            "init-unreachable",
            pki.client("centre/joutseno"),
            "centre",
            closed_port,
            69,
            "cannot reach the relay",
        ),
    ] {
        let (dir, o) = init(&pki, &identity, role, port);
        assert_eq!(o.status.code(), Some(code), "{name}: {}", out(&o));
        assert!(out(&o).contains(says), "{name}: {}", out(&o));
        assert!(out(&o).contains("hint: "), "{name}: {}", out(&o));
        assert_golden(
            name,
            &out(&o),
            &[
                (&dir.path().display().to_string(), "[DIR]"),
                (&closed_port.to_string(), "[PORT]"),
            ],
        );
    }
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_replies_and_the_access_report() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    let c = centre.dir.path().join("silta.toml");
    let n = nas.dir.path().join("silta.toml");
    for cfg in [&c, &n] {
        assert!(run(cfg, &["keys", "publish"], &[]).status.success());
    }

    // Reading needs a purpose: without a terminal to ask at, the command says how to give it.
    let o = run(&n, &["inbox", "list"], &[]);
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    assert_golden("inbox-no-purpose", &out(&o), &[]);

    // The centre: an anonymous consultation, then (with the case the NAS issues) a referral.
    let o = run(
        &c,
        &[
            "consultation",
            "--to",
            "assistance/nas",
            "--indicator",
            "passport held",
            "--questions",
            "Should we refer?",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = run(&n, &["case", "new", "--json"], &[]);
    assert!(o.status.success(), "{}", out(&o));
    let case: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let case = case["case"].as_str().unwrap().to_owned();
    assert_eq!(case.len(), 32);
    let o = run(&c, &["case", "new"], &[]);
    assert_eq!(o.status.code(), Some(64));
    assert!(
        out(&o).contains("issued by the Assistance System"),
        "{}",
        out(&o)
    );
    let form = centre.dir.path().join("referral.toml");
    std::fs::write(
        &form,
        "account = \"met at the centre\"\n[person]\nname = \"A. Person\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]\n",
    )
    .unwrap();
    let o = run(
        &c,
        &[
            "referral",
            "--to",
            "assistance/nas",
            "--case",
            &case,
            "--urgency",
            "urgent",
            "--form",
            form.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", out(&o));
    let referral: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let referral_id = referral["message_id"].as_str().unwrap().to_owned();

    // The inbox: urgent first, both new.
    let o = run(
        &n,
        &[
            "inbox",
            "list",
            "--purpose",
            "triage of new referrals",
            "--json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", out(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["kind"], "referral");
    assert_eq!(list[0]["urgency"], "urgent");
    assert_eq!(list[0]["state"], "new");
    assert_eq!(list[1]["kind"], "anonymous-consultation");
    let o = run(&n, &["inbox", "list", "--offline"], &[]);
    assert!(o.status.success(), "{}", out(&o));
    assert_golden("inbox-list", &out(&o), &[]);

    // The purpose of listing does not cover a case: `show` asks for the purpose of its case
    // (no terminal here: refused, naming the case); given once, it holds for that case.
    let o = run(&n, &["inbox", "show", &referral_id[..13]], &[]);
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    assert!(
        out(&o).contains("the access log needs the purpose of your access to case"),
        "{}",
        out(&o)
    );
    let o = run(
        &n,
        &[
            "inbox",
            "show",
            &referral_id[..13],
            "--purpose",
            "assessing the referral",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = run(&n, &["inbox", "show", &referral_id[..13]], &[]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("met at the centre"), "{}", out(&o));
    assert_golden("inbox-show", &out(&o), &[]);

    // Not acknowledged until a person does it: the sender sees "delivered", then "acknowledged".
    let sender = centre.client().await;
    let status = |sender: &silta_client::client::Client| {
        let id = uuid::Uuid::parse_str(&referral_id).unwrap();
        let conn = sender.connection().clone();
        async move {
            conn.mailbox()
                .status(silta_proto::pb::StatusRequest {
                    message_id: id.as_bytes().to_vec(),
                })
                .await
                .unwrap()
                .into_inner()
                .recipients[0]
                .state
        }
    };
    assert_eq!(
        status(&sender).await,
        silta_proto::pb::DeliveryState::Delivered as i32
    );
    let o = run(&n, &["inbox", "ack", &referral_id], &[]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        status(&sender).await,
        silta_proto::pb::DeliveryState::Acknowledged as i32
    );
    drop(sender);

    // Replies take the recipient and case from the message answered.
    let o = run(
        &n,
        &[
            "request-info",
            "--reply-to",
            &referral_id,
            "--item",
            "current accommodation",
            "--deadline",
            "2026-12-04",
            "--legal-basis",
            "statutory-information-right",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("to centre/joutseno"), "{}", out(&o));
    assert!(out(&o).contains(&case), "{}", out(&o));
    let o = run(
        &n,
        &[
            "decision",
            "--reply-to",
            &referral_id,
            "--admitted",
            "yes",
            "--date",
            "2026-11-27",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = run(
        &n,
        &[
            "meeting",
            "propose",
            "--to",
            "centre/joutseno",
            "--case",
            &case,
            "--slot",
            "2026-12-09T10:00:00Z/90",
            "--place",
            "NAS office",
            "--safety",
            "not at the centre",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = run(
        &n,
        &[
            "assessment",
            "--to",
            "centre/joutseno",
            "--case",
            &case,
            "--meeting-date",
            "2026-12-09",
            "--overall",
            "stable",
            "--threat",
            "moderate",
            "--criminal-case",
            "none",
            "--support-person",
            "yes",
            "--client-view",
            "wants legal advice",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = run(
        &n,
        &[
            "agreement",
            "--to",
            "centre/joutseno",
            "--case",
            &case,
            "--service",
            "accommodation=centre:social worker",
            "--service",
            "legal aid=assistance-system",
            "--status",
            "agreed",
            "--review-date",
            "2027-03-01",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", out(&o));
    // Bad flag values are named.
    let o = run(
        &n,
        &[
            "assessment",
            "--to",
            "centre/joutseno",
            "--case",
            &case,
            "--threat",
            "severe",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(64));
    assert_golden("assessment-bad-threat", &out(&o), &[]);
    // A decision must not carry more than yes/no and dates: a form with reasons is refused.
    let bad = nas.dir.path().join("decision.toml");
    std::fs::write(&bad, "reasons = \"the person told us everything\"\n").unwrap();
    let o = run(
        &n,
        &[
            "decision",
            "--reply-to",
            &referral_id,
            "--admitted",
            "no",
            "--form",
            bad.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(65), "{}", out(&o));
    assert_golden(
        "decision-with-reasons",
        &out(&o),
        &[(&bad.display().to_string(), "[FORM]")],
    );

    // The centre receives the replies in order.
    let o = run(
        &c,
        &[
            "inbox",
            "list",
            "--purpose",
            "following the referral",
            "--json",
        ],
        &[],
    );
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    for k in [
        "information-request",
        "admission-decision-notice",
        "meeting-proposal",
        "joint-assessment-record",
        "service-agreement",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }

    // The thread at the NAS: both directions, in order.
    let o = run(
        &n,
        &[
            "inbox",
            "thread",
            &case,
            "--json",
            "--purpose",
            "preparing the joint meeting",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", out(&o));
    let thread: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<&str> = thread
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "referral",
            "information-request",
            "admission-decision-notice",
            "meeting-proposal",
            "joint-assessment-record",
            "service-agreement"
        ]
    );

    // The access report: every opening, with who and why, in order.
    let o = run(&n, &["inbox", "access-report", &case, "--json"], &[]);
    assert!(o.status.success(), "{}", out(&o));
    let entries: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let got: Vec<(String, String)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["purpose"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("received", "triage of new referrals"),
        // Two lists (JSON, then offline) showed the referral among others.
        ("listed", "triage of new referrals"),
        ("listed", "triage of new referrals"),
        // Shown under the purpose given for its case (the listing's does not cover it), then
        // again with the purpose remembered for the case.
        ("shown", "assessing the referral"),
        ("shown", "assessing the referral"),
        // A send's purpose is what the message is for (no --purpose given), not its kind.
        (
            "disclosed",
            "asking for the information the admission decision needs",
        ),
        (
            "disclosed",
            "telling the referring centre the admission decision",
        ),
        ("disclosed", "arranging the joint meeting"),
        (
            "disclosed",
            "sharing the parts of the joint assessment the person agreed to",
        ),
        ("disclosed", "agreeing the division of work"),
        ("thread", "preparing the joint meeting"),
        ("reported", "preparing the joint meeting"),
    ]
    .iter()
    .map(|(a, p)| (a.to_string(), p.to_string()))
    .collect();
    assert_eq!(got, want);
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["who"] == os_user().as_str()
                && e["declared_user"] == "tester"
                && e["principal"] == "assistance/nas")
    );
    let o = run(&n, &["inbox", "access-report", &case], &[]);
    assert!(o.status.success(), "{}", out(&o));
    // The "who" column's width follows the OS user's name: the columns are compared without it.
    let [(person, redacted)] = person_redacted();
    let spaces = regex::Regex::new(" {2,}").unwrap();
    let rule = regex::Regex::new("(?m)^[- ]+$").unwrap();
    let text = out(&o).replace(&person, &redacted);
    let text = rule.replace_all(&text, "[RULE]");
    assert_golden(
        "access-report",
        &spaces.replace_all(&text, "  "),
        &[(&nas.dir.path().display().to_string(), "[DIR]")],
    );

    // "No case" is not a case: refused as a usage error, never one thread of every message
    // without a case (and nothing is recorded as read).
    let log_before = std::fs::read(nas.dir.path().join("state/access.log")).unwrap();
    for args in [
        &["inbox", "thread", "none", "--purpose", "p"][..],
        &["inbox", "thread", &"0".repeat(32), "--purpose", "p"],
        &["inbox", "access-report", "none", "--purpose", "p"],
        &[
            "inbox",
            "access-report",
            &"0".repeat(32),
            "--json",
            "--purpose",
            "p",
        ],
    ] {
        let o = run(&n, args, &[]);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", out(&o));
        assert!(
            out(&o).contains("give a case reference") && o.stdout.is_empty(),
            "{args:?}: {}",
            out(&o)
        );
    }
    assert_eq!(
        std::fs::read(nas.dir.path().join("state/access.log")).unwrap(),
        log_before
    );

    // The auditor: the case's trail as a table and CSV, the summary report with its plot.
    let auditor = TestUser::new(&pki, relay.addr, "auditor/dpo", "desk");
    let a = auditor.dir.path().join("silta.toml");
    let o = run(
        &a,
        &[
            "audit",
            "query",
            "--purpose",
            "supervision: case review",
            "--case",
            &case,
        ],
        &[],
    );
    assert!(o.status.success(), "{}", out(&o));
    let table = out(&o);
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .starts_with("index  time (UTC)"),
        "{table}"
    );
    assert!(
        table.contains("ACKNOWLEDGED") && table.contains("referral"),
        "{table}"
    );
    let o = run(
        &a,
        &[
            "audit",
            "query",
            "--purpose",
            "supervision: case review",
            "--case",
            &case,
            "--format",
            "csv",
        ],
        &[],
    );
    let csv = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(csv.starts_with("index,time,event,actor,"), "{csv}");
    // referral, information-request, decision, proposal, assessment, agreement: 6 ACCEPTED.
    assert_eq!(csv.matches("\"ACCEPTED\"").count(), 6, "{csv}");
    let plot = auditor.dir.path().join("report.svg");
    let o = run(
        &a,
        &[
            "audit",
            "report",
            "--purpose",
            "reporting",
            "--format",
            "csv",
            "--plot",
            plot.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", out(&o));
    let report = String::from_utf8_lossy(&o.stdout).into_owned();
    // Messages from the centre: consultation and referral, both acknowledged by the inbox user
    // (the referral) or still new (the consultation); from the NAS: five, none acknowledged yet.
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("total,kind,referral,1,1,1,0,0,1,")),
        "{report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("total,kind,anonymous-consultation,1,1,0,0,0,0,")),
        "{report}"
    );
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<?xml") && svg.contains("referral (n=1)"),
        "{svg}"
    );
    let o = run(
        &a,
        &[
            "audit",
            "report",
            "--purpose",
            "reporting",
            "--from",
            "2026-13",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));

    // A removed line is found: the report refuses to pretend the log is whole.
    let log = nas.dir.path().join("state/access.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&log, format!("{}\n{}\n", lines[0], lines[2..].join("\n"))).unwrap();
    let o = run(&n, &["inbox", "access-report", &case], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("ACCESS LOG DAMAGED"), "{}", out(&o));
    relay.stop().await;
}

#[test]
fn help_and_usage_errors() {
    let none = Path::new("/nonexistent/silta.toml");
    let o = run(none, &["--help"], &[]);
    assert!(o.status.success());
    assert_golden("help", &out(&o), &[]);
    let o = run(none, &["inbox", "--help"], &[]);
    assert!(o.status.success());
    assert_golden("inbox-help", &out(&o), &[]);
    let o = run(none, &["inbox", "list"], &[]);
    assert_eq!(o.status.code(), Some(64));
    assert_golden("no-configuration", &out(&o), &[]);
    // A bad value or flag is a usage error (64) named by the parser, before the configuration is
    // read; never 2, which says the delivery log did not verify.
    for format in ["xml", "TABLE", ""] {
        let o = run(
            none,
            &[
                "audit",
                "query",
                "--purpose",
                "reporting",
                "--format",
                format,
            ],
            &[],
        );
        assert_eq!(o.status.code(), Some(64), "{}", out(&o));
        assert!(
            out(&o).contains("[possible values: table, json, csv]"),
            "{}",
            out(&o)
        );
    }
    let o = run(none, &["audit", "verify", "--log-kee", "x"], &[]);
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    assert!(out(&o).contains("--log-kee"), "{}", out(&o));
    let o = run(none, &["--version"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
}

/// The demo plays a whole case on the embedded default and verifies the delivery log.
#[test]
fn the_demo_runs_and_its_audit_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(SILTA)
        .arg("demo")
        .arg("--keep")
        .arg(dir.path().join("demo"))
        .env_remove("SILTA_CONFIG")
        .output()
        .unwrap();
    let text = out(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    // The whole case, to the exit notice at the centre the case moved to.
    for step in 1..=17 {
        assert!(
            text.contains(&format!("{step:>3}. ")),
            "step {step} missing: {text}"
        );
    }
    assert!(
        text.contains("exit notice goes to the new centre"),
        "{text}"
    );
    assert!(text.contains("delivery log verified: "), "{text}");
    assert!(text.contains("demo complete"), "{text}");
    // The centre's folders: every form sent and acknowledged, nothing failed.
    let folders = dir.path().join("demo/centre-folders");
    assert!(
        std::fs::read_dir(folders.join("failed"))
            .unwrap()
            .next()
            .is_none()
    );
    assert!(
        std::fs::read_dir(folders.join("outbox"))
            .unwrap()
            .next()
            .is_none()
    );
    let statuses: Vec<_> = std::fs::read_dir(folders.join("sent"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".status.json"))
        .collect();
    assert_eq!(statuses.len(), 7);
    for s in statuses {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(s.path()).unwrap()).unwrap();
        assert_eq!(v["state"], "acknowledged", "{v}");
        assert_eq!(v["receipt"]["checked_against_log_key"], true);
    }
    assert!(
        std::fs::read_to_string(dir.path().join("demo/report.svg"))
            .unwrap()
            .starts_with("<?xml")
    );
    consultation_stays_unlinked(&dir.path().join("demo"));
}

/// From the kept relay's delivery log itself: the anonymous consultation and its reply carry no
/// case reference, no message with a case reference was sent before the referral that could
/// be them, and the case's first message is the Assistance System's answer to the referral.
fn consultation_stays_unlinked(demo: &Path) {
    use silta_proto::pb::{EventType, MessageKind as K};
    let store = silta_tests::open_store_offline(&demo.join("relay"));
    let events: Vec<_> = (0..store.event_count().unwrap())
        .map(|i| store.event(i).unwrap().unwrap())
        .collect();
    let accepted: Vec<_> = events
        .iter()
        .filter(|e| e.r#type == EventType::Accepted as i32)
        .collect();
    let of = |kind: K| {
        accepted
            .iter()
            .filter(|e| e.kind == kind as i32)
            .collect::<Vec<_>>()
    };
    let consultation = of(K::AnonymousConsultation);
    let reply = of(K::ConsultationReply);
    let referral = of(K::Referral);
    assert_eq!((consultation.len(), reply.len(), referral.len()), (1, 1, 1));
    let unlinked = [consultation[0], reply[0], referral[0]];
    for e in unlinked {
        assert!(
            e.case_ref.iter().all(|b| *b == 0),
            "{} carries a case reference",
            e.kind
        );
    }
    // The relay's stored envelopes: no message but the consultation's reply answers the
    // consultation or its reply (in_reply_to is metadata the relay keeps in clear).
    let anonymous = [
        consultation[0].message_id.clone(),
        reply[0].message_id.clone(),
    ];
    let mut looked_at = 0;
    for e in &accepted {
        let Some(env) = store
            .message(&e.message_id)
            .unwrap()
            .and_then(|m| m.envelope)
        else {
            continue;
        };
        looked_at += 1;
        if e.kind != K::ConsultationReply as i32 {
            assert!(
                !anonymous.contains(&env.in_reply_to),
                "a {} answers the anonymous consultation: {e:?}",
                e.kind
            );
        }
    }
    assert!(looked_at >= 3, "the relay kept {looked_at} envelopes");
    // No event of theirs names a case.
    for e in &events {
        if unlinked.iter().any(|u| u.message_id == e.message_id) {
            assert!(e.case_ref.iter().all(|b| *b == 0), "{e:?}");
        }
    }
    // The case appears first with the Assistance System's information request.
    let first_cased = accepted
        .iter()
        .find(|e| e.case_ref.iter().any(|b| *b != 0))
        .unwrap();
    assert_eq!(first_cased.kind, K::InformationRequest as i32);
    assert!(first_cased.index > referral[0].index);
    // And it ends with the exit notice, to the centre the case moved to.
    let last = of(K::ExitNotice);
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].recipients, vec!["centre/demo-centre-2".to_owned()]);
    assert_eq!(last[0].case_ref, first_cased.case_ref);
}

/// `silta demo --handover` plays both acts of the runbook's handover by itself, well within a
/// minute, prints the trail of it from the delivery log and leaves no folder behind.
#[test]
fn the_handover_demo_runs_and_cleans_up() {
    let started = std::time::Instant::now();
    let o = Command::new(SILTA)
        .args(["demo", "--handover"])
        .env_remove("SILTA_CONFIG")
        .output()
        .unwrap();
    let text = out(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{text}"
    );
    for step in 1..=16 {
        assert!(
            text.contains(&format!("{step:>3}. ")),
            "step {step} missing: {text}"
        );
    }
    for line in [
        "the copy for centre/joutseno is undeliverable (devices_retired)",
        "the old operator now gets: the relay rejected this installation's certificate: it has been REVOKED",
        "(meeting-proposal, the same content: true)",
        "NAS's copy is undeliverable (recipient_disabled)",
        "centre/kotka (revoked, disabled) tries to: the relay rejected this installation's certificate: it has been REVOKED",
        "writes in the moved case: the relay refused: centre/kotka left case",
        "The handover's trail in the delivery log",
        "handover demo complete",
    ] {
        assert!(text.contains(line), "{line:?} missing: {text}");
    }
    let trail = text.split("The handover's trail").nth(1).unwrap();
    let order = [
        "Admin.RetireDevices",
        "KEY_REVOKED",
        ": devices_retired",
        "(re-sends ",
        "PRINCIPAL_DISABLED",
        ": recipient_disabled",
        "CASE_MOVED",
        "PRINCIPAL_ENABLED",
        "SEND_REFUSED",
    ];
    let mut at = 0;
    for what in order {
        let found = trail[at..]
            .find(what)
            .unwrap_or_else(|| panic!("{what:?} missing or out of order: {trail}"));
        at += found;
    }
    // The temporary folder is gone.
    let ran_in = text
        .lines()
        .find_map(|l| l.strip_prefix("Everything above ran for real in "))
        .and_then(|l| l.split(" (").next())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(!Path::new(ran_in).exists(), "{ran_in} left behind");
}

/// Running a reply command again after an attempt that did not finish sends the same message
/// (same id, same bytes), so the relay cannot end up with two copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_failed_is_retried_as_the_same_message() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |c| c.limits.max_pending_items = 1).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    let c = centre.dir.path().join("silta.toml");
    let n = nas.dir.path().join("silta.toml");
    for cfg in [&c, &n] {
        assert!(run(cfg, &["keys", "publish"], &[]).status.success());
    }
    let consult = |q: &str| {
        run(
            &c,
            &[
                "consultation",
                "--to",
                "assistance/nas",
                "--questions",
                q,
                "--json",
            ],
            &[],
        )
    };
    let o = consult("first question");
    assert!(o.status.success(), "{}", out(&o));
    let first_sent: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let first_sent = first_sent["message_id"].as_str().unwrap().to_owned();
    // The NAS mailbox is full: the second attempt is refused after sealing.
    let o = consult("second question");
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("RESOURCE_EXHAUSTED")
            || out(&o).contains("ResourceExhausted")
            || out(&o).contains("limits.max_pending_items"),
        "{}",
        out(&o)
    );
    // Handed to the relay, so logged as disclosed, although the relay refused it for now.
    let log = std::fs::read_to_string(centre.dir.path().join("state/access.log")).unwrap();
    assert_eq!(
        log.lines().filter(|l| l.contains("\"disclosed\"")).count(),
        2,
        "{log}"
    );
    // Make room, then run the same command again: the same message id goes out.
    let o = run(&n, &["inbox", "list", "--purpose", "test", "--json"], &[]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let first = list[0]["message_id"].as_str().unwrap().to_owned();
    assert!(run(&n, &["inbox", "ack", &first], &[]).status.success());
    let o = consult("second question");
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("sending again the same message"),
        "{}",
        out(&o)
    );
    let sent: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let second = sent["message_id"].as_str().unwrap().to_owned();
    assert!(out(&o).contains(&second));
    // Once accepted it is forgotten: the same command now sends a new message.
    assert!(
        run(&n, &["inbox", "sync"], &[("SILTA_PURPOSE", "test")])
            .status
            .success()
    );
    assert!(run(&n, &["inbox", "ack", &second], &[]).status.success());
    let o = consult("second question");
    assert!(o.status.success(), "{}", out(&o));
    assert!(!out(&o).contains("sending again"), "{}", out(&o));
    let third: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let third_id = third["message_id"].as_str().unwrap().to_owned();
    assert_ne!(third_id, second);
    let accepted = relay
        .events()
        .iter()
        .filter(|e| e.r#type == silta_proto::pb::EventType::Accepted as i32)
        .count();
    // first, second (once, although attempted twice), third.
    assert_eq!(accepted, 3);
    // Each disclosure logged once, before it left, under the person who ran the command.
    let log = std::fs::read_to_string(centre.dir.path().join("state/access.log")).unwrap();
    let disclosed: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "disclosed")
        .collect();
    assert_eq!(disclosed.len(), 3, "{log}");
    for (entry, id) in disclosed.iter().zip([&first_sent, &second, &third_id]) {
        assert_eq!(entry["messages"], serde_json::json!([id]), "{log}");
        assert_eq!(entry["who"], os_user().as_str());
        assert_eq!(entry["declared_user"], "tester");
        assert_eq!(entry["recipients"], serde_json::json!(["assistance/nas"]));
    }
    relay.stop().await;
}

//! Retention on the clients: a closed case's plaintext goes from both ends after its period (a
//! centre running `silta daemon`, the Assistance System's inbox store), other cases stay; a
//! message with no case goes after the maximum age; `purge --dry-run` deletes nothing; the
//! access log records `closed` and `purged` with metadata only.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

use silta_client::{
    RetentionConfig,
    access::{AccessLog, Action},
    ids::CaseRef,
    retention::{self, Actor, ClosedCases, Place, Rule, Sweep},
};
use silta_tests::{TestPki, TestRelay, TestUser};

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");
const CENTRE: &str = "centre/joutseno";
const NAS: &str = "assistance/nas";
const CASE_A: &str = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0";
const CASE_B: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
const DAY: Duration = Duration::from_secs(24 * 3600);

fn silta(user: &TestUser, args: &[&str]) -> std::process::Output {
    Command::new(SILTA)
        .arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .args(args)
        .env_remove("SILTA_PURPOSE")
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

fn ok(o: std::process::Output) -> std::process::Output {
    assert!(o.status.success(), "{}", out(&o));
    o
}

fn append_config(user: &TestUser, text: &str) {
    let path = user.dir.path().join("silta.toml");
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str(text);
    std::fs::write(&path, config).unwrap();
}

/// A referral form naming a person (so the test can look for the name where it must not be).
fn referral(name: &str, case: &str) -> String {
    format!(
        "account = \"the account of {name}\"\n[person]\nname = \"{name}\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"{name}\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]\n\n[envelope]\nkind = \"referral\"\nto = \"{NAS}\"\ncase = \"{case}\"\n"
    )
}

fn drop_form(folders: &Path, name: &str, text: &str) {
    let outbox = folders.join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    let tmp = outbox.join(format!(".{name}.part"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, outbox.join(name)).unwrap();
}

async fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    for _ in 0..secs * 20 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The message records in a daemon's inbox/ folder: (path, case, message id).
fn inbox_files(folders: &Path) -> Vec<(PathBuf, String, String)> {
    let Ok(dir) = std::fs::read_dir(folders.join("inbox")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .filter_map(|p| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
            let case = v["case"].as_str()?.to_owned();
            let id = v["message_id"].as_str()?.to_owned();
            Some((p, case, id))
        })
        .collect()
}

/// The access log's entries, and its raw text.
fn access_log(user: &TestUser) -> (Vec<silta_client::access::Entry>, String) {
    let log = AccessLog::in_state_dir(&user.config.state_dir);
    let text = std::fs::read_to_string(log.path()).unwrap();
    (log.read().expect("the chain verifies"), text)
}

/// Metadata only: no entry has a content field, and no text of the forms is in the log.
fn assert_metadata_only(text: &str, names: &[&str]) {
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in v.as_object().unwrap().keys() {
            assert!(
                [
                    "prev",
                    "time",
                    "who",
                    "principal",
                    "action",
                    "case",
                    "messages",
                    "purpose",
                    "recipients",
                    "uid",
                    "os_user",
                    "declared_user"
                ]
                .contains(&key.as_str()),
                "unexpected field {key} in {line}"
            );
        }
    }
    for n in names {
        assert!(!text.contains(n), "{n} is in the access log");
    }
    assert!(!text.contains("payload") && !text.contains("account of"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_case_goes_from_the_centre_daemon_and_the_assistance_inbox_other_cases_stay() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    append_config(&nas, "\n[retention]\nclosed_case_days = 0\n");
    ok(silta(&nas, &["keys", "publish"]));
    let centre = TestUser::new(&pki, relay.addr, CENTRE, "server-1");
    append_config(
        &centre,
        "\n[daemon]\nfolder = \"folders\"\nscan_interval_ms = 100\nretry_initial_ms = 100\nretry_max_ms = 800\nsettle_ms = 100\n\n[retention]\nclosed_case_days = 0\nsweep_interval_ms = 200\n",
    );
    ok(silta(&centre, &["keys", "publish"]));
    let folders = centre.dir.path().join("folders");
    let daemon = tokio::process::Command::new(SILTA)
        .arg("--config")
        .arg(centre.dir.path().join("silta.toml"))
        .arg("daemon")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(centre.dir.path().join("daemon.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    drop_form(&folders, "a.toml", &referral("Aino Suljettu", CASE_A));
    drop_form(&folders, "b.toml", &referral("Bertta Avoin", CASE_B));
    let sent = folders.join("sent");
    wait_for("both forms sent", 30, || {
        sent.join("a.toml.status.json").exists() && sent.join("b.toml.status.json").exists()
    })
    .await;

    // The Assistance System takes both in, acknowledges them, and answers each.
    ok(silta(&nas, &["inbox", "sync", "--purpose", "triage"]));
    let o = ok(silta(
        &nas,
        &[
            "inbox",
            "list",
            "--offline",
            "--json",
            "--purpose",
            "triage",
        ],
    ));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id_of = |case: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["case"] == case)
            .unwrap()["message_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (ref_a, ref_b) = (id_of(CASE_A), id_of(CASE_B));
    ok(silta(
        &nas,
        &["inbox", "ack", &ref_a, &ref_b, "--purpose", "triage"],
    ));
    for id in [&ref_a, &ref_b] {
        ok(silta(
            &nas,
            &[
                "decision",
                "--reply-to",
                id,
                "--admitted",
                "yes",
                "--date",
                "2026-11-27",
            ],
        ));
    }
    wait_for("both decisions in the centre's inbox/", 30, || {
        inbox_files(&folders).len() == 2
    })
    .await;

    // Both ends close case A (the centre while its daemon runs).
    for user in [&nas, &centre] {
        let o = ok(silta(
            user,
            &["case", "close", CASE_A, "--reason", "assistance ended"],
        ));
        assert!(out(&o).contains("closed"), "{}", out(&o));
    }
    // A bad reference, "no case", and reopening a case not closed are usage errors (64).
    for args in [
        &["case", "close", "not-a-case"][..],
        &["case", "close", "00000000000000000000000000000000"],
        &["case", "reopen", CASE_B],
    ] {
        let o = silta(&nas, args);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", out(&o));
    }
    // Closing it again changes nothing.
    let o = ok(silta(&nas, &["case", "close", CASE_A]));
    assert!(out(&o).contains("already closed"), "{}", out(&o));

    // The centre's daemon sweeps by itself: case A's inbox/ and sent/ files go, B's stay.
    wait_for("case A's files to go at the centre", 30, || {
        !sent.join("a.toml").exists()
            && !sent.join("a.toml.status.json").exists()
            && inbox_files(&folders).iter().all(|(_, c, _)| c != CASE_A)
    })
    .await;
    assert!(sent.join("b.toml").exists());
    assert!(sent.join("b.toml.status.json").exists());
    let left = inbox_files(&folders);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].1, CASE_B);

    // At the Assistance System, by hand. Its decision in case A is kept until it hears that the
    // centre's copy is final (acknowledged): a sync brings the centre's acknowledgement.
    let dry_run = || {
        let o = ok(silta(&nas, &["purge", "--dry-run", "--json"]));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let dry = dry_run();
    let held = dry["held"].as_array().unwrap();
    assert!(
        held.iter().all(|h| h["case"] == CASE_A
            && h["why"]
                .as_str()
                .unwrap()
                .contains("a recipient's copy is not final yet")),
        "{dry}"
    );
    assert_eq!(held.len(), 1, "{dry}");
    let mut synced = false;
    for _ in 0..20 {
        ok(silta(&nas, &["inbox", "sync", "--purpose", "triage"]));
        if dry_run()["held"].as_array().unwrap().is_empty() {
            synced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(synced, "the centre's acknowledgement never arrived");
    // The dry run lists case A's copies and deletes nothing.
    let o = ok(silta(&nas, &["purge", "--dry-run", "--json"]));
    let dry: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let would = dry["would_delete"].as_array().unwrap();
    assert_eq!(would.len(), 2, "{dry}");
    assert!(
        would
            .iter()
            .all(|d| d["case"] == CASE_A && d["where"] == "inbox store")
    );
    assert!(would.iter().any(|d| d["message_id"] == ref_a.as_str()));
    assert!(!out(&o).contains("Aino"), "{}", out(&o));
    let count = |user: &TestUser| {
        let o = ok(silta(
            user,
            &["inbox", "list", "--offline", "--json", "--purpose", "check"],
        ));
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(&nas), 2, "received records before the purge");
    ok(silta(
        &nas,
        &["inbox", "show", &ref_a, "--purpose", "check"],
    ));

    let o = ok(silta(&nas, &["purge"]));
    assert!(out(&o).contains(&ref_a), "{}", out(&o));
    assert!(out(&o).contains("inbox store"), "{}", out(&o));
    assert!(!out(&o).contains("Aino"), "{}", out(&o));
    assert_eq!(count(&nas), 1, "case B's referral stays");
    let o = silta(&nas, &["inbox", "show", &ref_a, "--purpose", "check"]);
    assert!(!o.status.success(), "{}", out(&o));
    // Both directions of case A are gone.
    let o = silta(
        &nas,
        &["inbox", "thread", CASE_A, "--json", "--purpose", "check"],
    );
    assert!(!o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("no messages of case"), "{}", out(&o));
    let o = ok(silta(
        &nas,
        &["inbox", "thread", CASE_B, "--json", "--purpose", "check"],
    ));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Nothing more is due.
    let o = ok(silta(&nas, &["purge", "--dry-run"]));
    assert!(out(&o).contains("nothing is due"), "{}", out(&o));

    // Purge by hand is refused while the daemon runs (it sweeps by itself).
    let o = silta(&centre, &["purge", "--dry-run"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("daemon is running"), "{}", out(&o));

    // Both access logs: closed, then purged, for case A, with ids and metadata only.
    let me = silta_client::access::os_user().name;
    for (user, who) in [(&nas, me.as_str()), (&centre, "process:silta-daemon")] {
        let (entries, text) = access_log(user);
        let closed: Vec<_> = entries
            .iter()
            .filter(|e| e.action == Action::Closed)
            .collect();
        assert_eq!(closed.len(), 1, "{entries:?}");
        assert_eq!(closed[0].case, CASE_A);
        assert_eq!(closed[0].purpose, "assistance ended");
        let purged: Vec<_> = entries
            .iter()
            .filter(|e| e.action == Action::Purged)
            .collect();
        assert!(!purged.is_empty(), "{entries:?}");
        assert!(
            purged.iter().all(|e| e.case == CASE_A && e.who == who),
            "{purged:?}"
        );
        assert!(
            purged.iter().any(|e| e.messages.contains(&ref_a)),
            "{purged:?}"
        );
        assert!(
            purged
                .iter()
                .all(|e| e.purpose.starts_with("retention: closed case"))
        );
        assert_metadata_only(&text, &["Aino", "Bertta"]);
    }
    let (entries, _) = access_log(&centre);
    let purged_ids: Vec<&String> = entries
        .iter()
        .filter(|e| e.action == Action::Purged)
        .flat_map(|e| &e.messages)
        .collect();
    assert!(purged_ids.contains(&&ref_a), "the centre's sent referral A");

    // Stopped: the daemon's queue keeps no record of case A, and still has B's.
    let pid = daemon.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut daemon = daemon;
    tokio::time::timeout(Duration::from_secs(20), daemon.wait())
        .await
        .expect("the daemon stops")
        .unwrap();
    let db = sled::open(centre.config.state_dir.join("daemon-db")).unwrap();
    let cases: Vec<String> = db
        .open_tree("msgid_job")
        .unwrap()
        .iter()
        .values()
        .map(|v| {
            let job: serde_json::Value = serde_json::from_slice(&v.unwrap()).unwrap();
            job["summary"]["case"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(cases, vec![CASE_B.to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periods_count_by_the_given_clock_no_case_messages_follow_the_max_age() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, CENTRE, "server-1");
    ok(silta(&centre, &["keys", "publish"]));
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let client = nas.published().await;
    let form = centre.dir.path().join("referral.toml");
    let send = |name: &str, case: &str| {
        let text = referral(name, case);
        std::fs::write(&form, &text[..text.find("\n[envelope]").unwrap()]).unwrap();
        ok(silta(
            &centre,
            &[
                "send",
                "--kind",
                "referral",
                "--to",
                NAS,
                "--case",
                case,
                form.to_str().unwrap(),
            ],
        ));
    };
    let log = AccessLog::in_state_dir(&nas.config.state_dir);
    let reader = silta_client::inbox::Reader {
        log: &log,
        who: "tester",
        principal: NAS,
        purpose: "triage",
    };
    let sync = async |client: &silta_client::client::Client| {
        silta_client::inbox::sync(client, Duration::from_secs(2), &reader)
            .await
            .unwrap();
    };
    let id_of = |name: &str| {
        let state = client.state();
        state
            .messages()
            .unwrap()
            .into_iter()
            .find(|r| r.payload.to_string().contains(name))
            .unwrap()
    };

    send("Aino One", CASE_A);
    send("Aino Two", CASE_A);
    send("Bertta", CASE_B);
    send("Nobody Early", "none");
    sync(&client).await;
    // Arrival times are kept to the second: the later message arrives two seconds on.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    send("Nobody Later", "none");
    sync(&client).await;
    let (a1, a2, b, early, later) = (
        id_of("Aino One"),
        id_of("Aino Two"),
        id_of("Bertta"),
        id_of("Nobody Early"),
        id_of("Nobody Later"),
    );
    // A person acknowledges all but "Aino Two".
    for r in [&a1, &b, &early, &later] {
        silta_client::inbox::acknowledge(&client, r, "tester")
            .await
            .unwrap();
    }

    let policy = RetentionConfig {
        closed_case_days: 30,
        uncased_max_days: 90,
        sweep_interval_ms: 1000,
        ..RetentionConfig::default()
    };
    let actor = Actor {
        who: "tester",
        principal: NAS,
    };
    let t0 = SystemTime::now();
    let state_dir = &nas.config.state_dir;
    let case_a: CaseRef = CASE_A.parse().unwrap();
    retention::close_case(state_dir, actor, case_a, "assistance ended", t0).unwrap();
    let plan_at = |now: SystemTime| {
        let closed = ClosedCases::in_state_dir(state_dir).load().unwrap();
        let sweep = Sweep {
            state: Some(client.state()),
            folders: None,
            jobs: None,
            policy: &policy,
            closed: &closed,
            now,
        };
        let plan = sweep.plan().unwrap();
        (closed, plan)
    };
    let ids = |plan: &retention::Plan| -> Vec<String> {
        plan.doomed.iter().map(|d| d.message_id.clone()).collect()
    };

    // 29 days after the close: nothing is due.
    let (_, plan) = plan_at(t0 + 29 * DAY);
    assert!(plan.doomed.is_empty(), "{plan:?}");

    // 30 days after: case A's acknowledged message; the one no person acknowledged is held.
    let now = t0 + 30 * DAY + Duration::from_secs(1);
    let (closed, plan) = plan_at(now);
    assert_eq!(ids(&plan), vec![a1.message_id.to_string()], "{plan:?}");
    assert_eq!(plan.doomed[0].rule, Rule::ClosedCase);
    assert_eq!(plan.doomed[0].place, Place::InboxStore);
    assert_eq!(plan.doomed[0].case, CASE_A);
    assert_eq!(plan.held.len(), 1, "{plan:?}");
    assert_eq!(plan.held[0].message_id, a2.message_id.to_string());
    // Planning deleted nothing.
    assert!(
        client
            .state()
            .message(a1.message_id.as_bytes())
            .unwrap()
            .is_some()
    );
    let before = log.read().unwrap().len();
    let sweep = Sweep {
        state: Some(client.state()),
        folders: None,
        jobs: None,
        policy: &policy,
        closed: &closed,
        now,
    };
    let done = sweep.apply(&plan, state_dir, actor).unwrap();
    assert_eq!(done.len(), 1);
    assert!(
        client
            .state()
            .message(a1.message_id.as_bytes())
            .unwrap()
            .is_none()
    );
    for r in [&a2, &b, &early, &later] {
        assert!(
            client
                .state()
                .message(r.message_id.as_bytes())
                .unwrap()
                .is_some()
        );
    }
    let entries = log.read().unwrap();
    assert_eq!(entries.len(), before + 1);
    let purged = entries.last().unwrap();
    assert_eq!(purged.action, Action::Purged);
    assert_eq!(purged.case, CASE_A);
    assert_eq!(purged.messages, vec![a1.message_id.to_string()]);

    // A message with no case: gone after the maximum age, the younger one stays.
    let arrived = time::OffsetDateTime::parse(
        early.received_at.as_deref().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let early_at = SystemTime::from(arrived);
    let (_, plan) = plan_at(early_at + 90 * DAY - Duration::from_secs(1));
    assert!(
        !ids(&plan).contains(&early.message_id.to_string()),
        "{plan:?}"
    );
    let now = early_at + 90 * DAY + Duration::from_secs(1);
    let (closed, plan) = plan_at(now);
    let uncased: Vec<_> = plan
        .doomed
        .iter()
        .filter(|d| d.rule == Rule::NoCase)
        .collect();
    assert_eq!(uncased.len(), 1, "{plan:?}");
    assert_eq!(uncased[0].message_id, early.message_id.to_string());
    assert_eq!(uncased[0].case, "");
    let sweep = Sweep {
        state: Some(client.state()),
        folders: None,
        jobs: None,
        policy: &policy,
        closed: &closed,
        now,
    };
    sweep.apply(&plan, state_dir, actor).unwrap();
    assert!(
        client
            .state()
            .message(early.message_id.as_bytes())
            .unwrap()
            .is_none()
    );
    assert!(
        client
            .state()
            .message(later.message_id.as_bytes())
            .unwrap()
            .is_some()
    );
    assert!(
        client
            .state()
            .message(b.message_id.as_bytes())
            .unwrap()
            .is_some()
    );
    let purged = log.read().unwrap().pop().unwrap();
    assert_eq!((purged.action, purged.case.as_str()), (Action::Purged, ""));
    assert!(
        purged.purpose.contains("uncased_max_days = 90"),
        "{purged:?}"
    );

    // A case closed by mistake and reopened is not swept, however late.
    let case_b: CaseRef = CASE_B.parse().unwrap();
    retention::close_case(state_dir, actor, case_b, "closed by mistake", t0).unwrap();
    assert!(
        retention::reopen_case(state_dir, actor, case_b, "reopened")
            .unwrap()
            .is_some()
    );
    assert!(
        retention::reopen_case(state_dir, actor, case_b, "again")
            .unwrap()
            .is_none()
    );
    let (_, plan) = plan_at(t0 + 3650 * DAY);
    assert!(plan.doomed.iter().all(|d| d.case != CASE_B), "{plan:?}");
    let actions: Vec<Action> = log.read().unwrap().iter().map(|e| e.action).collect();
    assert!(
        actions.ends_with(&[Action::Closed, Action::Reopened]),
        "{actions:?}"
    );
    assert_metadata_only(
        &std::fs::read_to_string(log.path()).unwrap(),
        &["Aino", "Bertta", "Nobody"],
    );
}

/// An urgent referral arrives on a Friday evening; the relay expires the copy after a day; the
/// person runs `silta inbox ack` on Monday. The acknowledgement can never succeed now: the
/// message is marked "expired-at-relay" (final), the person is told to call or answer the sender,
/// and retention deletes the plaintext by its rules instead of keeping it for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_expired_at_the_relay_before_its_ack_is_final_and_swept() {
    let pki = TestPki::new();
    let clock = silta_tests::TestClock::new();
    let relay = TestRelay::start_clocked(&pki, &clock, |c| {
        c.retention.sweep_interval_ms = 20;
    })
    .await;
    let centre = TestUser::new(&pki, relay.addr, CENTRE, "server-1");
    ok(silta(&centre, &["keys", "publish"]));
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    let client = nas.published().await;
    let form = centre.dir.path().join("referral.toml");
    let text = referral("Urho Urgent", "none");
    std::fs::write(&form, &text[..text.find("\n[envelope]").unwrap()]).unwrap();
    ok(silta(
        &centre,
        &[
            "send",
            "--kind",
            "referral",
            "--to",
            NAS,
            "--case",
            "none",
            "--urgency",
            "urgent",
            form.to_str().unwrap(),
        ],
    ));
    let log = AccessLog::in_state_dir(&nas.config.state_dir);
    let reader = silta_client::inbox::Reader {
        log: &log,
        who: "tester",
        principal: NAS,
        purpose: "triage",
    };
    let summary = silta_client::inbox::sync(&client, Duration::from_secs(2), &reader)
        .await
        .unwrap();
    assert_eq!(summary.new.len(), 1, "{summary:?}");
    let id = summary.new[0].clone();
    let id_bytes = uuid::Uuid::parse_str(&id).unwrap().as_bytes().to_vec();
    drop(client);

    // Monday: the relay's urgent copy expired after a day (the sender was told).
    clock.advance(DAY + Duration::from_secs(60));
    wait_for("the EXPIRED event", 10, || {
        relay.events().iter().any(|e| {
            e.r#type == silta_proto::pb::EventType::Expired as i32 && e.message_id == id_bytes
        })
    })
    .await;

    // `inbox ack` says so plainly, and exits 1 (nothing was acknowledged); asked again, the same.
    for _ in 0..2 {
        let o = silta(&nas, &["inbox", "ack", &id]);
        assert_eq!(o.status.code(), Some(1), "{}", out(&o));
        let said = String::from_utf8_lossy(&o.stderr);
        assert!(
            said.contains("NOT acknowledged")
                && said.contains("EXPIRED")
                && said.contains(&format!("call or answer {CENTRE}")),
            "{said}"
        );
        assert!(!said.contains("Urho"), "{said}");
    }

    // The record is final ("expired-at-relay"): not listed as new, and retention deletes it
    // after the no-case maximum age instead of holding it for ever.
    let state = silta_client::state::State::open(&nas.config.state_dir).unwrap();
    let record = state.message(&id_bytes).unwrap().unwrap();
    assert_eq!(
        record.state,
        Some(silta_client::record::RecordState::ExpiredAtRelay)
    );
    assert!(
        silta_client::inbox::list(&state, true).unwrap().is_empty(),
        "an expired message is not shown as new"
    );
    let policy = RetentionConfig::default();
    let closed = ClosedCases::in_state_dir(&nas.config.state_dir)
        .load()
        .unwrap();
    let plan_at = |now: SystemTime| {
        Sweep {
            state: Some(&state),
            folders: None,
            jobs: None,
            policy: &policy,
            closed: &closed,
            now,
        }
        .plan()
        .unwrap()
    };
    let now = SystemTime::now();
    assert!(plan_at(now + 89 * DAY).doomed.is_empty());
    let plan = plan_at(now + 91 * DAY);
    assert!(plan.held.is_empty(), "{plan:?}");
    let doomed: Vec<_> = plan
        .doomed
        .iter()
        .map(|d| (d.message_id.as_str(), d.place, d.rule))
        .collect();
    assert_eq!(doomed, [(id.as_str(), Place::InboxStore, Rule::NoCase)]);
    relay.stop().await;
}

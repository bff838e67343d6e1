//! Who handles a case, and people, across two desks (devices) of the Assistance System, with the
//! real relay (real TLS, sled) and the real `silta` program: case claims seen at the other desk,
//! handover and release (and the holder rule), `inbox list` putting unclaimed urgent cases
//! first, the purpose asked per case, and a data subject's access report merged across desks.
//!
//! Until the relay delivers per device (issue 13 part A), it removes a message at its first
//! acknowledgement; so here the desk that did NOT send a claim or share always syncs first (right
//! both before and after per-device delivery).

use std::process::Command;

use serde_json::Value;
use silta_client::claims::{ClaimAction, claim_draft};
use silta_tests::{TestPki, TestRelay, TestUser};
use tonic::Code;

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");
const EX_USAGE: i32 = 64;

fn silta_env(user: &TestUser, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(SILTA);
    cmd.arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .args(args)
        .env_remove("SILTA_PURPOSE")
        .env_remove("SILTA_USER")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn ok(o: std::process::Output) -> std::process::Output {
    assert!(o.status.success(), "{}", text(&o));
    o
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

struct Desks {
    _relay: TestRelay,
    centre: TestUser,
    desk1: TestUser,
    desk2: TestUser,
}

impl Desks {
    async fn start() -> (TestPki, Desks) {
        let pki = TestPki::new();
        let relay = TestRelay::start(&pki, |_| {}).await;
        let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
        let desk1 = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
        let desk2 = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-2");
        for u in [&centre, &desk1, &desk2] {
            ok(silta_env(u, &["keys", "publish"], &[]));
        }
        let desks = Desks {
            _relay: relay,
            centre,
            desk1,
            desk2,
        };
        (pki, desks)
    }

    /// desk 1 as Anna, desk 2 as Ben ($SILTA_USER: declared names beside the OS user).
    fn at1(&self, args: &[&str]) -> std::process::Output {
        silta_env(&self.desk1, args, &[("SILTA_USER", "Anna K.")])
    }

    fn at2(&self, args: &[&str]) -> std::process::Output {
        silta_env(&self.desk2, args, &[("SILTA_USER", "Ben L.")])
    }

    fn referral(&self, case: &str, urgency: &str) {
        let form = self.centre.dir.path().join("referral.toml");
        std::fs::write(
            &form,
            "account = \"met at the centre\"\n[person]\nname = \"A. Person\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]\n",
        )
        .unwrap();
        ok(silta_env(
            &self.centre,
            &[
                "send",
                "--kind",
                "referral",
                "--to",
                "assistance/nas",
                "--case",
                case,
                "--urgency",
                urgency,
                form.to_str().unwrap(),
            ],
            &[],
        ));
    }
}

fn case(n: u8) -> String {
    format!("{n:02x}").repeat(16)
}

fn sync(o: std::process::Output) {
    ok(o);
}

/// (case, urgency, held_by) of `inbox list --offline --json`, in order.
fn listed(o: &std::process::Output) -> Vec<(String, String, Value)> {
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(o)));
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["case"].as_str().unwrap().to_owned(),
                r["urgency"].as_str().unwrap().to_owned(),
                r["held_by"].clone(),
            )
        })
        .collect()
}

fn os_user() -> String {
    silta_client::access::os_user().name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_seen_at_the_other_desk_and_unclaimed_urgent_cases_come_first() {
    let (_pki, d) = Desks::start().await;
    let (a, b, c, held) = (case(0xa1), case(0xb2), case(0xc3), case(0xd4));
    // Oldest first: the urgent case that will be held, then an urgent, an emergency, a normal.
    d.referral(&held, "urgent");
    d.referral(&a, "urgent");
    d.referral(&b, "emergency");
    d.referral(&c, "normal");
    sync(d.at1(&["inbox", "sync", "--purpose", "morning intake"]));
    sync(d.at2(&["inbox", "sync", "--purpose", "morning intake"]));

    // Desk 1 takes the case.
    let o = ok(d.at1(&["case", "claim", &held, "--note", "calling the centre today"]));
    assert!(stdout(&o).contains("hold case"), "{}", text(&o));
    let me = os_user();
    let anna = format!("{me} (Anna K.)");

    // Desk 2 sees it after a sync: in `case list`, `case show`, the thread and the inbox list.
    sync(d.at2(&["inbox", "sync", "--purpose", "morning intake"]));
    let o = ok(d.at2(&["case", "list"]));
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with(&held))
        .unwrap_or_else(|| panic!("{}", text(&o)))
        .to_owned();
    assert!(line.contains(&format!("{anna} (desk desk-1)")), "{line}");
    let other = stdout(&o)
        .lines()
        .find(|l| l.starts_with(&a))
        .unwrap()
        .to_owned();
    assert!(other.contains('—'), "{other}");
    let o = ok(d.at2(&["case", "show", &held]));
    assert!(
        stdout(&o).contains(&format!("held by: {anna} at desk desk-1 since")),
        "{}",
        text(&o)
    );
    let o = ok(d.at2(&[
        "inbox",
        "thread",
        &held,
        "--purpose",
        "checking who holds it",
    ]));
    assert!(
        stdout(&o).contains(&format!("* claimed by {anna} at desk desk-1 (")),
        "{}",
        text(&o)
    );
    assert!(
        stdout(&o).contains("calling the centre today"),
        "{}",
        text(&o)
    );

    // Unacknowledged urgent/emergency messages of cases nobody holds come first (emergency
    // first), then the rest as before: the held urgent case after them, though it is older.
    let o = ok(d.at2(&[
        "inbox",
        "list",
        "--offline",
        "--json",
        "--purpose",
        "triage",
    ]));
    let rows = listed(&o);
    let order: Vec<&str> = rows.iter().map(|(c, _, _)| c.as_str()).collect();
    assert_eq!(order, [&b, &a, &held, &c], "{}", text(&o));
    assert_eq!(rows[2].2, Value::String(anna.clone()));
    assert_eq!(rows[0].2, Value::Null);
    let o = ok(d.at2(&["inbox", "list", "--offline", "--purpose", "triage"]));
    assert!(stdout(&o).contains("held by"), "{}", text(&o));
    // Claims are bookkeeping, not inbox items.
    assert!(!stdout(&o).contains("case-claim"), "{}", text(&o));

    // Desk 1 (the sender) gets its own claim back and takes it in without a fuss.
    let o = ok(d.at1(&["inbox", "sync", "--purpose", "morning intake"]));
    assert!(!text(&o).contains("rejected"), "{}", text(&o));
    let o = ok(d.at1(&["case", "show", &held]));
    assert!(stdout(&o).contains("held by: "), "{}", text(&o));
    assert_eq!(stdout(&o).matches("claimed by").count(), 1, "{}", text(&o));

    // Handover: desk 1 hands the case to "ben"; desk 2 sees ben holds it.
    ok(d.at1(&[
        "case",
        "handover",
        &held,
        "--to",
        "ben",
        "--note",
        "on leave from Monday",
    ]));
    sync(d.at2(&["inbox", "sync", "--purpose", "morning intake"]));
    let o = ok(d.at2(&["case", "show", &held]));
    assert!(stdout(&o).contains("held by: ben since"), "{}", text(&o));
    assert!(
        stdout(&o).contains(&format!("handed over by {anna} to ben at desk desk-1")),
        "{}",
        text(&o)
    );

    // Desk 2's person is not ben: releasing is refused unless forced; forced, it says so.
    let o = d.at2(&["case", "release", &held]);
    assert_eq!(o.status.code(), Some(EX_USAGE), "{}", text(&o));
    assert!(text(&o).contains("is held by ben"), "{}", text(&o));
    let o = d.at2(&["--lang", "sv", "case", "release", &held]);
    assert_eq!(o.status.code(), Some(EX_USAGE), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("ärende {held} handläggs av ben sedan")),
        "{}",
        text(&o)
    );
    ok(d.at2(&["case", "release", &held, "--force"]));
    let o = ok(d.at2(&["case", "show", &held]));
    assert!(stdout(&o).contains("held by: nobody"), "{}", text(&o));
    assert!(stdout(&o).contains("[forced; held by ben]"), "{}", text(&o));
    // The force is in desk 2's access log too.
    let log = std::fs::read_to_string(d.desk2.dir.path().join("state/access.log")).unwrap();
    assert!(log.contains("[forced; held by ben]"), "{log}");

    // Desk 1 sees the release.
    sync(d.at1(&["inbox", "sync", "--purpose", "morning intake"]));
    let o = ok(d.at1(&["case", "show", &held]));
    assert!(stdout(&o).contains("held by: nobody"), "{}", text(&o));
    assert!(
        stdout(&o).contains(&format!("released by {me} (Ben L.) at desk desk-2")),
        "{}",
        text(&o)
    );
    // The same in Finnish and Swedish: the words translated, names, desks and notes as they are.
    let o = ok(d.at1(&["--lang", "fi", "case", "show", &held]));
    let fi = stdout(&o);
    assert!(fi.contains(&format!("asia {held}")), "{fi}");
    assert!(fi.contains("käsittelijä: ei kukaan"), "{fi}");
    assert!(
        fi.contains(&format!("vastuun otti {anna} työpisteessä desk-1 (")),
        "{fi}"
    );
    assert!(
        fi.contains(&format!("{me} (Ben L.) luopui työpisteessä desk-2 (")),
        "{fi}"
    );
    assert!(fi.contains("[forced; held by ben]"), "{fi}");
    let o = ok(d.at1(&["--lang", "sv", "case", "show", &held]));
    let sv = stdout(&o);
    assert!(sv.contains("handläggs av: ingen"), "{sv}");
    assert!(
        sv.contains(&format!(
            "överlämnat av {anna} till ben vid arbetsstation desk-1 ("
        )),
        "{sv}"
    );
    // Nobody holds it: the held case's urgent message is among the first again.
    let o = ok(d.at1(&[
        "inbox",
        "list",
        "--offline",
        "--json",
        "--purpose",
        "triage",
    ]));
    let order: Vec<String> = listed(&o).into_iter().map(|(c, _, _)| c).collect();
    assert_eq!(
        order,
        [b.clone(), held.clone(), a.clone(), c.clone()],
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_goes_only_to_the_senders_own_principal() {
    let (_pki, d) = Desks::start().await;
    let case = case(0x5e);
    d.referral(&case, "urgent");
    let client = d.desk1.client().await;
    let me = client.principal().clone();
    let draft = claim_draft(
        &me,
        [0x5e; 16],
        ClaimAction::Claim,
        "anna",
        "desk-1",
        "",
        "",
    );
    let mut envelope = client.seal(&draft).await.unwrap();
    // Named to the centre instead of the Assistance System's own desks.
    envelope.recipients = vec!["centre/joutseno".into()];
    let err = silta_tests::send_sealed_raw(&client, envelope)
        .await
        .unwrap_err();
    match err {
        silta_client::ClientError::Relay(s) => {
            assert_eq!(s.code(), Code::InvalidArgument, "{s:?}")
        }
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purpose_is_asked_per_case_never_across_cases() {
    let (_pki, d) = Desks::start().await;
    let (a, b) = (case(0x0a), case(0x0b));
    d.referral(&a, "urgent");
    d.referral(&b, "urgent");
    sync(d.at2(&["inbox", "sync", "--purpose", "intake"]));
    let o = ok(d.at2(&["inbox", "list", "--offline", "--json"]));
    let ids: Vec<(String, String)> = serde_json::from_slice::<Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["case"].as_str().unwrap().to_owned(),
                r["message_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let id_of = |c: &str| ids.iter().find(|(k, _)| k == c).unwrap().1.clone();

    // A purpose given for case A ...
    ok(d.at2(&["inbox", "show", &id_of(&a), "--purpose", "assessing case A"]));
    // ... is remembered for case A ...
    ok(d.at2(&["inbox", "thread", &a]));
    ok(d.at2(&["inbox", "show", &id_of(&a)]));
    // ... and never covers case B: asked (no terminal here: refused, naming the case).
    let o = d.at2(&["inbox", "show", &id_of(&b)]);
    assert_eq!(o.status.code(), Some(EX_USAGE), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("purpose of your access to case {b}")),
        "{}",
        text(&o)
    );
    let o = d.at2(&["inbox", "thread", &b]);
    assert_eq!(o.status.code(), Some(EX_USAGE), "{}", text(&o));
    // Nor does the general purpose of listing (remembered above by `inbox sync`).
    let o = d.at2(&["inbox", "access-report", &b]);
    assert_eq!(o.status.code(), Some(EX_USAGE), "{}", text(&o));

    // The access log has each case under its own purpose, with the OS user and uid beside the
    // declared name.
    let log = d.desk2.dir.path().join("state");
    let entries = silta_client::access::AccessLog::in_state_dir(&log)
        .read()
        .unwrap();
    let shown: Vec<_> = entries
        .iter()
        .filter(|e| {
            e.case == a
                && matches!(
                    e.action,
                    silta_client::access::Action::Shown | silta_client::access::Action::Thread
                )
        })
        .collect();
    assert!(shown.len() >= 3, "{entries:?}");
    assert!(shown.iter().all(|e| e.purpose == "assessing case A"));
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
    assert!(shown.iter().all(|e| e.uid == Some(uid)
        && e.os_user == os_user()
        && e.who == os_user()
        && e.declared_user == "Ben L."));
    assert!(
        !entries
            .iter()
            .any(|e| e.case == b && e.action == silta_client::access::Action::Shown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_subject_report_covers_every_desk_that_shared() {
    let (_pki, d) = Desks::start().await;
    let a = case(0x77);
    d.referral(&a, "urgent");
    sync(d.at1(&["inbox", "sync", "--purpose", "intake"]));
    // Desk 2 fetches with `inbox list` (which shares nothing) ...
    let o = ok(d.at2(&["inbox", "list", "--json", "--purpose", "intake"]));
    let id = serde_json::from_slice::<Value>(&o.stdout).unwrap()[0]["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // ... opens the referral; its sync then shares its entries with the other desks (a sync
    // shares a case at most once a day: this is the case's first share).
    ok(d.at2(&[
        "inbox",
        "show",
        &id,
        "--purpose",
        "assessing the referral at desk 2",
    ]));
    // ... and prints it: recorded as a print, not as another view.
    ok(d.at2(&["inbox", "show", &id, "--format", "html"]));
    let o = ok(d.at2(&["inbox", "sync", "--purpose", "intake"]));
    assert!(text(&o).contains("shared "), "{}", text(&o));
    // Before desk 1 syncs, its report covers only itself.
    let o = ok(d.at1(&[
        "inbox",
        "access-report",
        &a,
        "--data-subject",
        "--purpose",
        "data subject's request",
    ]));
    assert!(!stdout(&o).contains("desk-2"), "{}", text(&o));
    assert!(stdout(&o).contains("desk-1 (to "), "{}", text(&o));
    // After a sync, desk 2's accesses are in desk 1's report, with the purpose and desk but
    // no staff names.
    sync(d.at1(&["inbox", "sync", "--purpose", "intake"]));
    let o = ok(d.at1(&["inbox", "access-report", &a, "--data-subject"]));
    let out = stdout(&o);
    assert!(out.contains("desk-2 (to "), "{out}");
    let row = out
        .lines()
        .find(|l| l.contains("assessing the referral at desk 2"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("desk-2") && row.contains("shown"), "{row}");
    let printed: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("assessing the referral at desk 2") && l.contains("printed"))
        .collect();
    assert_eq!(printed.len(), 1, "{out}");
    assert!(printed[0].contains("desk-2"), "{out}");
    assert!(!out.contains("Ben L.") && !out.contains("Anna K."), "{out}");
    assert!(out.contains("Desks that never shared"), "{out}");
    // With --with-staff, names are shown, and that is recorded.
    let o = ok(d.at1(&[
        "inbox",
        "access-report",
        &a,
        "--data-subject",
        "--with-staff",
    ]));
    assert!(stdout(&o).contains("says: Ben L."), "{}", text(&o));
    let log = std::fs::read_to_string(d.desk1.dir.path().join("state/access.log")).unwrap();
    assert!(log.contains("WITH staff identities"), "{log}");
    // What the data subject receives, in their language: headings, the desks covered and up to
    // when, the note on desks that never shared, the actions and kinds by their labels.
    let o = ok(d.at1(&[
        "--lang",
        "fi",
        "inbox",
        "access-report",
        &a,
        "--data-subject",
    ]));
    let fi = stdout(&o);
    assert!(fi.contains(&format!("Asian {a} tietojen käyttö")), "{fi}");
    assert!(
        fi.contains("työpiste") && fi.contains("käyttötarkoitus"),
        "{fi}"
    );
    assert!(
        fi.contains("Kattaa työpisteet: desk-1 (") && fi.contains("tämän työpisteen oma loki"),
        "{fi}"
    );
    assert!(fi.contains("desk-2 ("), "{fi}");
    assert!(
        fi.contains("Työpisteet, jotka eivät ole koskaan jakaneet"),
        "{fi}"
    );
    assert!(fi.contains("Henkilöstöä ei nimetä"), "{fi}");
    let row = fi
        .lines()
        .find(|l| l.contains("assessing the referral at desk 2"))
        .unwrap_or_else(|| panic!("{fi}"));
    assert!(row.contains("avattu") && row.contains("Lähete"), "{row}");
    assert!(
        !fi.contains("Desks that never shared") && !fi.contains("Ben L."),
        "{fi}"
    );
    let o = ok(d.at1(&[
        "--lang",
        "sv",
        "inbox",
        "access-report",
        &a,
        "--data-subject",
    ]));
    let sv = stdout(&o);
    assert!(
        sv.contains(&format!("Åtkomst till uppgifterna i ärende {a}")),
        "{sv}"
    );
    assert!(
        sv.contains("Omfattar arbetsstationerna: desk-1 (")
            && sv.contains("Arbetsstationer som aldrig delat"),
        "{sv}"
    );
    // The JSON form: both desks covered, desk 2's entry there once.
    let o = ok(d.at1(&["inbox", "access-report", &a, "--data-subject", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let desks: Vec<&str> = v["covers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["desk"].as_str().unwrap())
        .collect();
    assert_eq!(desks, ["desk-1", "desk-2"]);
    let shown2 = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["desk"] == "desk-2" && e["action"] == "shown")
        .count();
    assert_eq!(shown2, 1, "{v}");
    let printed2 = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["desk"] == "desk-2" && e["action"] == "printed")
        .count();
    assert_eq!(printed2, 1, "{v}");
}

/// Every desk of the principal gets a claim, the sending desk too: there it is recognised as
/// the one it sent (not refused as a replay: that would remove it for the other desks before
/// per-device delivery, and tell them it was refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sending_desk_takes_its_own_claim_back_in() {
    let (_pki, d) = Desks::start().await;
    let case = case(0x3c);
    d.referral(&case, "urgent");
    sync(d.at1(&["inbox", "sync", "--purpose", "intake"]));
    ok(d.at1(&["case", "claim", &case]));
    let o = ok(d.at1(&["inbox", "sync", "--purpose", "intake"]));
    assert!(!text(&o).contains("rejected"), "{}", text(&o));
    let o = ok(d.at1(&["case", "show", &case]));
    assert_eq!(stdout(&o).matches("claimed by").count(), 1, "{}", text(&o));
    // Taken in: it does not come again, and nothing about it is listed.
    let o = ok(d.at1(&["inbox", "sync", "--purpose", "intake"]));
    assert!(!text(&o).contains("rejected"), "{}", text(&o));
    let o = ok(d.at1(&["inbox", "list", "--offline", "--json"]));
    assert_eq!(listed(&o).len(), 1, "{}", text(&o));
}

fn shares_in_log(user: &TestUser) -> usize {
    silta_client::access::AccessLog::in_state_dir(&user.dir.path().join("state"))
        .read()
        .unwrap()
        .iter()
        .filter(|e| e.action == silta_client::access::Action::Shared)
        .count()
}

/// Listing is not one person's data, and sync shares a case at most once a day: an `inbox list`
/// and a `inbox show` after the first share make no second share at the next sync (else every
/// list and every sync of every case added to the relay's never-erased log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_and_syncing_do_not_grow_the_log_with_shares() {
    let (_pki, d) = Desks::start().await;
    let a = case(0x5a);
    d.referral(&a, "urgent");
    let o = ok(d.at1(&["inbox", "sync", "--purpose", "intake"]));
    assert!(text(&o).contains("shared "), "{}", text(&o));
    assert_eq!(shares_in_log(&d.desk1), 1);
    ok(d.at1(&["inbox", "list", "--offline", "--purpose", "intake"]));
    let o = ok(d.at1(&["inbox", "sync", "--purpose", "intake"]));
    assert!(!text(&o).contains("shared "), "{}", text(&o));
    assert_eq!(shares_in_log(&d.desk1), 1);
    // Reading the case is shared, but not at a sync within the day.
    let o = ok(d.at1(&["inbox", "list", "--offline", "--json"]));
    let id = serde_json::from_slice::<Value>(&o.stdout).unwrap()[0]["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(d.at1(&["inbox", "show", &id, "--purpose", "assessing"]));
    let o = ok(d.at1(&["inbox", "sync", "--purpose", "intake"]));
    assert!(!text(&o).contains("shared "), "{}", text(&o));
    assert_eq!(shares_in_log(&d.desk1), 1);
    // A data subject's access report shares it at once.
    ok(d.at1(&[
        "inbox",
        "access-report",
        &a,
        "--data-subject",
        "--purpose",
        "request",
    ]));
    assert_eq!(shares_in_log(&d.desk1), 2);
}

/// A centre with two desks whose case was transferred away: its share of the case is refused
/// (PERMISSION_DENIED, it left the case). Sync does not try again every time, and each try's
/// disclosure entry never becomes an entry to share: the access log of the case stops growing
/// after the first sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_share_is_not_retried_and_does_not_feed_itself() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let old1 = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let old2 = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-2");
    let new = TestUser::new(&pki, relay.addr, "centre/kotka", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    for u in [&old1, &old2, &new, &nas] {
        ok(silta_env(u, &["keys", "publish"], &[]));
    }
    let c = case(0x7e);
    let form = old1.dir.path().join("referral.toml");
    std::fs::write(
        &form,
        "account = \"met at the centre\"\n[person]\nname = \"A. Person\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]\n",
    )
    .unwrap();
    let f = form.to_str().unwrap();
    let args = [
        "send",
        "--kind",
        "referral",
        "--to",
        "assistance/nas",
        "--case",
        &c,
        f,
    ];
    ok(silta_env(&old1, &args, &[]));
    ok(silta_env(
        &nas,
        &["inbox", "sync", "--purpose", "intake"],
        &[],
    ));
    let transfer = nas.dir.path().join("transfer.toml");
    std::fs::write(
        &transfer,
        include_str!("../../client/forms/case-transfer.toml")
            .replace("centre/demo-centre-2", "centre/kotka"),
    )
    .unwrap();
    let t = transfer.to_str().unwrap();
    let args = [
        "send",
        "--kind",
        "case-transfer",
        "--to",
        "centre/kotka",
        "--to",
        "centre/joutseno",
        "--case",
        &c,
        t,
    ];
    ok(silta_env(&nas, &args, &[]));

    let lines = || {
        silta_client::access::AccessLog::in_state_dir(&old1.dir.path().join("state"))
            .read()
            .unwrap()
            .iter()
            .filter(|e| e.case == c)
            .count()
    };
    let o = ok(silta_env(
        &old1,
        &["inbox", "sync", "--purpose", "intake"],
        &[],
    ));
    // The share was tried and refused.
    assert!(
        text(&o).contains("PermissionDenied") || text(&o).contains("left case"),
        "{}",
        text(&o)
    );
    let after_first = lines();
    for _ in 0..2 {
        let o = ok(silta_env(
            &old1,
            &["inbox", "sync", "--purpose", "intake"],
            &[],
        ));
        assert_eq!(lines(), after_first, "{}", text(&o));
        assert!(!text(&o).contains("could not share"), "{}", text(&o));
    }
    assert_eq!(shares_in_log(&old1), 0);
}

/// A first-contact referral has no case: reading it needs a purpose of its own (by its id),
/// never the general purpose of listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_without_a_case_is_not_read_under_the_listing_purpose() {
    let (_pki, d) = Desks::start().await;
    let form = d.centre.dir.path().join("referral.toml");
    std::fs::write(
        &form,
        "account = \"met at the centre\"\n[person]\nname = \"A. Person\"\nage_group = \"AGE_GROUP_ADULT\"\n[consent]\nperson_name = \"A. Person\"\ndate = \"2026-11-20\"\ninformed_about = [\"services\"]\n",
    )
    .unwrap();
    let f = form.to_str().unwrap();
    let args = [
        "send",
        "--kind",
        "referral",
        "--to",
        "assistance/nas",
        "--case",
        "none",
        f,
    ];
    ok(silta_env(&d.centre, &args, &[]));
    let o = ok(d.at1(&["inbox", "list", "--json", "--purpose", "triage"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["case"], "", "{v}");
    let id = v[0]["message_id"].as_str().unwrap().to_owned();
    let o = d.at1(&["inbox", "show", &id]);
    assert_eq!(o.status.code(), Some(EX_USAGE), "{}", text(&o));
    assert!(text(&o).contains("--purpose"), "{}", text(&o));
    for format in ["text", "html"] {
        let o = d.at1(&["inbox", "show", &id, "--format", format]);
        assert_eq!(o.status.code(), Some(EX_USAGE), "{}", text(&o));
    }
    // With a purpose for it, shown; and remembered for that message only.
    ok(d.at1(&["inbox", "show", &id, "--purpose", "assessing the referral"]));
    ok(d.at1(&["inbox", "show", &id]));
}

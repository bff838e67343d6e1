//! The one open path: every program that opens received messages (`silta receive`, `silta
//! inbox sync`, the daemon) records each opening in the access log, once, before the message
//! is printed, written or kept; a message whose opening cannot be logged is neither shown nor
//! acknowledged, and comes again.

use std::{collections::BTreeSet, path::Path, process::Command, time::Duration};

use silta_client::{access::AccessLog, client::Client, seal::Draft};
use silta_proto::pb;
use silta_tests::{TestPki, TestRelay, TestUser, send_raw};

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");
const CENTRE: &str = "centre/joutseno";
const NAS: &str = "assistance/nas";

fn silta(user: &TestUser, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(SILTA);
    cmd.arg("--config")
        .arg(user.dir.path().join("silta.toml"))
        .args(args)
        .env_remove("SILTA_PURPOSE")
        .env("SILTA_USER", "tester");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::null()).output().unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An anonymous consultation from the centre to the Assistance System; returns its id.
async fn consult(centre: &Client, n: usize) -> String {
    let payload = pb::payload::Payload {
        body: Some(pb::payload::payload::Body::AnonymousConsultation(
            pb::payload::AnonymousConsultation {
                indicators: vec![format!("indicator {n}")],
                questions: "does this justify a referral".into(),
                ..Default::default()
            },
        )),
    };
    let draft = Draft::new(
        pb::MessageKind::AnonymousConsultation,
        [0; 16],
        vec![NAS.parse().unwrap()],
        payload,
    );
    send_raw(centre, &draft).await.unwrap();
    uuid::Uuid::from_bytes(draft.message_id).to_string()
}

/// The `received` entries of an installation's access log: (message, who, purpose).
fn received(state_dir: &Path) -> Vec<(String, String, String)> {
    AccessLog::in_state_dir(state_dir)
        .read()
        .unwrap()
        .into_iter()
        .filter(|e| e.action.as_str() == "received")
        .map(|e| {
            assert_eq!(e.messages.len(), 1, "one entry per message: {e:?}");
            (e.messages[0].clone(), e.who, e.purpose)
        })
        .collect()
}

async fn setup() -> (TestPki, TestRelay, TestUser, TestUser, Client) {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, CENTRE, "server-1");
    let nas = TestUser::new(&pki, relay.addr, NAS, "desk-1");
    nas.published().await;
    let client = centre.published().await;
    (pki, relay, centre, nas, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silta_receive_logs_each_opening_with_its_purpose_before_showing_it() {
    let (_pki, relay, _centre, nas, centre_client) = setup().await;
    let first = consult(&centre_client, 1).await;
    let state = nas.config.state_dir.clone();

    // The access log cannot be written (a folder stands where the file goes): nothing is
    // printed, nothing acknowledged, and the command fails.
    let log_path = state.join("access.log");
    std::fs::create_dir_all(&log_path).unwrap();
    let o = silta(
        &nas,
        &["receive", "--wait", "2", "--purpose", "triage"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        o.stdout.is_empty(),
        "printed without a log entry: {}",
        text(&o)
    );
    assert!(text(&o).contains("access log"), "{}", text(&o));
    assert!(!text(&o).contains("does this justify"), "{}", text(&o));
    std::fs::remove_dir(&log_path).unwrap();

    // It came again: logged (with the purpose given), then printed.
    let second = consult(&centre_client, 2).await;
    let o = silta(
        &nas,
        &[
            "receive",
            "--wait",
            "2",
            "--purpose",
            "forwarding to the case system",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains(&first) && out.contains(&second), "{out}");
    let mut got = received(&state);
    got.sort();
    let mut want = vec![
        (
            first.clone(),
            silta_client::access::os_user().name,
            "forwarding to the case system".into(),
        ),
        (
            second.clone(),
            silta_client::access::os_user().name,
            "forwarding to the case system".into(),
        ),
    ];
    want.sort();
    assert_eq!(got, want);

    // Acknowledged: a second run opens nothing and logs nothing.
    let o = silta(&nas, &["receive", "--wait", "1", "--purpose", "again"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(received(&state).len(), 2);

    // $SILTA_PURPOSE, written into a folder; and without either, the configured default.
    let third = consult(&centre_client, 3).await;
    let out_dir = nas.dir.path().join("received");
    let o = silta(
        &nas,
        &["receive", "--wait", "2", "--out", out_dir.to_str().unwrap()],
        &[("SILTA_PURPOSE", "nightly export")],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(out_dir.join(format!("{third}.json")).exists());
    let fourth = consult(&centre_client, 4).await;
    let o = silta(&nas, &["receive", "--wait", "2"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let got = received(&state);
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(
        got[2],
        (
            third,
            silta_client::access::os_user().name,
            "nightly export".into()
        )
    );
    assert_eq!(
        got[3],
        (
            fourth,
            silta_client::access::os_user().name,
            "passing received messages to the case-management system".into()
        )
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_logs_each_message_once_however_often_it_syncs() {
    let (_pki, relay, _centre, nas, centre_client) = setup().await;
    let ids: BTreeSet<String> = [
        consult(&centre_client, 1).await,
        consult(&centre_client, 2).await,
    ]
    .into();
    let sync = |purpose: &str| {
        let o = silta(
            &nas,
            &["inbox", "sync", "--wait", "2", "--purpose", purpose],
            &[],
        );
        assert!(o.status.success(), "{}", text(&o));
    };
    // Not acknowledged yet, so each sync is handed them again: recognised, not logged again.
    sync("triage");
    sync("triage again");
    let state = nas.config.state_dir.clone();
    let got = received(&state);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got.iter()
            .map(|(m, _, _)| m.clone())
            .collect::<BTreeSet<_>>(),
        ids
    );
    assert!(
        got.iter()
            .all(|(_, who, p)| *who == silta_client::access::os_user().name && p == "triage")
    );
    let first = ids.iter().next().unwrap();
    let o = silta(&nas, &["inbox", "ack", first], &[]);
    assert!(o.status.success(), "{}", text(&o));
    sync("after the acknowledgement");
    assert_eq!(received(&state).len(), 2);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_logs_each_message_once() {
    let (_pki, relay, centre, nas, centre_client) = setup().await;
    drop(centre_client);
    let nas_client = nas.client().await;
    let mut ids = BTreeSet::new();
    for i in 0..3 {
        let payload = pb::payload::Payload {
            body: Some(pb::payload::payload::Body::ConsultationReply(
                pb::payload::ConsultationReply {
                    advice: format!("advice {i}"),
                    ..Default::default()
                },
            )),
        };
        let draft = Draft::new(
            pb::MessageKind::ConsultationReply,
            [0; 16],
            vec![CENTRE.parse().unwrap()],
            payload,
        );
        send_raw(&nas_client, &draft).await.unwrap();
        ids.insert(uuid::Uuid::from_bytes(draft.message_id).to_string());
    }
    let path = centre.dir.path().join("silta.toml");
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str("\n[daemon]\nfolder = \"folders\"\nscan_interval_ms = 100\n");
    std::fs::write(&path, config).unwrap();
    let inbox = centre.dir.path().join("folders/inbox");
    let mut daemon = tokio::process::Command::new(SILTA)
        .arg("--config")
        .arg(&path)
        .arg("daemon")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let count = || std::fs::read_dir(&inbox).map_or(0, |d| d.count());
    for _ in 0..200 {
        if count() >= ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(), ids.len());
    // A little longer: nothing more is logged for what was already kept.
    tokio::time::sleep(Duration::from_millis(500)).await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    let got = received(&centre.config.state_dir);
    assert_eq!(got.len(), ids.len(), "{got:?}");
    assert_eq!(
        got.iter()
            .map(|(m, _, _)| m.clone())
            .collect::<BTreeSet<_>>(),
        ids
    );
    assert!(got.iter().all(|(_, who, p)| who == "process:silta-daemon"
        && p == "passing received messages to the case-management system"));
    relay.stop().await;
}

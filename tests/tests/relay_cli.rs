//! The `silta-relay` binary as an operator meets it: the embedded default, bad configuration.

use std::{os::unix::fs::PermissionsExt as _, process::Command};

use silta_client::{Connection, RelayConfig};
use silta_tests::RelayProcess;

const RELAY: &str = env!("CARGO_BIN_EXE_silta-relay-under-test");

#[tokio::test]
async fn no_configuration_means_development_mode_with_its_own_pki() {
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(RELAY);
    // Port 0 instead of 7443 so parallel tests never collide; everything else is the default.
    cmd.current_dir(cwd.path())
        .env("SILTA_RELAY__SERVER__LISTEN", "127.0.0.1:0")
        .env_remove("SILTA_RELAY_CONFIG");
    let relay = RelayProcess::spawn_command(cmd).await;
    let pki = cwd.path().join("silta-data/dev-pki");
    for f in [
        "ca/ca.pem",
        "ca/crl.pem",
        "relay.pem",
        "centre-demo-centre.pem",
        "assistance-nas.key",
        "auditor-auditor.pem",
    ] {
        assert!(pki.join(f).exists(), "{f} missing");
    }
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(pki.join("centre-demo-centre.key"))
            .unwrap()
            .permissions(),
    ) & 0o777;
    assert_eq!(key_mode, 0o600);
    assert!(cwd.path().join("silta-data/db").exists());

    for who in ["centre-demo-centre", "assistance-nas", "auditor-auditor"] {
        let cfg = RelayConfig::from_files(
            &relay.addr.to_string(),
            "localhost",
            &pki.join("ca/ca.pem"),
            Some((
                &pki.join(format!("{who}.pem")),
                &pki.join(format!("{who}.key")),
            )),
        )
        .unwrap();
        Connection::connect(&cfg)
            .await
            .unwrap_or_else(|e| panic!("{who}: {e}"));
    }
    let status = relay.terminate().await;
    assert!(status.success(), "{status:?}");

    // The delivery log's key was created 0600, and `log-key` prints its verifier key.
    let log_key = cwd.path().join("silta-data/log-key.pem");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&log_key).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let out = Command::new(RELAY)
        .current_dir(cwd.path())
        .arg("log-key")
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap();
    let (name, _) = silta_proto::tlog::parse_verifier_key(key.trim()).unwrap();
    assert_eq!(name, "silta.example/delivery-log");

    // A second start reuses the PKI (the same CA) instead of making a new one.
    let ca_before = std::fs::read(pki.join("ca/ca.pem")).unwrap();
    let mut cmd = tokio::process::Command::new(RELAY);
    cmd.current_dir(cwd.path())
        .env("SILTA_RELAY__SERVER__LISTEN", "127.0.0.1:0");
    let relay = RelayProcess::spawn_command(cmd).await;
    assert_eq!(std::fs::read(pki.join("ca/ca.pem")).unwrap(), ca_before);
    relay.kill().await;
}

#[test]
fn invalid_configuration_exits_64_naming_the_key_before_opening_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!("[storage]\ndata_dir = {data:?}\n[tls]\ndevelopment = true\n[limits]\nmax_recipients = 0\n"),
    )
    .unwrap();
    let out = Command::new(RELAY)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("limits.max_recipients"), "{stderr}");
    assert!(
        !data.exists(),
        "the data folder was created despite the bad configuration"
    );

    // The same through the environment.
    std::fs::write(
        &config,
        format!("[storage]\ndata_dir = {data:?}\n[tls]\ndevelopment = true\n"),
    )
    .unwrap();
    let out = Command::new(RELAY)
        .arg("--config")
        .arg(&config)
        .env("SILTA_RELAY__SERVER__LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.listen"));

    // A missing file is a configuration error too.
    let out = Command::new(RELAY)
        .arg("--config")
        .arg(dir.path().join("nope.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(!data.exists());
}

#[test]
fn missing_certificate_files_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = {:?}\n[tls]\ntrust_domain = \"silta.example\"\nca = [\"/nonexistent/ca.pem\"]\ncrls = [\"/nonexistent/crl.pem\"]\ncert = \"/nonexistent/relay.pem\"\nkey = \"/nonexistent/relay.key\"\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let out = Command::new(RELAY)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/ca.pem"), "{stderr}");
}

/// The relay's logs (at debug level, JSON) never contain the ciphertext it carries.
#[tokio::test]
async fn logs_never_contain_ciphertext() {
    use silta_proto::pb::{self, MessageKind};
    let pki = silta_tests::TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.toml");
    std::fs::write(&config, pki.relay_config_toml(&dir.path().join("data"))).unwrap();
    let log_path = dir.path().join("relay.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut cmd = tokio::process::Command::new(RELAY);
    cmd.arg("--config")
        .arg(&config)
        .env("SILTA_RELAY__LOG__LEVEL", "debug,silta_relay=trace")
        .env("SILTA_RELAY__LOG__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stderr(log);
    let relay = RelayProcess::spawn_command(cmd).await;
    let nas_id = pki.client("assistance/nas");
    let nas = Connection::connect(&pki.client_config(relay.addr, Some(&nas_id)))
        .await
        .unwrap();
    let keys = silta_tests::publish_test_keys(&nas, &nas_id, "assistance/nas").await;
    let centre = Connection::connect(&pki.client_config(relay.addr, Some(&pki.client("centre/a"))))
        .await
        .unwrap();
    let marker = b"CIPHERTEXT-MARKER-7f3a9c";
    let env = silta_tests::envelope(MessageKind::Referral, &["assistance/nas"], marker);
    centre.mailbox().send(env.clone()).await.unwrap();
    let mut s = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(s.message().await.unwrap().is_some());
    nas.mailbox()
        .ack(silta_tests::ack_of(&keys, &env))
        .await
        .unwrap();
    let status = relay.terminate().await;
    assert!(status.success());

    let logs = std::fs::read(&log_path).unwrap();
    assert!(
        logs.len() > 1000,
        "expected debug logs, got {} bytes",
        logs.len()
    );
    let text = String::from_utf8_lossy(&logs);
    assert!(text.contains("message accepted"), "the accept is logged");
    assert!(
        !text.contains("CIPHERTEXT-MARKER"),
        "ciphertext leaked into the logs"
    );
    assert!(!logs.windows(marker.len()).any(|w| w == marker));
}

fn mode_of(path: &std::path::Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::symlink_metadata(path).unwrap().permissions())
        & 0o7777
}

/// A data folder that other users can enter is refused before anything is created in it: exit
/// 64, naming the folder and the fix.
/// Runs the relay with `args` and waits (bounded) for it to exit; a relay that starts and keeps
/// serving is killed and fails the test.
async fn run_to_exit(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(RELAY);
    cmd.args(args).kill_on_drop(true);
    tokio::time::timeout(std::time::Duration::from_secs(20), cmd.output())
        .await
        .expect("the relay did not exit: it started despite the open data folder")
        .unwrap()
}

#[tokio::test]
async fn a_data_folder_open_to_other_users_is_refused() {
    let pki = silta_tests::TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("relay.toml");
    std::fs::write(&config, pki.relay_config_toml(&data)).unwrap();
    for open in [0o755, 0o750, 0o701, 0o1777] {
        std::fs::create_dir_all(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(open)).unwrap();
        for command in [None, Some("log-key")] {
            let mut args = vec![std::ffi::OsStr::new("--config"), config.as_os_str()];
            args.extend(command.map(std::ffi::OsStr::new));
            let out = run_to_exit(&args).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(64),
                "{open:o} {command:?}: {stderr}"
            );
            assert!(
                stderr.contains(&format!("data folder {}", data.display())),
                "{stderr}"
            );
            assert!(
                stderr.contains(&format!("chmod 700 {}", data.display())),
                "{stderr}"
            );
            assert!(stderr.contains("accessible to other users"), "{stderr}");
            assert_eq!(
                std::fs::read_dir(&data).unwrap().count(),
                0,
                "{open:o} {command:?}: something was written into the open folder"
            );
            assert_eq!(mode_of(&data), open, "the operator's folder was changed");
        }
    }
    // Fixed as the message says, the same folder is used.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = Command::new(RELAY)
        .arg("--config")
        .arg(&config)
        .arg("log-key")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every folder the relay makes in its data folder is 0700 and every file 0600 (sled's database,
/// the log key, the high-water mark, the development PKI and its client configurations), even
/// under the common umask 022 with which sled alone would create files readable by everyone.
#[tokio::test]
async fn the_data_folder_and_everything_in_it_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srv/silta-data");
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = {data:?}\n[tls]\ndevelopment = true\n"
        ),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(RELAY)
        .arg("--config")
        .arg(&config);
    let relay = RelayProcess::spawn_command(cmd).await;
    // A real exchange, so the database has written data.
    let pki = data.join("dev-pki");
    let cfg = RelayConfig::from_files(
        &relay.addr.to_string(),
        "localhost",
        &pki.join("ca/ca.pem"),
        Some((
            &pki.join("centre-demo-centre.pem"),
            &pki.join("centre-demo-centre.key"),
        )),
    )
    .unwrap();
    Connection::connect(&cfg).await.unwrap();
    assert!(relay.terminate().await.success());

    assert_eq!(mode_of(&data), 0o700);
    assert_eq!(mode_of(data.parent().unwrap()), 0o700, "created parent");
    let (mut dirs, mut files) = (0, 0);
    let mut pending = vec![data.clone()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            if kind.is_dir() {
                assert_eq!(mode_of(&path), 0o700, "{}", path.display());
                dirs += 1;
                pending.push(path);
            } else {
                assert_eq!(mode_of(&path), 0o600, "{}", path.display());
                files += 1;
            }
        }
    }
    for f in [
        "log-key.pem",
        "log-high-water",
        "db/conf",
        "dev-pki/ca/ca.key",
    ] {
        assert!(data.join(f).is_file(), "{f} missing");
    }
    assert!(dirs >= 3 && files >= 10, "{dirs} folders, {files} files");
}

/// Written to a file (or a pipe, or journald), the relay's log has no ANSI colour codes.
#[tokio::test]
async fn the_log_has_no_colour_codes_when_not_on_a_terminal() {
    let pki = silta_tests::TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.toml");
    std::fs::write(&config, pki.relay_config_toml(&dir.path().join("data"))).unwrap();
    let log_path = dir.path().join("relay.log");
    let mut cmd = tokio::process::Command::new(RELAY);
    cmd.arg("--config")
        .arg(&config)
        .env("SILTA_RELAY__LOG__LEVEL", "info")
        .env("SILTA_RELAY__LOG__FORMAT", "human")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stderr(std::fs::File::create(&log_path).unwrap());
    let relay = RelayProcess::spawn_command(cmd).await;
    Connection::connect(&pki.client_config(relay.addr, Some(&pki.client("centre/a"))))
        .await
        .unwrap();
    assert!(relay.terminate().await.success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains('\u{1b}'), "ANSI escape in the log:\n{log:?}");
    assert!(log.contains(" INFO "), "expected info lines:\n{log}");
    assert!(log.contains("SIGTERM received"), "{log}");
}

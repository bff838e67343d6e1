//! `silta init --role ...`: configuration, device keys, publication, and an end-to-end check.

use std::path::{Path, PathBuf};

use silta_certs::identity::Principal;
use silta_client::{
    ClientConfig,
    client::{Client, ClientError},
    keys::DeviceKeys,
    times::rfc3339_unix,
};

use crate::{EX_NOPERM, EX_USAGE, Failure, cli::Command};

/// The settings `silta init` writes, with the paths made absolute.
struct Settings {
    role: String,
    relay: String,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    state_dir: PathBuf,
    folder: PathBuf,
    log_key: Option<String>,
}

pub(crate) async fn run(config_path: &Path, command: Command) -> Result<(), Failure> {
    let Command::Init {
        role,
        relay,
        ca,
        cert,
        key,
        state_dir,
        device,
        folder,
        log_key,
    } = command
    else {
        unreachable!("only init comes here")
    };
    if !["centre", "assistance", "auditor"].contains(&role.as_str()) {
        return Err(Failure::usage(format!(
            "--role {role}: use centre, assistance or auditor"
        )));
    }
    for (flag, p) in [("--ca", &ca), ("--cert", &cert), ("--key", &key)] {
        if !p.is_file() {
            return Err(Failure::usage(format!(
                "{flag} {}: no such file",
                p.display()
            )));
        }
    }
    let me = check_certificate(&cert, &role)?;
    let settings = Settings {
        ca: absolute(&ca)?,
        cert: absolute(&cert)?,
        key: absolute(&key)?,
        state_dir: absolute(&state_dir)?,
        folder: absolute(&folder)?,
        role,
        relay,
        log_key,
    };
    write_config(config_path, &config_text(config_path, &me, &settings))?;
    let config = ClientConfig::load(config_path)?;
    if settings.role == "auditor" {
        return check_auditor(&config, &me).await;
    }
    set_up_device(&config, &me, &device).await?;
    match settings.role.as_str() {
        "centre" => println!(
            "\nready. Next: `silta --config {} daemon` (or install client/systemd/silta-daemon.service),\nthen put forms into {}/outbox/ (examples: client/forms/outbox/).",
            config_path.display(),
            config.daemon.folder.display()
        ),
        _ => println!(
            "\nready. Next: `silta --config {} inbox list --purpose \"...\"`",
            config_path.display()
        ),
    }
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(p).map_err(|e| Failure::usage(format!("{}: {e}", p.display())))
}

/// The certificate must be this role's, and valid now: say exactly what is wrong before the
/// relay says it with a TLS alert. Returns whose it is.
fn check_certificate(cert: &Path, role: &str) -> Result<Principal, Failure> {
    let cert_pem =
        std::fs::read(cert).map_err(|e| Failure::usage(format!("{}: {e}", cert.display())))?;
    let (me, _) = silta_client::client::own_identity(&cert_pem)?;
    if me.role().to_string() != role {
        return Err(Failure {
            code: EX_USAGE,
            message: format!(
                "--cert {} is for {me}, not for the role {role}",
                cert.display()
            ),
            hint: Some(format!(
                "use the certificate issued for this installation's role, or --role {}",
                me.role()
            )),
        });
    }
    check_validity(&cert_pem)?;
    Ok(me)
}

/// A comment in the configuration, in the reader's language: every line starts with `# `.
fn comment(text: &str) -> String {
    text.lines().map(|l| format!("# {l}\n")).collect()
}

/// The configuration file, with a comment on every setting (in the reader's language).
fn config_text(config_path: &Path, me: &Principal, s: &Settings) -> String {
    let path = |p: &Path| p.display().to_string();
    format!(
        "{head}\n\
         {c_relay}\
         relay = {relay:?}\n\
         {c_ca}\
         ca = {ca:?}\n\
         {c_cert}\
         cert = {cert:?}\n\
         key = {key:?}\n\
         {c_state}\
         state_dir = {state:?}\n\
         {log_key_line}\
         {daemon}\
         {retention}",
        head = comment(&t!(
            "config-head",
            principal = me.to_string(),
            role = &s.role,
            config = config_path.display().to_string()
        )),
        c_relay = comment(&t!("config-relay")),
        c_ca = comment(&t!("config-ca")),
        c_cert = comment(&t!("config-cert")),
        c_state = comment(&t!("config-state-dir")),
        relay = s.relay,
        ca = path(&s.ca),
        cert = path(&s.cert),
        key = path(&s.key),
        state = path(&s.state_dir),
        log_key_line = match &s.log_key {
            Some(k) => format!("{}log_key = {k:?}\n", comment(&t!("config-log-key"))),
            None => format!(
                "{}# log_key = \"...\"\n",
                comment(&t!("config-log-key-none"))
            ),
        },
        daemon = if s.role == "centre" {
            format!(
                "\n[daemon]\n\
                 {}\
                 folder = {:?}\n\
                 {}\
                 scan_interval_ms = 1000\n\
                 retry_initial_ms = 1000\n\
                 retry_max_ms = 60000\n\
                 {}\
                 purpose = \"passing received messages to the case-management system\"\n",
                comment(&t!("config-daemon-folder")),
                path(&s.folder),
                comment(&t!("config-daemon-scan")),
                comment(&t!("config-daemon-purpose")),
            )
        } else {
            String::new()
        },
        retention = if s.role == "auditor" {
            String::new()
        } else {
            format!(
                "\n[retention]\n\
                 {}\
                 closed_case_days = 30\n\
                 {}\
                 uncased_max_days = 90\n",
                comment(&t!("config-retention-closed")),
                comment(&t!("config-retention-uncased")),
            )
        },
    )
}

/// Writes the configuration, unless the same is there already; never overwrites another.
fn write_config(config_path: &Path, text: &str) -> Result<(), Failure> {
    match std::fs::read_to_string(config_path) {
        Ok(old) if old == text => {
            println!("configuration {} already written", config_path.display());
            Ok(())
        }
        Ok(_) => Err(Failure {
            code: EX_USAGE,
            message: format!(
                "{} exists with other settings; not overwritten",
                config_path.display()
            ),
            hint: Some("remove it, or choose another file with --config".into()),
        }),
        Err(_) => {
            if let Some(dir) = config_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Failure::usage(format!("{}: {e}", dir.display())))?;
            }
            silta_certs::files::write_new(
                config_path,
                text.as_bytes(),
                silta_certs::files::SECRET_MODE,
            )
            .map_err(|e| Failure::usage(e.to_string()))?;
            println!("wrote configuration {}", config_path.display());
            Ok(())
        }
    }
}

/// A failure to connect or publish, with the hint to run the same `silta init` again.
fn try_again(e: ClientError, what_is_kept: &str) -> Failure {
    let mut f = Failure::from(e);
    f.hint = Some(format!(
        "{}; then run the same `silta init` again{what_is_kept}",
        f.hint.unwrap_or_else(|| "fix the cause".into())
    ));
    f
}

/// Auditors seal and open nothing: no device keys. Checks the connection and the log.
async fn check_auditor(config: &ClientConfig, me: &Principal) -> Result<(), Failure> {
    let conn = config.connect().await.map_err(|e| try_again(e, ""))?;
    let checkpoint = conn
        .audit()
        .checkpoint(silta_proto::pb::CheckpointRequest::default())
        .await
        .map_err(ClientError::from)?
        .into_inner();
    println!(
        "connected to {} as {me}: the delivery log holds {} entries",
        config.relay, checkpoint.tree_size
    );
    println!(
        "\nready. Next: `silta audit verify --log-key KEY --purpose log-verification` (KEY from the relay's operator: `silta-relay log-key`)"
    );
    Ok(())
}

/// Creates the device keys unless they exist, and publishes them (checking the connection end
/// to end).
async fn set_up_device(config: &ClientConfig, me: &Principal, device: &str) -> Result<(), Failure> {
    silta_client::fsutil::ensure_private_dir(&config.state_dir).map_err(Failure::failed)?;
    let keys = match DeviceKeys::load(&config.key_dir()) {
        Ok(k) => {
            println!(
                "device keys already exist in {}",
                config.key_dir().display()
            );
            k
        }
        Err(_) => {
            let k = DeviceKeys::init(&config.key_dir(), device).map_err(ClientError::from)?;
            println!(
                "created device keys for device {device} in {} (mode 0600)",
                config.key_dir().display()
            );
            k
        }
    };
    let again = |e| try_again(e, " (it keeps what is already set up)");
    let client = Client::start(config).await.map_err(again)?;
    let index = client.publish_keys().await.map_err(again)?;
    println!(
        "connected to {} as {me}; published the keys of device {} (log index {index})",
        config.relay,
        keys.device_id()
    );
    println!(
        "key fingerprint: {}  (read it to the other side by phone if they ask)",
        keys.fingerprint()
    );
    Ok(())
}

/// Refuses a certificate that is expired or not yet valid, saying which.
fn check_validity(cert_pem: &[u8]) -> Result<(), Failure> {
    use rustls_pki_types::{CertificateDer, pem::PemObject as _};
    let Some(Ok(der)) = CertificateDer::pem_slice_iter(cert_pem).next() else {
        return Err(Failure::usage("the certificate file holds no certificate"));
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return Err(Failure::usage("the certificate cannot be read"));
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let v = cert.validity();
    if now < v.not_before.timestamp() {
        return Err(Failure {
            code: EX_NOPERM,
            message: format!(
                "the certificate is NOT YET VALID: valid from {}",
                rfc3339_unix(v.not_before.timestamp())
            ),
            hint: Some("check this machine's clock, or wait until then".into()),
        });
    }
    if now > v.not_after.timestamp() {
        return Err(Failure {
            code: EX_NOPERM,
            message: format!(
                "the certificate has EXPIRED: valid until {}",
                rfc3339_unix(v.not_after.timestamp())
            ),
            hint: Some("ask your administrator for a new one (silta-certs issue)".into()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The English configuration is what `silta init` always wrote (the comments come from the
    /// reader's language file now).
    #[test]
    fn the_english_configuration_is_unchanged() {
        silta_client::i18n::set_current(silta_client::i18n::Lang::En);
        let settings = |role: &str, log_key: Option<&str>| Settings {
            role: role.into(),
            relay: "relay.example:7443".into(),
            ca: "/etc/silta/ca.pem".into(),
            cert: "/etc/silta/cert.pem".into(),
            key: "/etc/silta/cert.key".into(),
            state_dir: "/var/lib/silta".into(),
            folder: "/srv/silta".into(),
            log_key: log_key.map(Into::into),
        };
        let me: Principal = "centre/joutseno".parse().unwrap();
        let text = config_text(Path::new("silta.toml"), &me, &settings("centre", None));
        assert_eq!(
            text,
            "# silta configuration for centre/joutseno (role centre), written by `silta init`.\n\
             # Use it with `silta --config silta.toml ...` or SILTA_CONFIG=silta.toml.\n\
             \n\
             # The relay, host:port.\n\
             relay = \"relay.example:7443\"\n\
             # The CA that issued the relay's and everyone's certificates.\n\
             ca = \"/etc/silta/ca.pem\"\n\
             # This installation's certificate and key (from `silta-certs issue`).\n\
             cert = \"/etc/silta/cert.pem\"\n\
             key = \"/etc/silta/cert.key\"\n\
             # Device keys (keys/, mode 0600), local state, the access log (access.log).\n\
             state_dir = \"/var/lib/silta\"\n\
             # The delivery log's verifier key (`silta-relay log-key`, given out of band); with it\n\
             # every receipt is checked.\n\
             # log_key = \"...\"\n\
             \n[daemon]\n\
             # outbox/ (forms to send), sent/ (with their delivery state), failed/ (with the reason),\n\
             # inbox/ (messages received).\n\
             folder = \"/srv/silta\"\n\
             # How often outbox/ is looked at, and how retries back off while the relay is away.\n\
             scan_interval_ms = 1000\n\
             retry_initial_ms = 1000\n\
             retry_max_ms = 60000\n\
             # Recorded in the access log when the daemon opens received messages.\n\
             purpose = \"passing received messages to the case-management system\"\n\
             \n[retention]\n\
             # This installation's copies are transit copies (the case system of record keeps what the\n\
             # law says). Days after `silta case close CASE` before the case's messages are deleted here.\n\
             closed_case_days = 30\n\
             # Days after which a message with no case is deleted here.\n\
             uncased_max_days = 90\n"
        );
        // In every language each comment line is commented out.
        for lang in silta_client::i18n::Lang::ALL {
            for id in [
                "config-head",
                "config-log-key-none",
                "config-retention-closed",
            ] {
                let text = silta_client::i18n::tr(lang, id, &[]);
                assert!(comment(&text).lines().all(|l| l.starts_with("# ")));
            }
        }
    }
}

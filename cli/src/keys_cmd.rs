//! `silta keys ...`: this device's keys, publishing them, and another principal's keys.

use silta_client::{
    ClientConfig,
    client::{Client, ClientError},
    keys::DeviceKeys,
};

use crate::{
    Failure,
    cli::KeysCommand,
    output::{print_key_changes, print_keys},
};

pub(crate) async fn run(config: &ClientConfig, command: KeysCommand) -> Result<(), Failure> {
    match command {
        KeysCommand::Init { device } => init(config, &device),
        KeysCommand::Show => {
            let keys = DeviceKeys::load(&config.key_dir()).map_err(ClientError::from)?;
            print_keys(&keys);
            Ok(())
        }
        KeysCommand::Publish => publish(config).await,
        KeysCommand::Rotate => rotate(config).await,
        KeysCommand::Get { principal } => get(config, &principal).await,
    }
}

fn init(config: &ClientConfig, device: &str) -> Result<(), Failure> {
    silta_client::fsutil::ensure_private_dir(&config.state_dir).map_err(Failure::failed)?;
    let keys = DeviceKeys::init(&config.key_dir(), device).map_err(ClientError::from)?;
    println!(
        "created device keys for {device} in {}",
        config.key_dir().display()
    );
    print_keys(&keys);
    println!("next: `silta keys publish`");
    Ok(())
}

async fn publish(config: &ClientConfig) -> Result<(), Failure> {
    let client = Client::start(config).await?;
    let index = client.publish_keys().await?;
    println!(
        "published keys of {} device {} (fingerprint {}), log index {index}",
        client.principal(),
        client.keys().device_id(),
        client.keys().fingerprint()
    );
    Ok(())
}

/// Write the new keys beside, keep the old identity, publish, then switch
/// ([`DeviceKeys::prepare_rotation`] says why in that order).
async fn rotate(config: &ClientConfig) -> Result<(), Failure> {
    if silta_client::retention::daemon_running(config) {
        // A running daemon holds the old keys in memory: it could not open messages sealed to
        // the new ones.
        return Err(Failure::failed(format!(
            "a silta daemon is running on {}; stop it, run `silta keys rotate`, then start it again",
            config.daemon.folder.display()
        )));
    }
    let dir = config.key_dir();
    let client = Client::start(config).await?;
    let old = client.keys().fingerprint();
    let next = DeviceKeys::prepare_rotation(&dir, client.now()).map_err(ClientError::from)?;
    let index = client.publish_device_keys(&next).await?;
    DeviceKeys::finish_rotation(&dir).map_err(ClientError::from)?;
    println!(
        "rotated the keys of {} device {}: fingerprint {old} -> {} (published, log index {index})",
        client.principal(),
        next.device_id(),
        next.fingerprint()
    );
    println!(
        "the old identity is kept in {} so older messages still open; it is deleted after retention.retired_key_days ({} days)",
        dir.join(silta_client::keys::RETIRED_DIR).display(),
        config.retention.retired_key_days
    );
    println!("next: tell your correspondents the new fingerprint (`silta keys show`)");
    Ok(())
}

async fn get(config: &ClientConfig, principal: &str) -> Result<(), Failure> {
    let principal = principal
        .parse()
        .map_err(|e| Failure::usage(format!("{principal}: {e}")))?;
    let client = Client::start(config).await?;
    let keys = client.keys_of(&principal).await?;
    if keys.is_empty() {
        println!("{principal} has no valid published keys");
    }
    for k in keys {
        println!(
            "{} device {:<16} fingerprint {}",
            k.principal, k.device_id, k.fingerprint
        );
    }
    print_key_changes(&client);
    Ok(())
}

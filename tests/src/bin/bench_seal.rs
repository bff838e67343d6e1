//! Seal+open throughput of Silta's end-to-end layer, next to the reference `age` CLI encrypting
//! and decrypting the same data, in one run.
//!
//! `cargo run --release -p silta-tests --bin bench-seal`
//!
//! Silta's figure includes everything a message costs the two clients: building and signing the
//! signed payload, padding, age encryption to two recipients (recipient and sender), decryption,
//! signature verification and the envelope checks. The age CLI's figure is `age -r` then
//! `age -d -i` on a file with the same number of bytes, including process start-up, which
//! dominates small messages.

use std::{process::Command, time::Instant};

use silta_client::{
    bundle::VerifiedBundle,
    keys::DeviceKeys,
    seal::{Draft, open, seal},
};
use silta_proto::pb::{
    self, MessageKind,
    payload::{Payload, StatusUpdate, payload::Body},
};

fn main() {
    let sender: silta_certs::Principal = "centre/a".parse().unwrap();
    let recipient: silta_certs::Principal = "assistance/nas".parse().unwrap();
    let skeys = DeviceKeys::generate("s").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rkeys = DeviceKeys::init(&dir.path().join("keys"), "r").unwrap();
    let bundle = VerifiedBundle {
        principal: sender.clone(),
        device_id: "s".into(),
        age_recipient: skeys.age_recipient(),
        ed25519: *skeys.verifying_key().as_bytes(),
        fingerprint: skeys.fingerprint(),
        created_at: 0,
    };
    let to = [rkeys.age_recipient(), skeys.age_recipient()];
    let age_cli = Command::new("age")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());

    println!("bench-seal: Silta seal+open vs the age CLI (encrypt+decrypt), same payload size");
    println!(
        "{:>10} {:>6} {:>14} {:>12} {:>14} {:>12} {:>8}",
        "payload", "iters", "silta ms/msg", "silta MB/s", "age-cli ms/msg", "age MB/s", "ratio"
    );
    for (size, iters) in [(4 * 1024usize, 500usize), (10 * 1024 * 1024, 8)] {
        let text: String = (0..size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let payload = Payload {
            body: Some(Body::StatusUpdate(StatusUpdate {
                description: text,
                ..Default::default()
            })),
        };
        let start = Instant::now();
        for _ in 0..iters {
            let d = Draft::new(
                MessageKind::StatusUpdate,
                [1; 16],
                vec![recipient.clone()],
                payload.clone(),
            );
            let env = seal(&d, &sender, &skeys, &to).unwrap();
            let delivered = pb::DeliveredEnvelope {
                envelope: Some(env),
                sender: sender.to_string(),
                accepted_at: None,
                log_index: 0,
                handled: None,
                sealed_before_device: false,
            };
            let opened = open(&delivered, &recipient, &rkeys, |_, _| Some(bundle.clone())).unwrap();
            assert_eq!(opened.payload.encoded_len_hint(), size);
        }
        let silta = start.elapsed().as_secs_f64() / iters as f64;

        let (age_t, ratio) = if age_cli {
            let plain = dir.path().join("plain");
            let ct = dir.path().join("ct.age");
            let back = dir.path().join("back");
            std::fs::write(&plain, vec![b'x'; size]).unwrap();
            let key = dir.path().join("keys").join(silta_client::keys::AGE_FILE);
            let start = Instant::now();
            for _ in 0..iters {
                let _ = std::fs::remove_file(&ct);
                let _ = std::fs::remove_file(&back);
                let ok = Command::new("age")
                    .args(["-r", &to[0], "-r", &to[1], "-o"])
                    .arg(&ct)
                    .arg(&plain)
                    .status()
                    .unwrap()
                    .success()
                    && Command::new("age")
                        .arg("-d")
                        .arg("-i")
                        .arg(&key)
                        .arg("-o")
                        .arg(&back)
                        .arg(&ct)
                        .status()
                        .unwrap()
                        .success();
                assert!(ok, "age CLI failed");
            }
            let t = start.elapsed().as_secs_f64() / iters as f64;
            (Some(t), Some(silta / t))
        } else {
            (None, None)
        };
        let mb = size as f64 / (1024.0 * 1024.0);
        println!(
            "{:>10} {:>6} {:>14.3} {:>12.1} {:>14} {:>12} {:>8}",
            if size < 1 << 20 {
                format!("{} KiB", size / 1024)
            } else {
                format!("{} MiB", size >> 20)
            },
            iters,
            silta * 1000.0,
            mb / silta,
            age_t
                .map(|t| format!("{:.3}", t * 1000.0))
                .unwrap_or_else(|| "n/a".into()),
            age_t
                .map(|t| format!("{:.1}", mb / t))
                .unwrap_or_else(|| "n/a".into()),
            ratio
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "n/a".into()),
        );
    }
    if !age_cli {
        println!("(age CLI not installed: apt-get install age)");
    }
    println!("ratio = Silta time / age CLI time per message (below 1: Silta is faster)");
}

trait LenHint {
    fn encoded_len_hint(&self) -> usize;
}

impl LenHint for Payload {
    fn encoded_len_hint(&self) -> usize {
        match &self.body {
            Some(Body::StatusUpdate(s)) => s.description.len(),
            _ => 0,
        }
    }
}

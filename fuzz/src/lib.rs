//! Shared set-up of the fuzz targets and the seed generator (`examples/seeds.rs`).
//!
//! Nothing secret is committed: every private key a target needs (the receiving device's age
//! identity, the sending device's Ed25519 key, the log key) is derived here from a fixed,
//! public seed at start-up, so the committed seeds open with the same keys. The CA certificate in
//! `fixtures/ca.pem` is public; its private key existed only while the generator ran.

use std::sync::OnceLock;

use silta_certs::Principal;
use silta_client::{bundle::VerifiedBundle, keys::DeviceKeys};

/// The trust domain of the fixture CA.
pub const TRUST_DOMAIN: &str = "silta.example";
/// The receiving principal of the open targets when a message names no recipient.
pub const ME: &str = "assistance/nas";
/// The sending principal of the seeds.
pub const SENDER: &str = "centre/helsinki";
/// The device id of both deterministic devices.
pub const DEVICE: &str = "desk-1";
/// The origin (key name) of the deterministic delivery log.
pub const LOG_ORIGIN: &str = "silta.example/fuzz-log";

/// The CA certificate (PEM) that issued the certificates in the seeds.
pub const CA_PEM: &[u8] = include_bytes!("../fixtures/ca.pem");
/// When the seeds were made (unix seconds): the targets' clock, so certificates and CRLs in the
/// seeds are current whenever the targets run.
const GENERATED_AT: &str = include_str!("../fixtures/generated_at");

/// The targets' clock: a minute after the seeds were made.
pub fn now_unix() -> i64 {
    GENERATED_AT.trim().parse::<i64>().unwrap_or(0) + 60
}

/// [`now_unix`] for rustls/webpki.
pub fn now() -> rustls_pki_types::UnixTime {
    rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        now_unix().max(0) as u64
    ))
}

/// A device's keys derived from `tag` (public, fixed): age identity and Ed25519 key from
/// SHA-256 of the tag. Loaded through [`DeviceKeys::load`], the client's own reader.
pub fn device_keys(tag: &str) -> DeviceKeys {
    let age_bytes = ring::digest::digest(&ring::digest::SHA256, format!("{tag}/age").as_bytes());
    let hrp = bech32::Hrp::parse("age-secret-key-").expect("hrp");
    let age_secret = bech32::encode::<bech32::Bech32>(hrp, age_bytes.as_ref())
        .expect("bech32")
        .to_uppercase();
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed(&format!("{tag}/ed25519")));
    let pem = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_pem(
        &signing,
        ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF,
    )
    .expect("pkcs8");
    let dir = tempfile::tempdir().expect("temp dir");
    let write =
        |name: &str, data: &str| std::fs::write(dir.path().join(name), data).expect("write");
    write(silta_client::keys::AGE_FILE, &format!("{age_secret}\n"));
    write(silta_client::keys::SIGNING_FILE, &pem);
    write(silta_client::keys::DEVICE_FILE, &format!("{DEVICE}\n"));
    DeviceKeys::load(dir.path()).expect("deterministic keys load")
}

fn seed(tag: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, tag.as_bytes());
    d.as_ref().try_into().expect("32 bytes")
}

/// The receiving device (every sealed seed is encrypted to it).
pub fn recipient_keys() -> &'static DeviceKeys {
    static K: OnceLock<DeviceKeys> = OnceLock::new();
    K.get_or_init(|| device_keys("silta-fuzz/recipient"))
}

/// The sending device (every sealed seed is signed by it).
pub fn sender_keys() -> &'static DeviceKeys {
    static K: OnceLock<DeviceKeys> = OnceLock::new();
    K.get_or_init(|| device_keys("silta-fuzz/sender"))
}

/// The sending device's bundle as `principal`'s device `device`, as if it verified against the
/// CA: the open targets' answer to "whose key signed this?".
pub fn sender_bundle(principal: &str, device: &str) -> Option<VerifiedBundle> {
    let keys = sender_keys();
    let principal: Principal = principal.parse().ok()?;
    let ed25519 = *keys.verifying_key().as_bytes();
    Some(VerifiedBundle {
        principal,
        device_id: device.to_owned(),
        age_recipient: keys.age_recipient(),
        fingerprint: keys.fingerprint(),
        ed25519,
        created_at: now_unix() - 3600,
        opens_version: silta_client::seal::NEWEST_VERSION,
    })
}

/// The delivery log's signing key.
pub fn log_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&seed("silta-fuzz/log"))
}

/// The delivery log's verifier key (signed-note format).
pub fn log_verifier() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        silta_proto::tlog::verifier_key(LOG_ORIGIN, log_key().verifying_key().as_bytes())
    })
}

/// The proofs target's input: a mode byte (even: inclusion, odd: consistency), two big-endian
/// u64 (index and size, or old and new size), then 32-byte hashes (leaf and root, or old and new
/// root) followed by the proof. Shorter inputs are padded with zeros.
pub struct ProofInput {
    /// Inclusion (false) or consistency (true).
    pub consistency: bool,
    /// Index, or old size.
    pub a: u64,
    /// Size, or new size.
    pub b: u64,
    /// Leaf hash, or old root.
    pub h1: [u8; 32],
    /// Root, or new root.
    pub h2: [u8; 32],
    /// The proof.
    pub proof: Vec<[u8; 32]>,
}

impl ProofInput {
    /// Reads the framing above.
    pub fn parse(data: &[u8]) -> ProofInput {
        let mut head = [0u8; 81];
        let n = data.len().min(81);
        head[..n].copy_from_slice(&data[..n]);
        let rest = data.get(81..).unwrap_or_default();
        ProofInput {
            consistency: head[0] & 1 == 1,
            a: u64::from_be_bytes(head[1..9].try_into().unwrap_or_default()),
            b: u64::from_be_bytes(head[9..17].try_into().unwrap_or_default()),
            h1: head[17..49].try_into().unwrap_or_default(),
            h2: head[49..81].try_into().unwrap_or_default(),
            proof: rest
                .chunks_exact(32)
                .map(|c| c.try_into().unwrap_or_default())
                .collect(),
        }
    }

    /// The framing above.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![u8::from(self.consistency)];
        out.extend_from_slice(&self.a.to_be_bytes());
        out.extend_from_slice(&self.b.to_be_bytes());
        out.extend_from_slice(&self.h1);
        out.extend_from_slice(&self.h2);
        for p in &self.proof {
            out.extend_from_slice(p);
        }
        out
    }
}

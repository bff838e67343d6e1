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
//! # Interface
//! What the `silta` program, the system tests (`silta-tests`) and the fuzz targets use; nothing
//! else is public.
//!
//! At the crate root: [`ClientConfig`] (with [`ReceiveConfig`], [`DaemonConfig`]), the
//! connection ([`Connection`], [`RelayConfig`], [`ConnectError`]), and failures with what they
//! mean ([`ClientError`], [`ErrorKind`]).
//!
//! Public modules:
//! - [`client`]: [`client::Client`], a configured client: keys, seal and send, receive, open.
//! - [`outbox`]: the one send path: id, durable sealed copy, access log, send, receipt.
//! - [`receive`]: the one open path: fetch, open and verify, log the opening, keep, acknowledge.
//! - [`inbox`]: messages kept by `silta inbox sync`: listing, threads, acknowledging.
//! - [`daemon`]: the centre daemon: outbox, sent, failed and inbox folders, a durable queue.
//! - [`admin`]: the relay's Admin service (role `admin`).
//! - [`access`]: the client-side access log (who opened which case's messages, and why).
//! - [`audit`]: verifying the delivery log, receipts, offline evidence.
//! - [`report`]: the auditor's monthly summary of the delivery log (table, CSV, JSON, SVG).
//! - [`seal`]: sealing and opening, with precise rejection reasons.
//! - [`bundle`]: key bundles: building, signing with the certificate key, verifying against the CA.
//! - [`keys`]: a device's age identity and Ed25519 signing key, on disk.
//! - [`payload`]: payload kinds, validation rules, forms (TOML/JSON).
//! - [`form`]: form files with their `[envelope]` table; message id and case arguments.
//! - [`record`]: typed records of messages kept and shown; delivery states.
//! - [`ids`]: message ids and case references.
//! - [`state`]: the client's local state: pinned keys, message ids seen.
//! - [`fsutil`]: atomic file writes, private folders.
//! - [`retention`]: closing cases and deleting plaintext after its retention period.
//! - [`i18n`]: what people read in Finnish, Swedish or English (Fluent); language codes.
//! - [`text`]: text from the relay or another party made safe to print (terminal, CSV).
//! - [`times`]: RFC 3339 times (the one formatter).
//!
//! Private: `connection` (re-exported above), `config` (re-exported above), `error`
//! (re-exported above), `ack` (acknowledgements checked against CA-verified key bundles, used
//! by [`client`] and [`audit`]).
//!
//! [`pb::payload::SignedPayload`]: silta_proto::pb::payload::SignedPayload
#![warn(missing_docs)]

pub mod access;
mod ack;
pub mod admin;
pub mod audit;
pub mod bundle;
pub mod claims;
pub mod client;
mod config;
mod connection;
pub mod daemon;
pub mod due;
mod error;
pub mod expiry;
pub mod form;
pub mod fsutil;
pub mod i18n;
pub mod ids;
pub mod inbox;
pub mod key_history;
pub mod keys;
pub mod outbox;
pub mod payload;
pub mod receive;
pub mod record;
pub mod report;
pub mod resend;
pub mod retention;
pub mod seal;
pub mod state;
pub mod text;
pub mod times;

pub use config::{ClientConfig, DaemonConfig, ExpiryConfig, ReceiveConfig, RetentionConfig};
pub use connection::{ConnectError, Connection, RelayConfig};
pub use error::{ClientError, ErrorKind};

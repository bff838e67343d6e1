//! The Silta wire protocol.
//!
//! `silta.v1` is the relay API (Mailbox, Directory, AuditLog): what the relay sees, i.e.
//! routing metadata, ciphertext and audit events. The `.proto` files under `silta/v1/` are the
//! source of truth and document every field; the Rust code is generated at build time by
//! `protox` + `tonic-prost-build`, with no system `protoc`.
//!
//! # Layout
//! - [`pb`]: the generated messages, clients (`*_client`) and servers (`*_server`).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC server reflection.

mod generated {
    #![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    #[rustfmt::skip]
    pub mod silta_v1 {
        tonic::include_proto!("silta.v1");
    }
}

/// Generated protobuf and gRPC code for package `silta.v1`.
pub mod pb {
    pub use crate::generated::silta_v1::*;
}

/// The encoded `FileDescriptorSet` of every Silta proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/silta_descriptor.bin"));

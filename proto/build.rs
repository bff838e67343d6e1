//! Generates the gRPC and protobuf code from `silta/v1/*.proto` with protox: no system `protoc`.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

const PROTOS: &[&str] = &[
    "silta/v1/common.proto",
    "silta/v1/mailbox.proto",
    "silta/v1/directory.proto",
    "silta/v1/audit.proto",
    "silta/v1/admin.proto",
    "silta/v1/payload.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=silta");
    let fds = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // prost-build does not write the descriptor set on the compile_fds path (STACK.md §1);
    // reflection needs it.
    fs::write(out_dir.join("silta_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // The ciphertext is the bulk of a message: `Bytes`, so that it is shared, not copied,
        // from the decoded request onwards, and a sealing client can hand over a buffer it did
        // not have to copy into a `Vec`.
        .bytes(".silta.v1.Envelope.ciphertext")
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}

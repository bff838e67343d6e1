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
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}

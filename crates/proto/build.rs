//! Compiles `proto/raftq/v1/*.proto` into Rust with `protox` (a pure-Rust
//! protobuf compiler, so no system `protoc` is needed) and
//! `tonic-prost-build`, and writes the encoded `FileDescriptorSet` to
//! `OUT_DIR/raftq_v1_descriptor.bin` for gRPC server reflection.

use std::{env, error::Error, fs, path::PathBuf};

use protox::prost::Message as _;

/// The proto files, relative to the proto root.
const PROTOS: [&str; 4] =
    ["raftq/v1/queue.proto", "raftq/v1/cluster.proto", "raftq/v1/raft.proto", "raftq/v1/errors.proto"];

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    // A directory here makes cargo rerun this script when any file under it
    // changes (or is added or removed).
    println!("cargo:rerun-if-changed={}", proto_root.display());

    // Parse and type-check the protos; the set keeps source info (comments),
    // which prost turns into doc comments and reflection clients display.
    let fds = protox::compile(PROTOS, [&proto_root])?;

    fs::write(out_dir.join("raftq_v1_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Every `bytes` field becomes `bytes::Bytes`: zero-copy from the
        // network buffer into the state machine and back.
        .bytes(".")
        .compile_fds(fds)?;

    Ok(())
}

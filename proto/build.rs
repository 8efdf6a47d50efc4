//! Compiles `proto/strom/v1/*.proto` with protox (no system `protoc` needed)
//! and generates tonic clients and servers. Metadata records live in the
//! `strom-metadata` crate and are referenced from there.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "strom/v1/common.proto",
        "strom/v1/controller.proto",
        "strom/v1/raft.proto",
        "strom/v1/broker.proto",
        "strom/v1/group.proto",
        "strom/v1/records.proto",
        "strom/v1/txn.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rerun-if-changed=strom/metadata/v1/records.proto");
    let fds = protox::compile(files, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // For server reflection: every Strom file, imports included.
    std::fs::write(
        out_dir.join("strom_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".strom.metadata.v1", "::strom_metadata::pb")
        // Record batches stay `Bytes` end to end: no copy between the
        // transport, the log and the client.
        .bytes(".strom.v1.ProducePartitionData.records")
        .bytes(".strom.v1.FetchPartitionResponse.records")
        .compile_fds(fds)?;
    Ok(())
}

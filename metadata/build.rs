//! Generates the metadata record types from `proto/strom/metadata/v1/records.proto`
//! with protox (no system `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = "strom/metadata/v1/records.proto";
    println!("cargo:rerun-if-changed=../proto/{file}");
    let fds = protox::compile([file], ["../proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}

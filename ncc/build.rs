//! Compiles ncc's subset of the GoBGP API (`third_party/gobgp/gobgp.proto`: GoBGP's
//! interface, not ours, so it sits with third-party material) with protox: no system
//! `protoc`, and no dependency on the GoBGP sources being installed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = "third_party/gobgp/gobgp.proto";
    println!("cargo:rerun-if-changed={file}");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(["gobgp.proto"], ["third_party/gobgp"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .out_dir(out)
        .compile_fds(fds)?;
    Ok(())
}

//! Compiles the `.proto` files with protox (pure Rust, no system `protoc`) and generates prost
//! messages, tonic services, and the descriptor set prost-reflect needs for the text format.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let files = [
        "seesaw/config/config.proto",
        "seesaw/ipc/engine.proto",
        "seesaw/ipc/ncc.proto",
        "seesaw/ipc/sync.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed=proto/{f}");
    }
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(files)?;
    std::fs::write(
        out.join("seesaw_fds.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    // Every config message derives ReflectMessage so text format can decode straight into it.
    let mut builder = tonic_prost_build::configure();
    for msg in compiler.descriptor_pool().all_messages() {
        let name = msg.full_name();
        if name.starts_with("seesaw.config.") {
            builder = builder
                .message_attribute(name, "#[derive(::prost_reflect::ReflectMessage)]")
                .message_attribute(
                    name,
                    format!(
                        r#"#[prost_reflect(message_name = "{name}", descriptor_pool = "crate::DESCRIPTOR_POOL")]"#
                    ),
                );
        }
    }
    builder.compile_fds(compiler.file_descriptor_set())?;

    // A second copy of the services' server traits in which every RPC answers `unimplemented`
    // unless overridden, for test fakes only (feature `test-stubs`, module `engine_stubs`): a
    // fake implements the RPCs its test uses, while production servers keep implementing the
    // strict traits above. Messages are not generated again: they are the crate's own.
    let stubs = out.join("stubs");
    std::fs::create_dir_all(&stubs)?;
    tonic_prost_build::configure()
        .build_client(false)
        .generate_default_stubs(true)
        .extern_path(".seesaw.config", "crate::config")
        .extern_path(".seesaw.engine", "crate::engine")
        .extern_path(".seesaw.ncc", "crate::ncc")
        .extern_path(".seesaw.sync", "crate::sync")
        .out_dir(&stubs)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

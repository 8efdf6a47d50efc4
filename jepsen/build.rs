//! Builds `syncwatch/syncwatch.c` into a shared library that the
//! fault-injection suite preloads into every `stromd` (see the file's
//! header): the power-cut nemeses learn from it which bytes were fsynced.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = PathBuf::from("syncwatch/syncwatch.c");
    println!("cargo::rerun-if-changed={}", src.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let lib = out.join("libstrom_syncwatch.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-ldl")
        .status()
        .unwrap_or_else(|e| panic!("run {cc} to build {}: {e}", src.display()));
    assert!(status.success(), "{cc} failed to build {}", src.display());
    println!("cargo::rustc-env=STROM_SYNCWATCH_LIB={}", lib.display());
}

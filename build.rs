//! Records which compiler built the binary, for the machine line of the
//! figures `cargo run --release -- figures` writes.

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(
            || "rustc (unknown version)".to_string(),
            |v| v.trim().to_string(),
        );
    println!("cargo:rustc-env=COROUTINES_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}

//! Compiles `tests/c/test_ffi.c` with the system C compiler against the
//! committed header and the built library, and runs it: plainly, and under
//! AddressSanitizer + UndefinedBehaviorSanitizer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn target_dir() -> PathBuf {
    // tests run from target/<profile>/deps/<test>
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    Sanitizers,
    Valgrind,
}

fn compile_and_run(mode: Mode) {
    let sanitize = mode == Mode::Sanitizers;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = target_dir();
    assert!(
        lib_dir.join("libvault_ffi.so").exists(),
        "build the cdylib first (cargo build -p vault-ffi)"
    );
    let out = tempfile::tempdir().unwrap();
    let exe = out.path().join(if sanitize {
        "test_ffi_asan"
    } else {
        "test_ffi"
    });
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut cmd = Command::new(cc);
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1"])
        .arg("-I")
        .arg(manifest.join("include"))
        .arg(manifest.join("tests/c/test_ffi.c"))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(&lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .args(["-lvault_ffi", "-lpthread"]);
    if sanitize {
        cmd.args(["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]);
    }
    let st = cmd.status().unwrap();
    assert!(st.success(), "C compilation failed");
    let mut runner = if mode == Mode::Valgrind {
        let mut c = Command::new("valgrind");
        c.args([
            "--error-exitcode=3",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "-q",
        ])
        .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let run = runner
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "C test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all C ABI checks passed"), "{stdout}");
}

#[test]
fn c_test_program_passes() {
    compile_and_run(Mode::Plain);
}

#[test]
fn c_test_program_passes_under_asan_and_ubsan() {
    compile_and_run(Mode::Sanitizers);
}

/// Valgrind (memcheck): no invalid access and no definite leak. `.ci/run`
/// installs valgrind.
#[test]
fn c_test_program_passes_under_valgrind() {
    compile_and_run(Mode::Valgrind);
}

//! Issue 22 point 1: the demo's binary step (`vw_vipwarden_bin` in testbed/lib/topology.sh)
//! rebuilds when a source is newer than the binary, reuses a fresh one, and without a usable
//! toolchain says what to install (rustup) instead of `cargo not found`. Runs the real shell
//! function against a scratch repository and stand-in `cargo`/`rustc` that record their calls.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

const LIB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testbed/lib.sh");

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A repository with one source file and, if `rustc` is given, stand-ins printing it.
    fn new(rustc: Option<&str>) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("repo/src")).unwrap();
        std::fs::create_dir_all(d.join("repo/target/release")).unwrap();
        std::fs::create_dir_all(d.join("bin")).unwrap();
        std::fs::create_dir_all(d.join("home")).unwrap();
        std::fs::write(d.join("repo/src/lib.rs"), "// x\n").unwrap();
        std::fs::write(d.join("repo/Cargo.toml"), "[package]\n").unwrap();
        if let Some(v) = rustc {
            let bin = d.join("repo/target/release/vipwarden");
            script(
                &d.join("bin/cargo"),
                &format!(
                    "echo \"$*\" >> {}\nprintf '#!/bin/sh\\n' > {}\nchmod +x {}\n",
                    d.join("cargo.log").display(),
                    bin.display(),
                    bin.display()
                ),
            );
            script(
                &d.join("bin/rustc"),
                &format!("echo 'rustc {v} (stand-in)'\n"),
            );
        }
        Scratch { dir }
    }

    fn path(&self, p: &str) -> std::path::PathBuf {
        self.dir.path().join(p)
    }

    /// Runs `vw_vipwarden_bin`: (exit code, stdout, stderr).
    fn run(&self) -> (i32, String, String) {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {LIB}; VW_REPO_ROOT={}; vw_vipwarden_bin",
                self.path("repo").display()
            ))
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.path("bin").display()),
            )
            .env("HOME", self.path("home"))
            .env_remove("VIPWARDEN_BIN")
            .env_remove("SUDO_USER")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn builds(&self) -> usize {
        std::fs::read_to_string(self.path("cargo.log"))
            .map(|l| l.lines().count())
            .unwrap_or(0)
    }
}

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn builds_when_missing_reuses_when_fresh_rebuilds_when_stale() {
    let s = Scratch::new(Some("1.89.0"));
    let (code, out, err) = s.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.builds(), 1, "{err}");
    assert!(
        out.trim().ends_with("repo/target/release/vipwarden"),
        "{out}"
    );
    let log = std::fs::read_to_string(s.path("cargo.log")).unwrap();
    assert!(log.contains("build --release --locked"), "{log}");

    // Fresh: the binary is newer than every source.
    let (code, _, err) = s.run();
    assert_eq!((code, s.builds()), (0, 1), "{err}");

    // A pull brings a newer source file: the next demo rebuilds and says why.
    let bin = s.path("repo/target/release/vipwarden");
    set_mtime(&bin, SystemTime::now() - Duration::from_secs(3600));
    let (code, _, err) = s.run();
    assert_eq!((code, s.builds()), (0, 2), "{err}");
    assert!(err.contains("src/lib.rs is newer than"), "{err}");
}

#[test]
fn no_toolchain_names_rustup_and_the_readme() {
    let s = Scratch::new(None);
    let (code, out, err) = s.run();
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("needs rustc >= 1.89"), "{err}");
    assert!(
        err.contains("rustup") && err.contains("The Rust toolchain"),
        "{err}"
    );
}

/// Debian 13's packaged rustc (1.85.1+dfsg1-1+deb13u1) meets the crate's rust-version but not
/// its locked dependencies (uuid 1.29.3 needs 1.89): refused before the build, not inside it.
#[test]
fn debian_13s_rustc_is_refused_too() {
    let s = Scratch::new(Some("1.85.1"));
    let (code, _, err) = s.run();
    assert_ne!(code, 0);
    assert_eq!(s.builds(), 0);
    assert!(err.contains("rustc 1.85.1 is too old"), "{err}");
    assert!(err.contains("needs rustc >= 1.89"), "{err}");
}

#[test]
fn debian_12s_rustc_is_refused_with_what_to_do() {
    let s = Scratch::new(Some("1.63.0"));
    let (code, _, err) = s.run();
    assert_ne!(code, 0);
    assert_eq!(s.builds(), 0);
    assert!(err.contains("rustc 1.63.0 is too old"), "{err}");
    assert!(err.contains("rustup"), "{err}");
}

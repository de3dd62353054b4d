//! Stamps `vipwarden --version` with the git commit and the build date. Outside a git checkout
//! (a source tarball) the commit is "unknown"; SOURCE_DATE_EPOCH fixes the date for
//! reproducible builds (Debian sets it).

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The crate's calendar arithmetic (a leaf module that imports nothing), compiled in here too.
#[allow(dead_code)]
#[path = "src/civil_time.rs"]
mod civil_time;

/// Unix seconds -> YYYY-MM-DD (UTC).
fn date(secs: i64) -> String {
    let (year, month, day) = civil_time::civil_from_days(secs.div_euclid(86400));
    format!("{year:04}-{month:02}-{day:02}")
}

/// The functions a running daemon executes (link/text-order.txt, written by
/// testbed/gen-text-order.sh), placed together at the start of .text: the kernel maps text in
/// 64 KB windows around each touched page, so the resident text follows how widely the executed
/// code is spread. Release builds only, and only with a linker that takes lld's
/// `--symbol-ordering-file` (rust-lld, rustc's default on x86_64 Linux since 1.90, does; GNU ld,
/// used elsewhere, does not, and the build keeps the default layout): the layout changes where
/// code sits, never what it does.
fn order_text() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let order = manifest.join("link/text-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    if std::env::var("PROFILE").as_deref() != Ok("release") || !order.is_file() {
        return;
    }
    let args = [
        format!("-Wl,--symbol-ordering-file={}", order.display()),
        "-Wl,--no-warn-symbol-ordering".to_string(),
    ];
    if linker_takes(&args) {
        for arg in &args {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}

/// Whether linking an empty program with `args`, the way cargo links ours (same rustc, target,
/// flags and linker), succeeds.
fn linker_takes(args: &[String]) -> bool {
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let src = out_dir.join("link_probe.rs");
    if std::fs::write(&src, "fn main() {}\n").is_err() {
        return false;
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.arg(&src).arg("-o").arg(out_dir.join("link_probe"));
    if let Ok(target) = std::env::var("TARGET") {
        cmd.args(["--target", &target]);
    }
    if let Some(linker) = std::env::var_os("RUSTC_LINKER") {
        let mut arg = std::ffi::OsString::from("linker=");
        arg.push(linker);
        cmd.arg("-C").arg(arg);
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    cmd.args(flags.split('\x1f').filter(|f| !f.is_empty()));
    for arg in args {
        cmd.arg("-C").arg(format!("link-arg={arg}"));
    }
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}

fn main() {
    order_text();
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some();
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    let suffix = if dirty && commit != "unknown" {
        "-dirty"
    } else {
        ""
    };
    println!("cargo:rustc-env=VIPWARDEN_GIT_COMMIT={commit}{suffix}");
    println!("cargo:rustc-env=VIPWARDEN_BUILD_DATE={}", date(secs));
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
    // A new commit (HEAD or the branch it points to) re-stamps; other edits reuse the stamp.
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(r) = git(&["rev-parse", "--git-path", &branch]) {
            println!("cargo:rerun-if-changed={r}");
        }
    }
}

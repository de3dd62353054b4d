//! Stamps `vipwarden --version` with the git commit and the build date. Outside a git checkout
//! (a source tarball) the commit is "unknown"; SOURCE_DATE_EPOCH fixes the date for
//! reproducible builds (Debian sets it).

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

fn main() {
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

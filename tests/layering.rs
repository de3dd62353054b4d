//! The decision core holds itself to its rule: `route`, `engine` and `fleet` import nothing of the
//! crate but each other, no tokio, no I/O, no wall clock (time is injected). A change that breaks
//! the rule fails here, naming the file and line.

use std::fs;
use std::path::Path;

const CORE: &[&str] = &["src/route.rs", "src/risefall.rs", "src/engine", "src/fleet"];
const CORE_MODULES: &[&str] = &["route", "risefall", "engine", "fleet"];
/// Text that must not appear in the core's non-test code, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("tokio", "no async runtime in the core"),
    ("std::fs", "no file I/O in the core"),
    ("std::net::Tcp", "no sockets in the core"),
    ("std::net::Udp", "no sockets in the core"),
    ("std::process", "no processes in the core"),
    ("std::thread", "no threads in the core"),
    ("SystemTime", "no wall clock: the core's time is injected"),
    (
        "Instant::now",
        "no clock reads: the core's time is injected",
    ),
    ("unsafe", "no unsafe code in the core"),
];

mod source_files;
use source_files::rust_files;

/// The file's lines that are not test code: `*tests.rs` files are skipped whole, and an inline
/// `#[cfg(test)]` module ends the file's production part (the layout puts tests last).
fn production_lines(path: &Path) -> Vec<(usize, String)> {
    let name = path.file_name().unwrap().to_string_lossy();
    if name.ends_with("tests.rs") {
        return Vec::new();
    }
    let text = fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let t = line.trim();
        if t == "#[cfg(test)]" {
            // A `#[cfg(test)] mod x;` line declares a test file (skipped by name); a
            // `#[cfg(test)] mod x {` block is the rest of the file.
            if let Some((_, next)) = lines.peek() {
                if next.trim_start().starts_with("mod ") && next.trim_end().ends_with('{') {
                    break;
                }
            }
            continue;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push((i + 1, line.to_string()));
    }
    out
}

/// What breaks the rule on these lines, with file:line.
fn problems_in(rel: &str, lines: &[(usize, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (n, line) in lines {
        let mut rest = line.as_str();
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let module: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !CORE_MODULES.contains(&module.as_str()) {
                problems.push(format!(
                    "{rel}:{n}: imports crate::{module}, outside the core: {}",
                    line.trim()
                ));
            }
            rest = after;
        }
        for (bad, why) in FORBIDDEN {
            let word = line
                .match_indices(bad)
                .any(|(i, _)| !line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
            if word {
                problems.push(format!("{rel}:{n}: {why}: {}", line.trim()));
            }
        }
    }
    problems
}

#[test]
fn the_decision_core_imports_only_itself() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for p in CORE {
        rust_files(&root.join(p), &mut files);
    }
    assert!(
        files.len() > 10,
        "core files not found under {}",
        root.display()
    );
    let mut problems = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root).unwrap().display().to_string();
        problems.extend(problems_in(&rel, &production_lines(f)));
    }
    assert!(
        problems.is_empty(),
        "the decision core must import only itself:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_sees_a_violation() {
    // The rule above must be able to fail: a planted import is reported.
    let dir = std::env::temp_dir().join(format!("vw-layering-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let f = dir.join("planted.rs");
    fs::write(
        &f,
        "use crate::bgp::rib_in::PeerTable;\nfn x() { let _ = std::time::Instant::now(); }\n#[cfg(test)]\nmod tests {\n    use crate::daemon::X;\n}\n",
    )
    .unwrap();
    let lines = production_lines(&f);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let p = problems_in("planted.rs", &lines);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].starts_with("planted.rs:1: imports crate::bgp"),
        "{}",
        p[0]
    );
    assert!(p[1].starts_with("planted.rs:2: no clock reads"), "{}", p[1]);
}

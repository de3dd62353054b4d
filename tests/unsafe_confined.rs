//! `unsafe` code lives under `src/sys/` only, behind safe functions. The files outside it that
//! still hold some are listed here, exactly: a new one fails the test (move the code into
//! `src/sys/`), and a listed file that no longer needs it fails too (take it off the list), so
//! the list only shrinks.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// Files outside `src/sys/` whose `unsafe` code has not moved yet: none now; a file is listed
/// here only while its code is being moved.
const NOT_YET_MOVED: &[&str] = &[];

mod source_files;
use source_files::rust_files;

/// The line without its `//` comment and with string and char literal contents blanked, so
/// prose ("the file's mode is unsafe") never counts.
fn code_of(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_str = false;
                    out.push('"');
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push('"');
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}

/// Whether the code says `unsafe` as a keyword: a block, fn, impl, trait or extern block.
fn says_unsafe(code: &str) -> bool {
    let mut rest = code;
    while let Some(i) = rest.find("unsafe") {
        let before = rest[..i].chars().next_back();
        let after = rest[i + "unsafe".len()..].trim_start();
        let word_start = !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let keyword = after.is_empty()
            || ["{", "fn ", "impl", "trait ", "extern "]
                .iter()
                .any(|k| after.starts_with(k));
        if word_start && keyword {
            return true;
        }
        rest = &rest[i + "unsafe".len()..];
    }
    false
}

fn files_with_unsafe(root: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut out = BTreeSet::new();
    for f in files {
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel.starts_with("src/sys/") {
            continue;
        }
        let text = fs::read_to_string(&f).unwrap();
        if text.lines().any(|l| says_unsafe(&code_of(l))) {
            out.insert(rel);
        }
    }
    out
}

#[test]
fn unsafe_code_is_only_under_src_sys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = files_with_unsafe(root);
    let allowed: BTreeSet<String> = NOT_YET_MOVED.iter().map(|s| s.to_string()).collect();
    let new: Vec<_> = found.difference(&allowed).collect();
    let gone: Vec<_> = allowed.difference(&found).collect();
    assert!(
        new.is_empty(),
        "unsafe code outside src/sys/ in {new:?}: move it behind a safe function in src/sys/"
    );
    assert!(
        gone.is_empty(),
        "{gone:?} no longer hold unsafe code: take them off NOT_YET_MOVED"
    );
}

#[test]
fn the_detector_tells_code_from_prose() {
    assert!(says_unsafe(&code_of(
        "    let n = unsafe { libc::read(fd, p, n) };"
    )));
    assert!(says_unsafe(&code_of("unsafe fn f() {}")));
    assert!(says_unsafe(&code_of("unsafe impl Send for X {}")));
    assert!(says_unsafe(&code_of("    unsafe {")));
    assert!(!says_unsafe(&code_of(
        r#"    " (the file's mode or owner is unsafe, not because of who you are: {e})""#
    )));
    assert!(!says_unsafe(&code_of(
        "    // SAFETY: unsafe { is fine here }"
    )));
    assert!(!says_unsafe(&code_of(
        "/// The file's mode or owner is unsafe."
    )));
    assert!(!says_unsafe(&code_of("let not_unsafe_fn = 1;")));
    assert!(!says_unsafe(&code_of(r#"let s = "unsafe { x }";"#)));
}

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::*;

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "vipwarden-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn opts(start_at_end: bool) -> FollowOptions {
    FollowOptions {
        start_at_end,
        vanish_grace: Duration::ZERO,
        ..FollowOptions::default()
    }
}

fn poll_lines(f: &mut LogFollower) -> Vec<String> {
    let mut out = Vec::new();
    f.poll(&mut |l: &[u8]| out.push(String::from_utf8_lossy(l).into_owned()));
    out
}

#[test]
fn live_mode_starts_at_end_and_holds_partial_lines() {
    let dir = TempDir::new("end");
    let p = dir.join("access.log");
    append(&p, "old 1\nold 2\n");
    let mut f = LogFollower::new(&p, opts(true));
    assert!(poll_lines(&mut f).is_empty());
    assert_eq!(f.missing(), None);
    append(&p, "new 1\nnew");
    assert_eq!(poll_lines(&mut f), ["new 1"]);
    append(&p, " 2 is");
    assert!(poll_lines(&mut f).is_empty());
    append(&p, " done\r\n");
    assert_eq!(poll_lines(&mut f), ["new 2 is done"]);
    assert_eq!(f.counters().lines, 2);

    let mut whole = LogFollower::new(&p, opts(false));
    assert_eq!(poll_lines(&mut whole).len(), 4);
}

#[test]
fn live_mode_starting_mid_line_skips_that_line_silently() {
    let dir = TempDir::new("midline");
    let p = dir.join("access.log");
    append(&p, "old\nhalf writt");
    let mut f = LogFollower::new(&p, opts(true));
    assert!(poll_lines(&mut f).is_empty());
    append(&p, "en line\nnext\n");
    assert_eq!(poll_lines(&mut f), ["next"]);
    assert_eq!(f.take_discarded(), 0);
}

#[test]
fn copytruncate_restarts_at_zero() {
    let dir = TempDir::new("trunc");
    let p = dir.join("access.log");
    append(&p, "a fairly long first line\nsecond line\n");
    let mut f = LogFollower::new(&p, opts(false));
    assert_eq!(poll_lines(&mut f).len(), 2);
    // copytruncate: the file is cut to 0 and the writer carries on (O_APPEND) at the start.
    OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&p, "after 1\nafter 2\n");
    assert_eq!(poll_lines(&mut f), ["after 1", "after 2"]);
    assert_eq!(f.counters().truncations, 1);
    append(&p, "after 3\n");
    assert_eq!(poll_lines(&mut f), ["after 3"]);
}

#[test]
fn missing_file_is_reported_and_retried() {
    let dir = TempDir::new("missing");
    let p = dir.join("access.log");
    let mut f = LogFollower::new(&p, opts(true));
    assert!(poll_lines(&mut f).is_empty());
    assert!(
        f.missing().unwrap().contains("No such file"),
        "{:?}",
        f.missing()
    );
    // Created after we started: every line in it is new, even in live mode.
    append(&p, "first\n");
    assert_eq!(poll_lines(&mut f), ["first"]);
    assert_eq!(f.missing(), None);
    fs::remove_file(&p).unwrap();
    assert!(poll_lines(&mut f).is_empty());
    assert!(f.missing().is_some());
    append(&p, "back\n");
    assert_eq!(poll_lines(&mut f), ["back"]);
    assert_eq!(f.missing(), None);
}

#[test]
fn unreadable_path_is_reported_and_retried() {
    // Root reads through permission bits, so make the path unreadable as a file: a directory
    // opens but fails to read (EISDIR).
    let dir = TempDir::new("unreadable");
    let p = dir.join("access.log");
    fs::create_dir(&p).unwrap();
    let mut f = LogFollower::new(&p, opts(true));
    for _ in 0..3 {
        assert!(poll_lines(&mut f).is_empty());
        assert!(
            f.missing().is_some_and(|m| m.contains("read")),
            "{:?}",
            f.missing()
        );
    }
    fs::remove_dir(&p).unwrap();
    append(&p, "readable\n");
    assert_eq!(poll_lines(&mut f), ["readable"]);
    assert_eq!(f.missing(), None);
}

#[test]
fn path_vanishing_keeps_old_descriptor_within_grace() {
    let dir = TempDir::new("grace");
    let p = dir.join("access.log");
    append(&p, "");
    let mut f = LogFollower::new(
        &p,
        FollowOptions {
            vanish_grace: Duration::from_secs(3600),
            ..opts(true)
        },
    );
    assert!(poll_lines(&mut f).is_empty());
    // nginx between `mv` and USR1: the path is gone but the old file still gets lines.
    fs::rename(&p, dir.join("access.log.1")).unwrap();
    append(&dir.join("access.log.1"), "late line\n");
    assert_eq!(poll_lines(&mut f), ["late line"]);
    assert_eq!(f.missing(), None);
    append(&p, "new file\n");
    assert_eq!(poll_lines(&mut f), ["new file"]);
    assert_eq!(f.counters().rotations, 1);
}

#[test]
fn overlong_lines_are_discarded() {
    let dir = TempDir::new("long");
    let p = dir.join("access.log");
    let mut f = LogFollower::new(
        &p,
        FollowOptions {
            max_line: 100,
            read_chunk: 4096,
            ..opts(false)
        },
    );
    append(&p, &format!("short\n{}\nshort again\n", "x".repeat(10_000)));
    assert_eq!(poll_lines(&mut f), ["short", "short again"]);
    assert_eq!(f.take_discarded(), 1);
}

#[test]
fn byte_budget_splits_large_backlogs() {
    let dir = TempDir::new("budget");
    let p = dir.join("access.log");
    append(&p, &"0123456789abcdef\n".repeat(10_000)); // 170 kB
    let mut f = LogFollower::new(
        &p,
        FollowOptions {
            read_chunk: 4096,
            max_bytes_per_poll: 50_000,
            ..opts(false)
        },
    );
    let mut total = 0;
    let mut polls = 0;
    loop {
        let mut n = 0;
        let r = f.poll(&mut |_: &[u8]| n += 1);
        total += n;
        polls += 1;
        if !r.more_pending {
            break;
        }
    }
    assert_eq!(total, 10_000);
    assert!(polls >= 4, "{polls}");
}

/// A writer appends numbered lines without pause (some written in two pieces) and rotates by
/// rename every 3000 lines; the follower polls concurrently. Every line must arrive exactly once
/// and in order. Repeated to shake out races.
#[test]
fn rename_rotation_under_continuous_writing_loses_nothing() {
    const LINES: u64 = 30_000;
    const ROTATE_EVERY: u64 = 3_000;
    for round in 0..5 {
        let dir = TempDir::new("rotate");
        let p = dir.join("access.log");
        append(&p, "");
        // Default grace: the path is briefly absent between rename and create.
        let mut f = LogFollower::new(&p, FollowOptions::default());
        assert!(poll_lines(&mut f).is_empty());
        let wp = p.clone();
        let rotated = dir.join("access.log.1");
        let writer = std::thread::spawn(move || {
            let open = || {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&wp)
                    .unwrap()
            };
            let mut out = open();
            for i in 0..LINES {
                if i > 0 && i % ROTATE_EVERY == 0 {
                    fs::rename(&wp, &rotated).unwrap();
                    out.write_all(b"written after rename\n").unwrap();
                    out = open();
                    // Keep writing to the new file, then give the follower a chance to see the
                    // rotation before the next one replaces access.log.1 (tail -F has the same
                    // limit: a file rotated twice between two polls is not seen).
                    for j in 0..200 {
                        out.write_all(format!("seq {}\n", i + j).as_bytes())
                            .unwrap();
                    }
                    std::thread::sleep(Duration::from_millis(40));
                }
                if i % ROTATE_EVERY < 200 && i >= ROTATE_EVERY {
                    continue;
                }
                let line = format!("seq {i}\n");
                if i % 7 == 0 {
                    let (a, b) = line.split_at(3);
                    out.write_all(a.as_bytes()).unwrap();
                    out.write_all(b.as_bytes()).unwrap();
                } else {
                    out.write_all(line.as_bytes()).unwrap();
                }
            }
        });
        let mut seen: Vec<u64> = Vec::with_capacity(LINES as usize);
        let mut extra = 0u64;
        let deadline = Instant::now() + Duration::from_secs(20);
        while (seen.len() as u64) < LINES && Instant::now() < deadline {
            f.poll(&mut |l: &[u8]| match std::str::from_utf8(l)
                .ok()
                .and_then(|s| s.strip_prefix("seq "))
                .and_then(|n| n.parse().ok())
            {
                Some(n) => seen.push(n),
                None => extra += 1,
            });
            std::thread::sleep(Duration::from_millis(2));
        }
        writer.join().unwrap();
        poll_lines(&mut f);
        let expected: Vec<u64> = (0..LINES).collect();
        assert_eq!(seen.len(), expected.len(), "round {round}: count");
        assert!(
            seen == expected,
            "round {round}: lines lost, duplicated or reordered"
        );
        assert_eq!(
            extra,
            LINES / ROTATE_EVERY - 1,
            "round {round}: post-rename lines"
        );
        assert_eq!(f.counters().rotations, LINES / ROTATE_EVERY - 1);
        assert_eq!(f.take_discarded(), 0);
    }
}

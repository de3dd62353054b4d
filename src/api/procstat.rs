//! The daemon process's own figures for `/metrics` (RSS, CPU, open fds), read from `/proc/self`.
//! Blocking file reads: callers run [`read`] off the async runtime (spawn_blocking).

use crate::sys::process as sys;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

/// Reads this process's figures; None where `/proc` is not there or not as expected.
pub fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_btime(&s));
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let ticks = sys::clock_ticks_per_second().max(1) as f64;
    let page = sys::page_size().max(1) as u64;
    let mut st = parse_stat(&stat, ticks, page, boot)?;
    st.open_fds = open_fds;
    st.max_fds = sys::max_open_files();
    Some(st)
}

/// `btime` (boot time, Unix seconds) from `/proc/stat`.
fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// `/proc/self/stat`: the command name (field 2) may hold spaces and parentheses, so fields are
/// counted after its last `)`. Fields (1-based, proc(5)): 14 utime, 15 stime, 22 starttime,
/// 23 vsize, 24 rss (pages).
fn parse_stat(text: &str, ticks: f64, page: u64, boot: Option<u64>) -> Option<ProcessStats> {
    let rest = &text[text.rfind(')')? + 1..];
    // rest starts at field 3.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { f.get(n - 3)?.parse().ok() };
    let utime = field(14)?;
    let stime = field(15)?;
    let start_ticks = field(22)?;
    Some(ProcessStats {
        cpu_seconds: (utime + stime) as f64 / ticks,
        resident_bytes: field(24)?.saturating_mul(page),
        virtual_bytes: field(23)?,
        open_fds: 0,
        max_fds: None,
        start_time_seconds: boot.map(|b| b as f64 + start_ticks as f64 / ticks),
    })
}

/// For tests: whether this machine has the `/proc` the reader needs.
#[cfg(test)]
fn available() -> bool {
    std::path::Path::new("/proc/self/stat").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_tricky_command_name() {
        // comm "(a) b)" contains both a space and a parenthesis.
        let line = "4242 ((a) b)) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 3 0 \
                    12345 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        let st = parse_stat(line, 100.0, 4096, Some(1_700_000_000)).unwrap();
        assert_eq!(st.cpu_seconds, 2.0);
        assert_eq!(st.resident_bytes, 2560 * 4096);
        assert_eq!(st.virtual_bytes, 104_857_600);
        assert_eq!(st.start_time_seconds, Some(1_700_000_123.45));
        assert!(parse_stat("garbage", 100.0, 4096, None).is_none());
        assert!(parse_stat("1 (x) S 1 2", 100.0, 4096, None).is_none());
        assert_eq!(
            parse_btime("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn this_process_reads() {
        if !available() {
            eprintln!("SKIP: no /proc here");
            return;
        }
        let st = read().expect("own /proc/self");
        assert!(st.resident_bytes > 1024 * 1024, "{st:?}");
        assert!(st.open_fds >= 3, "{st:?}");
        assert!(st.start_time_seconds.unwrap() > 1.6e9, "{st:?}");
    }
}

//! Offline replay of a recorded access log: the same parser and window as live mode, but "now" is
//! the timestamp in each line, and the window is evaluated at every tick of log time. This is also
//! the ingest path the benchmark measures: big reads, lines split in place, no allocation per line.

use std::io::{self, BufRead};
use std::time::Duration;

use super::lines::{LineAssembler, DEFAULT_MAX_LINE};
use super::logformat::LogFormat;
use super::window::{StatusSet, WindowSnapshot, WindowStats};

#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub window: Duration,
    pub errors: StatusSet,
    /// Evaluation period in log time.
    pub tick: Duration,
    pub max_line: usize,
}

impl ReplayOptions {
    pub fn new(window: Duration, errors: StatusSet) -> Self {
        Self {
            window,
            errors,
            tick: Duration::from_secs(1),
            max_line: DEFAULT_MAX_LINE,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplaySummary {
    pub lines: u64,
    pub records: u64,
    /// Records whose status is in `ReplayOptions::errors`, over the whole input.
    pub errors: u64,
    /// Unparseable, over-long, or without a timestamp (replay needs one).
    pub malformed: u64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub ticks: u64,
    /// Records older than the window when they were read (far out of order), not counted.
    pub late: u64,
    /// The window at the last line's time.
    pub last: Option<WindowSnapshot>,
    /// Records that carried a latency (a latency condition needs some).
    pub with_latency: u64,
    /// The first line that did not parse (at most 200 bytes), to show what went wrong.
    pub first_malformed: Option<String>,
}

/// Replays `reader` and calls `on_tick(tick_ms, &snapshot)` at each multiple of `opts.tick` in log
/// time, once all lines before that instant are recorded (assuming roughly ordered lines).
pub fn replay<R, F>(
    mut reader: R,
    format: &LogFormat,
    opts: &ReplayOptions,
    mut on_tick: F,
) -> io::Result<ReplaySummary>
where
    R: BufRead,
    F: FnMut(i64, &WindowSnapshot),
{
    let mut st = Replayer {
        format,
        errors: &opts.errors,
        stats: WindowStats::new(opts.window, opts.errors.clone()),
        tick_ms: i64::try_from(opts.tick.as_millis())
            .unwrap_or(i64::MAX)
            .max(1),
        window_ms: i64::try_from(opts.window.as_millis()).unwrap_or(i64::MAX / 4),
        next_tick: None,
        sum: ReplaySummary::default(),
    };
    let mut asm = LineAssembler::new(opts.max_line);
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) => break,
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let n = chunk.len();
        asm.feed(chunk, &mut |line| st.line(line, &mut on_tick));
        reader.consume(n);
    }
    asm.finish(&mut |line| st.line(line, &mut on_tick));
    let discarded = asm.take_discarded();
    st.sum.malformed += discarded;
    if let Some(t) = st.sum.last_ms {
        st.stats.record_malformed_n(discarded, t);
        st.sum.last = Some(st.stats.snapshot(t));
    }
    st.sum.late = st.stats.late();
    Ok(st.sum)
}

struct Replayer<'a> {
    format: &'a LogFormat,
    errors: &'a StatusSet,
    stats: WindowStats,
    tick_ms: i64,
    window_ms: i64,
    next_tick: Option<i64>,
    sum: ReplaySummary,
}

impl Replayer<'_> {
    #[inline]
    fn line<F: FnMut(i64, &WindowSnapshot)>(&mut self, line: &[u8], on_tick: &mut F) {
        self.sum.lines += 1;
        let rec = match self.format.parse(line) {
            Ok(r) if r.time_ms.is_some() => r,
            _ => {
                self.sum.malformed += 1;
                if self.sum.first_malformed.is_none() {
                    self.sum.first_malformed = Some(super::logcheck::sample(line));
                }
                // Before the first timestamp there is no "now" to file it under.
                if let Some(t) = self.sum.last_ms {
                    self.stats.record_malformed(t);
                }
                return;
            }
        };
        let t = rec.time_ms.unwrap_or_default();
        self.advance_ticks(t, on_tick);
        self.stats.record(&rec, t);
        self.sum.records += 1;
        self.sum.with_latency += u64::from(rec.latency_us.is_some());
        self.sum.errors += u64::from(self.errors.contains(rec.status));
        self.sum.first_ms.get_or_insert(t);
        self.sum.last_ms = Some(t);
    }

    /// Emits every tick up to `t`. A gap longer than the window emits only the ticks in which
    /// old data drains away, then jumps, so a bogus far-future timestamp cannot loop for ages.
    fn advance_ticks<F: FnMut(i64, &WindowSnapshot)>(&mut self, t: i64, on_tick: &mut F) {
        let align = |x: i64| x.div_euclid(self.tick_ms).saturating_mul(self.tick_ms);
        let next = match self.next_tick {
            None => align(t).saturating_add(self.tick_ms),
            // Far backwards: the window restarts (see WindowStats), and so do ticks.
            Some(n) if n.saturating_sub(t) > 2 * self.window_ms + self.tick_ms => {
                align(t).saturating_add(self.tick_ms)
            }
            Some(n) => n,
        };
        let mut next = next;
        let drain_until = next.saturating_add(self.window_ms.saturating_add(self.tick_ms));
        while next <= t {
            if next > drain_until {
                next = align(t);
            }
            let snap = self.stats.snapshot(next);
            on_tick(next, &snap);
            self.sum.ticks += 1;
            next = next.saturating_add(self.tick_ms);
        }
        self.next_tick = Some(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::logformat::LogFormat;

    fn nginx_line(t_s: u32, status: u16, latency_ms: u32) -> String {
        // 22/Nov/2026:13:45:00 + t_s seconds, t_s < 60.
        format!(
            "10.0.0.1 - - [22/Nov/2026:13:45:{t_s:02} +0000] \"GET / HTTP/1.1\" {status} 5 \"-\" \"ua\" 0.{latency_ms:03}\n"
        )
    }

    const T0: i64 = 1_795_355_100_000; // 13:45:00Z

    #[test]
    fn ticks_follow_log_time_and_window_slides() {
        let mut log = String::new();
        for s in 0..20 {
            let status = if s >= 10 { 503 } else { 200 };
            for _ in 0..10 {
                log.push_str(&nginx_line(s, status, 5));
            }
        }
        log.push_str("garbage line\n");
        log.push_str(&nginx_line(20, 200, 5));
        let opts = ReplayOptions::new(Duration::from_secs(10), StatusSet::default());
        let mut ticks = Vec::new();
        let sum = replay(log.as_bytes(), &LogFormat::Nginx, &opts, |t, s| {
            ticks.push((t, s.requests, s.errors))
        })
        .unwrap();
        assert_eq!(sum.lines, 202);
        assert_eq!(sum.records, 201);
        assert_eq!(sum.errors, 100);
        assert_eq!(sum.malformed, 1);
        assert_eq!((sum.first_ms, sum.last_ms), (Some(T0), Some(T0 + 20_000)));
        // One tick per second of log time, from 13:45:01 to 13:45:20.
        assert_eq!(ticks.len(), 20);
        assert_eq!(ticks[0], (T0 + 1000, 10, 0));
        assert_eq!(ticks[19].0, T0 + 20_000);
        // At 13:45:20 the 10 s window (12 slots of 834 ms) holds only the 5xx seconds.
        let (_, req, err) = ticks[19];
        assert_eq!(req, err);
        assert!(req >= 90, "{req}");
        let last = sum.last.unwrap();
        assert_eq!(last.malformed, 1);
        assert_eq!(last.latency_p99_us.map(|v| v / 1000), Some(5));
    }

    #[test]
    fn lines_without_time_and_huge_gaps() {
        let json = LogFormat::Json(crate::signals::logformat::JsonFields {
            status_field: "s".into(),
            latency_field: "l".into(),
            latency_unit: crate::signals::logformat::LatencyUnit::Millis,
            time_field: Some("t".into()),
        });
        let log = "{\"s\":200,\"l\":1}\n\
                   {\"s\":200,\"l\":1,\"t\":1000}\n\
                   {\"s\":500,\"l\":1,\"t\":99999999999}\n\
                   {\"s\":200,\"l\":1,\"t\":1001}";
        let opts = ReplayOptions::new(Duration::from_secs(30), StatusSet::default());
        let mut n = 0;
        let sum = replay(log.as_bytes(), &json, &opts, |_, _| n += 1).unwrap();
        assert_eq!((sum.lines, sum.records, sum.malformed), (4, 3, 1));
        // A ~3000-year jump: bounded ticks, not one per second.
        assert!(n <= 40, "{n}");
        // Back by three millennia: the window restarted at 1001 s.
        assert_eq!(sum.last.as_ref().unwrap().requests, 1);
    }
}

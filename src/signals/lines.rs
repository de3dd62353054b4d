//! Splits a byte stream arriving in arbitrary chunks into lines, holding a partial line until its
//! newline arrives. Memory is bounded by `max_line`: a longer line is counted and skipped up to the
//! next newline instead of growing a buffer without limit. Shared by the live follower and replay.

use memchr::memchr;

/// Default cap on one access-log line.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

#[derive(Debug)]
pub struct LineAssembler {
    partial: Vec<u8>,
    max_line: usize,
    /// Inside an over-long line: drop bytes until the next newline.
    skipping: bool,
    /// Lines dropped (over-long, or cut off by rotation/truncation) not yet taken by the caller.
    discarded: u64,
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl LineAssembler {
    pub fn new(max_line: usize) -> Self {
        Self {
            partial: Vec::new(),
            max_line: max_line.max(1),
            skipping: false,
            discarded: 0,
        }
    }

    /// Feeds the next bytes of the stream; calls `emit` for each complete line (without its
    /// `\n` / `\r\n`). Lines wholly inside `chunk` are emitted in place, without copying.
    pub fn feed<F: FnMut(&[u8])>(&mut self, mut chunk: &[u8], emit: &mut F) {
        while !chunk.is_empty() {
            let Some(nl) = memchr(b'\n', chunk) else {
                if self.skipping {
                    // Still inside an over-long line.
                } else if self.partial.len() + chunk.len() > self.max_line {
                    self.discarded += 1;
                    self.skipping = true;
                    self.partial.clear();
                } else {
                    self.partial.extend_from_slice(chunk);
                }
                return;
            };
            let line = &chunk[..nl];
            chunk = &chunk[nl + 1..];
            if self.skipping {
                self.skipping = false;
            } else if !self.partial.is_empty() {
                if self.partial.len() + line.len() > self.max_line {
                    self.discarded += 1;
                } else {
                    self.partial.extend_from_slice(line);
                    emit(strip_cr(&self.partial));
                }
                self.partial.clear();
            } else if line.len() > self.max_line {
                self.discarded += 1;
            } else {
                emit(strip_cr(line));
            }
        }
    }

    /// End of a finished stream (replay): a last line without newline is still a line.
    pub fn finish<F: FnMut(&[u8])>(&mut self, emit: &mut F) {
        if !self.partial.is_empty() {
            emit(strip_cr(&self.partial));
        }
        self.partial.clear();
        self.skipping = false;
    }

    /// The stream was cut (rotation, truncation): a held partial line will never be completed.
    pub fn discard_partial(&mut self) {
        if !self.partial.is_empty() || self.skipping {
            self.discarded += 1;
        }
        self.partial.clear();
        self.skipping = false;
    }

    /// Starting in the middle of a line (live mode at the end of a file being written): drop the
    /// rest of that line silently; it is not malformed, we only saw its tail.
    pub fn skip_to_newline(&mut self) {
        self.partial.clear();
        self.skipping = true;
    }

    /// Lines dropped since the last call, for the caller's malformed count.
    pub fn take_discarded(&mut self) -> u64 {
        std::mem::take(&mut self.discarded)
    }

    /// Bytes held for an incomplete line.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(asm: &mut LineAssembler, chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        for c in chunks {
            asm.feed(c, &mut |l| {
                out.push(String::from_utf8_lossy(l).into_owned())
            });
        }
        out
    }

    #[test]
    fn pieces_are_held_until_newline() {
        let mut a = LineAssembler::new(100);
        let out = run(&mut a, &[b"ab", b"c\r\nde", b"f\n\ngh", b"i"]);
        assert_eq!(out, ["abc", "def", ""]);
        assert_eq!(a.pending(), 3);
        let mut tail = Vec::new();
        a.finish(&mut |l| tail.push(l.to_vec()));
        assert_eq!(tail, [b"ghi".to_vec()]);
        assert_eq!(a.take_discarded(), 0);
    }

    #[test]
    fn every_split_point_gives_the_same_lines() {
        let text = b"one\ntwo two\n\nthree\r\nfour\n";
        for cut in 0..=text.len() {
            let mut a = LineAssembler::new(100);
            let out = run(&mut a, &[&text[..cut], &text[cut..]]);
            assert_eq!(out, ["one", "two two", "", "three", "four"], "cut {cut}");
        }
    }

    #[test]
    fn overlong_lines_are_skipped_and_counted_with_bounded_memory() {
        let mut a = LineAssembler::new(8);
        // Over-long inside one chunk, and over-long built from many small pieces.
        let mut chunks: Vec<&[u8]> = vec![b"ok\n0123456789abc\nok2\n", b"0123"];
        chunks.extend(std::iter::repeat_n(&b"xxxxxxxxxx"[..], 1000));
        chunks.push(b"yy\nlast\n");
        let out = run(&mut a, &chunks);
        assert_eq!(out, ["ok", "ok2", "last"]);
        assert!(
            a.partial.capacity() <= 64,
            "partial grew to {}",
            a.partial.capacity()
        );
        assert_eq!(a.take_discarded(), 2);
        assert_eq!(a.take_discarded(), 0);
        // Exactly max_line is still accepted, across a split.
        assert_eq!(run(&mut a, &[b"1234", b"5678\n"]), ["12345678"]);
    }

    proptest::proptest! {
        /// Any text cut at any points yields exactly the lines `split` gives (lines fit the cap).
        #[test]
        fn chunking_never_changes_lines(
            text in "[a-c \n]{0,200}",
            cuts in proptest::collection::vec(0usize..200, 0..10),
        ) {
            let bytes = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for c in cuts.into_iter().chain([bytes.len()]) {
                chunks.push(&bytes[prev..c]);
                prev = c;
            }
            let mut a = LineAssembler::new(1000);
            let got = run(&mut a, &chunks);
            let mut want: Vec<String> = text.split('\n').map(str::to_owned).collect();
            want.pop(); // the text after the last newline is still pending
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn discard_partial_counts_cut_lines() {
        let mut a = LineAssembler::new(100);
        assert!(run(&mut a, &[b"half a li"]).is_empty());
        a.discard_partial();
        a.discard_partial();
        assert_eq!(a.take_discarded(), 1);
        assert_eq!(run(&mut a, &[b"ne\nnext\n"]), ["ne", "next"]);
    }
}

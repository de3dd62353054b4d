//! Config text into the parser check-config and SIGHUP use (src/config): YAML -> validated
//! `Config` or located errors, never a panic. The file name is only used in messages; the
//! validator itself only stats/opens files the text names (key files, CA bundles).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use vipwarden::config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.yaml");
    match config::parse(file, text) {
        // check-config prints the summary of a valid file.
        Ok(c) => {
            let _ = config::summary(&c);
            for w in &c.warnings {
                let _ = w.to_string();
            }
        }
        Err(e) => {
            assert!(!e.0.is_empty(), "an error with no problem in it");
            let _ = e.to_string();
        }
    }
});

//! How durations read in reasons and logs (the same spelling the config accepts).

use std::time::Duration;

/// "1m 30s".
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

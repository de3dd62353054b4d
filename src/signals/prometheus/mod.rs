//! A local proxy's own view of its traffic, scraped from its Prometheus endpoint (Envoy
//! `/stats/prometheus`, HAProxy's exporter): error ratios and latency quantiles over a window,
//! with no access log to parse.
//!
//! Values are named by the config (`values`); each is derived from selected series: a rate, a
//! ratio of rates (`requests` = the denominator's increase), a histogram quantile, or a gauge.

mod derive;
pub mod exposition;
mod scrape;
mod selector;

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use derive::{histogram_quantile, Derived, Deriver, NoSamples};
pub use scrape::{FetchError, Target, UrlError, MAX_BODY};
pub use selector::{Matcher, Selector};

use super::snapshot::{MissingLog, SourceSnapshot, Ticker};

#[derive(Clone, Debug, PartialEq)]
pub struct PrometheusConfig {
    /// `http://host:port/path`; plain HTTP only (the endpoint is local).
    pub url: String,
    pub interval: Duration,
    /// Per scrape: connect, request and whole body.
    pub timeout: Duration,
    pub window: Duration,
    /// (value name, how to derive it).
    pub values: Vec<(String, Derive)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Derive {
    /// Per-second rate of the summed counter over the window.
    Rate(Selector),
    /// Ratio of the two rates; `requests` = the denominator's increase.
    Ratio {
        numerator: Selector,
        denominator: Selector,
    },
    /// Quantile over the window from `<name>_bucket{le=...}`, interpolated like PromQL's
    /// `histogram_quantile` on the buckets' increase.
    Quantile { histogram: Selector, q: f64 },
    /// Current value, summed over matching series.
    Gauge(Selector),
}

/// A `prometheus` signal whose settings cannot work.
#[derive(Debug)]
pub enum InvalidConfig {
    Url(UrlError),
    Quantile { name: String, q: f64 },
}

impl std::fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidConfig::Url(e) => e.fmt(f),
            InvalidConfig::Quantile { name, q } => {
                write!(f, "value {name}: quantile {q} is not within [0, 1]")
            }
        }
    }
}

impl std::error::Error for InvalidConfig {}

impl PrometheusConfig {
    /// Checks what the YAML mapping cannot: the URL and quantiles. `spawn` reports the same
    /// problems as `missing` instead of failing.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        Target::parse(&self.url).map_err(InvalidConfig::Url)?;
        for (name, d) in &self.values {
            if let Derive::Quantile { q, .. } = d {
                if !(0.0..=1.0).contains(q) {
                    return Err(InvalidConfig::Quantile {
                        name: name.clone(),
                        q: *q,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Turns a scrape outcome into the published snapshot. On failure the values are dropped
/// (stale numbers must not keep a route up or down) and `updated` stays at the last success.
fn publish(
    result: Result<Derived, String>,
    now: Instant,
    last_ok: &mut Option<Instant>,
) -> SourceSnapshot {
    match result {
        Ok(d) => {
            *last_ok = Some(now);
            SourceSnapshot {
                values: d.values,
                requests: d.requests,
                missing: None,
                updated: Some(now),
            }
        }
        Err(why) => SourceSnapshot {
            missing: Some(why),
            updated: *last_ok,
            ..SourceSnapshot::default()
        },
    }
}

pub fn spawn(
    cfg: PrometheusConfig,
    tx: watch::Sender<SourceSnapshot>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The snapshot's `missing` is text: the reasons are rendered once here.
        let target = Target::parse(&cfg.url).map_err(|e| e.to_string());
        let mut deriver = Deriver::new(cfg.window, &cfg.values);
        let mut ticker = Ticker::new(cfg.interval, stop);
        let mut log = MissingLog::default();
        let mut last_ok = None;
        // Logged once per change, not per scrape.
        let mut told_unmatched: Vec<String> = Vec::new();
        let mut told_malformed = false;
        while ticker.tick().await {
            let body = match &target {
                Ok(t) => match ticker.run(t.fetch(cfg.timeout)).await {
                    Some(b) => b.map_err(|e| e.to_string()),
                    None => return,
                },
                Err(e) => Err(e.clone()),
            };
            let now = Instant::now();
            let result = body.and_then(|b| {
                let text = std::str::from_utf8(&b).map_err(|_| "body is not UTF-8".to_owned())?;
                deriver.ingest(now, text).map_err(|e| e.to_string())
            });
            if let Ok(d) = &result {
                if d.unmatched != told_unmatched {
                    if !d.unmatched.is_empty() {
                        tracing::info!(url = %cfg.url, selectors = ?d.unmatched, "selectors match no series (read as 0 for counters)");
                    }
                    told_unmatched.clone_from(&d.unmatched);
                }
                if d.stats.malformed > 0 && !told_malformed {
                    tracing::warn!(url = %cfg.url, lines = d.stats.malformed, "skipping malformed exposition lines");
                    told_malformed = true;
                }
            }
            let snap = publish(result, now, &mut last_ok);
            log.note("prometheus", snap.missing.as_deref());
            tx.send_replace(snap);
        }
    })
}

#[cfg(test)]
mod tests;

//! The control plane over HTTP: JSON status/events, drain/undrain (bearer token), Prometheus
//! metrics, and the CLI client that reads them back.
//!
//! Daemon side: [`supervise`] (token, listener, and their reload on SIGHUP), or [`serve`] for a
//! fixed token.
//! CLI side: [`client`] functions return the text to print.

mod admission;
mod auth;
mod auth_log;
pub mod client;
mod live;
mod metrics;
mod procstat;
mod render;
mod routes;
mod server;
mod tls;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use auth::{is_loopback, load_token, load_token_for_client, TokenError, TokenErrorKind};
pub use client::ApiTarget;
pub use live::supervise;
pub use metrics::{
    negotiate as negotiate_metrics_format, render as render_metrics, to_text_004,
    Format as MetricsFormat,
};
pub use server::{serve, ApiServer};
pub use tls::{check as check_tls, TlsError};

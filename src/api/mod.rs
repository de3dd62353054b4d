//! The control plane over HTTP: JSON status/events, drain/undrain (bearer token), Prometheus
//! metrics, and the CLI client that reads them back.
//!
//! Daemon side: [`load_token`], then [`ApiServer::bind`] + [`ApiServer::run`] (or [`serve`]).
//! CLI side: [`client`] functions return the text to print.

mod auth;
pub mod client;
mod metrics;
mod render;
mod routes;
mod server;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use auth::{is_loopback, load_token};
pub use client::ApiTarget;
pub use metrics::render as render_metrics;
pub use server::{serve, ApiServer};

//! The YAML shape exactly as written, before validation. Unknown keys are rejected by serde with
//! their name and line. Values that need a good message (durations, addresses, prefixes) stay text
//! here and are checked in `validate` with their path.

use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub router_id: Option<String>,
    pub local_as: Option<u64>,
    #[serde(default)]
    pub peers: Vec<RawPeer>,
    #[serde(default)]
    pub checks: Vec<RawCheck>,
    #[serde(default)]
    pub vips: Vec<RawVip>,
    #[serde(default)]
    pub signals: Vec<RawSignal>,
    pub api: Option<RawApi>,
    pub state_dir: Option<String>,
    pub disable_file: Option<String>,
    pub on_change: Option<Vec<String>>,
    pub on_change_timeout: Option<Value>,
    pub fleet: Option<RawFleet>,
}

/// Fleet guard settings shared by every VIP (issue 8).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawFleet {
    pub unhealthy_community: Option<String>,
    pub settle: Option<Value>,
    pub fail_open_dwell: Option<Value>,
    pub stop_hold_limit: Option<Value>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawGuard {
    pub min_healthy_others: Option<u32>,
    pub when_blind: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub listen: Option<String>,
    pub token_file: Option<String>,
    pub read_token: Option<bool>,
    pub tls: Option<RawApiTls>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawApiTls {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawSignal {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub interval: Option<Value>,
    pub window: Option<Value>,
    // access_log
    pub path: Option<String>,
    pub format: Option<String>,
    pub errors: Option<Value>,
    pub json: Option<RawJsonFields>,
    pub regex: Option<String>,
    pub latency_unit: Option<String>,
    /// nginx only: the `log_format` string nginx writes with (or `combined`), for the static
    /// field check.
    pub log_format: Option<String>,
    // tcp_stats
    pub ports: Option<Vec<u16>>,
    // prometheus
    pub url: Option<String>,
    pub timeout: Option<Value>,
    pub values: Option<serde_yaml::Mapping>,
    // handshakes
    pub addresses: Option<Vec<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawJsonFields {
    pub status: Option<String>,
    pub latency: Option<String>,
    pub latency_unit: Option<String>,
    pub time: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    pub signal: Option<String>,
    pub above: Option<Value>,
    pub restore_below: Option<Value>,
    pub above_baseline: Option<Value>,
    pub restore_below_baseline: Option<Value>,
    pub baseline: Option<Value>,
    #[serde(rename = "for")]
    pub for_: Option<Value>,
    pub restore_for: Option<Value>,
    pub min_requests: Option<u64>,
    /// Only in `weight.scale_when`: the multiplier while the condition holds.
    pub scale: Option<Value>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawWeight {
    pub capacity: Option<Value>,
    pub slow_start: Option<Value>,
    pub step: Option<Value>,
    pub min: Option<Value>,
    #[serde(default)]
    pub scale_when: Vec<RawCondition>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawDampening {
    pub half_life: Option<Value>,
    pub suppress: Option<f64>,
    pub reuse: Option<f64>,
    pub penalty: Option<f64>,
    pub max_suppress: Option<Value>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawPeer {
    pub name: Option<String>,
    pub address: Option<String>,
    pub remote_as: Option<u64>,
    pub local_address: Option<String>,
    pub port: Option<u16>,
    pub hold_time: Option<Value>,
    pub next_hop_v4: Option<String>,
    pub next_hop_v6: Option<String>,
    /// TCP-MD5 (RFC 2385) key file.
    pub password_file: Option<String>,
    pub tcp_ao: Option<RawTcpAo>,
    /// GTSM (RFC 5082).
    pub ttl_security: Option<bool>,
    pub bfd: Option<RawBfd>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawTcpAo {
    pub key_file: Option<String>,
    pub send_id: Option<u64>,
    pub recv_id: Option<u64>,
    pub algorithm: Option<String>,
}

/// `peers[].bfd` (issue 10).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawBfd {
    pub min_tx: Option<Value>,
    pub min_rx: Option<Value>,
    pub multiplier: Option<u64>,
    pub auth: Option<RawBfdAuth>,
}

/// `peers[].bfd.auth` (issue 18), shaped like `peers[].tcp_ao`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawBfdAuth {
    pub algorithm: Option<String>,
    pub key_id: Option<u64>,
    pub key_file: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    // tcp
    pub target: Option<String>,
    // http / https
    pub url: Option<String>,
    pub expect_status: Option<Vec<u16>>,
    pub expect_body: Option<String>,
    pub host: Option<String>,
    pub ca_file: Option<String>,
    pub insecure: Option<bool>,
    // exec
    pub command: Option<Vec<String>>,
    // listener
    pub address: Option<String>,
    pub port: Option<u16>,
    // process
    pub pid_file: Option<String>,
    // unit
    pub unit: Option<String>,
    // all
    pub source: Option<String>,
    pub interface: Option<String>,
    pub interval: Option<Value>,
    pub fast_interval: Option<Value>,
    pub timeout: Option<Value>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    // listener / process / unit
    pub definitive_fall: Option<bool>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawVip {
    // The optional parts are boxed (`Box<str>`, `Box<[T]>`: 16 bytes, not 24): a 100k-VIP file
    // is 100k of these, all alive during validation (inline ~1 KB each once, 134 MB).
    pub name: Option<String>,
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub checks: Vec<String>,
    pub require: Option<Box<Value>>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    #[serde(default)]
    pub communities: Box<[String]>,
    #[serde(default)]
    pub large_communities: Box<[String]>,
    pub as_path_prepend: Option<u8>,
    #[serde(default)]
    pub withdraw_when: Box<[RawCondition]>,
    pub on_missing: Option<Box<str>>,
    pub hold_down: Option<Box<Value>>,
    pub dampening: Option<Box<RawDampening>>,
    pub drain: Option<Box<str>>,
    pub drain_period: Option<Box<Value>>,
    /// A count, or `off` for a timed drain.
    pub drain_until_connections: Option<Box<Value>>,
    pub drain_min: Option<Box<Value>>,
    /// A duration, or `off` (the default).
    pub drain_idle: Option<Box<Value>>,
    pub on_unhealthy: Option<Box<str>>,
    pub shutdown: Option<Box<str>>,
    pub depreference: Option<Box<RawDepreference>>,
    pub disable_file: Option<Box<str>>,
    pub on_change: Option<Vec<String>>,
    pub guard: Option<Box<RawGuard>>,
    pub weight: Option<Box<RawWeight>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawDepreference {
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub as_path_prepend: Option<u8>,
}

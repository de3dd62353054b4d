//! Configuration: YAML in, validated `Config` out, with file:line on every error.
//!
//! Owns the YAML contract and its validation, and builds the other modules' input types (e.g.
//! `engine::VipSpec`). Nothing here runs anything; no module it imports may import it back.

mod bfd;
mod direct;
mod fieldcheck;
mod keys;
mod locate;
mod model;
mod problems;
mod raw;
mod schema;
pub mod secret_file;
mod signals;
mod summary;
mod validate;
mod vip_split;
mod weight;
mod yaml_hints;

pub use model::*;
pub use signals::values_of as signal_values;
pub use summary::{is_local_by_config, summary};
pub use validate::{DEFAULT_FAIL_OPEN_DWELL, DEFAULT_SETTLE, DEFAULT_STOP_HOLD_LIMIT};

use std::fmt;
use std::path::{Path, PathBuf};

use locate::Locator;

/// One problem in a config file, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Where the CLI finds the daemon: only the `api:` section, read leniently, so `vipwarden status`
/// still works when the rest of the file is being edited (that is when a refused reload must be
/// visible). Problems reading it fall back to the defaults and are returned as a note.
pub fn api_section(path: &Path) -> (ApiConfig, Option<String>) {
    let default = ApiConfig::loopback_default();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return (
                default,
                Some(format!(
                    "{}: cannot read ({e}); using the default API address",
                    path.display()
                )),
            )
        }
    };
    let doc: serde_yaml::Value = match serde_yaml::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            return (
                default,
                Some(format!(
                    "{}: not YAML ({e}); using the default API address",
                    path.display()
                )),
            )
        }
    };
    let api = doc.get("api");
    let listen = match api.and_then(|a| a.get("listen")).and_then(|l| l.as_str()) {
        None => default.listen,
        Some(s) => match s.trim().parse() {
            Ok(a) => a,
            Err(_) => {
                return (
                    default,
                    Some(format!(
                        "{}: api.listen \"{s}\" is not ADDRESS:PORT; using the default",
                        path.display()
                    )),
                )
            }
        },
    };
    let token_file = api
        .and_then(|a| a.get("token_file"))
        .and_then(|t| t.as_str())
        .map(PathBuf::from);
    let read_token = api
        .and_then(|a| a.get("read_token"))
        .and_then(|t| t.as_bool())
        .unwrap_or(
            !ApiConfig {
                listen,
                ..ApiConfig::loopback_default()
            }
            .listen_is_loopback(),
        );
    let tls_file = |k: &str| {
        api.and_then(|a| a.get("tls"))
            .and_then(|t| t.get(k))
            .and_then(|f| f.as_str())
            .map(PathBuf::from)
    };
    let tls = match (tls_file("cert_file"), tls_file("key_file")) {
        (Some(cert_file), Some(key_file)) => Some(ApiTls {
            cert_file,
            key_file,
        }),
        _ => None,
    };
    (
        ApiConfig {
            listen,
            token_file,
            read_token,
            tls,
        },
        None,
    )
}

/// A problem found outside this module (e.g. an API file the daemon cannot read), placed at the
/// line and column of `yaml_path` in `text`.
pub fn locate(file: &Path, text: &str, yaml_path: &str, message: String) -> ConfigError {
    let pos = Locator::new(text).find(yaml_path);
    ConfigError {
        file: file.to_path_buf(),
        line: pos.map(|p| p.line),
        column: pos.map(|p| p.column),
        message,
    }
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            message: format!("cannot read: {e}"),
        }])
    })?;
    parse(path, &text)
}

/// Validates config text; `file` is only used in messages.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
    parse_with(file, text, true)
}

/// `direct`: try the VIP-at-a-time read (`direct::parse`) first; tests turn it off to compare.
fn parse_with(file: &Path, text: &str, direct: bool) -> Result<Config, ConfigErrors> {
    let err = |line, column, message| ConfigError {
        file: file.to_path_buf(),
        line,
        column,
        message,
    };
    if text.trim().is_empty() {
        return Err(ConfigErrors(vec![err(
            None,
            None,
            "the file is empty".into(),
        )]));
    }
    // The position index costs about as much as the YAML tree (~70 MB at 100k VIPs): it is
    // built only when a problem or a warning needs a position, not for every valid file.
    let locator = std::cell::LazyCell::new(|| Locator::new(text));
    let at = |path: &str, key: bool, message: String| {
        let pos = if key {
            locator.find_key(path)
        } else {
            locator.find(path)
        };
        err(pos.map(|p| p.line), pos.map(|p| p.column), message)
    };
    let locate = |problems: Vec<validate::Problem>| -> Vec<ConfigError> {
        problems
            .into_iter()
            .map(|p| at(&p.path, false, p.message))
            .collect()
    };
    // A file that fits the schema is read a VIP at a time (`direct`), without the whole YAML
    // tree (~100 MB at 100k VIPs). Any error at all takes the full path, which reports every
    // problem with its position; on a file that fits, both give the same `RawConfig`.
    let (raw, schema_problems) = match direct.then(|| direct::parse(text)).flatten() {
        Some(raw) => (Some(raw), Vec::new()),
        None => {
            // YAML syntax first: past a syntax error nothing can be read, so that one stops here.
            let doc: serde_yaml::Value =
                serde_yaml::from_str(text).map_err(|e| syntax_error(file, text, &e))?;
            // Unknown keys and wrong types, all of them; the rest of the file is still checked.
            schema::deserialize::<raw::RawConfig>(doc)
        }
    };
    let mut errors: Vec<ConfigError> = schema_problems
        .iter()
        .map(|p| {
            let message = if p.unknown_key {
                yaml_hints::explain(text, &p.message, None, None).2
            } else {
                p.message.clone()
            };
            at(&p.path, p.unknown_key, message)
        })
        .collect();
    let Some(raw) = raw else {
        return Err(ConfigErrors(errors));
    };
    // A value dropped above is not also "required" or "unknown" below.
    let dropped: Vec<&str> = schema_problems
        .iter()
        .filter(|p| !p.unknown_key)
        .map(|p| p.path.as_str())
        .collect();
    let outside = |p: &validate::Problem| !dropped.iter().any(|d| schema::is_within(&p.path, d));
    match validate::validate(raw) {
        Ok((mut config, warnings)) if errors.is_empty() => {
            config.warnings = locate(warnings);
            Ok(config)
        }
        Ok(_) => Err(ConfigErrors(errors)),
        Err(problems) => {
            errors.extend(locate(problems.into_iter().filter(outside).collect()));
            Err(ConfigErrors(errors))
        }
    }
}

/// A YAML syntax error, positioned (with a hint where `yaml_hints` knows the usual cause).
fn syntax_error(file: &Path, text: &str, e: &serde_yaml::Error) -> ConfigErrors {
    let loc = e.location();
    // serde_yaml appends " at line L column C"; we print the position up front instead.
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) if loc.is_some() => msg[..i].to_string(),
        _ => msg,
    };
    let (line, column, msg) = yaml_hints::explain(
        text,
        &msg,
        loc.as_ref().map(|l| l.line()),
        loc.as_ref().map(|l| l.column()),
    );
    let msg = format!(
        "{msg} (a YAML syntax error: this stops parsing; fix it, and every other problem in \
         the file is then reported at once)"
    );
    ConfigErrors(vec![ConfigError {
        file: file.to_path_buf(),
        line,
        column,
        message: msg,
    }])
}

#[cfg(test)]
mod fleet_tests;
#[cfg(test)]
mod tests;

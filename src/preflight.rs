//! What `check-config` and `run` refuse, in one list: the config's own problems
//! (`config::load`) plus the files the API reads at run time (token, TLS pair), each at its
//! file:line:col, so a file check-config calls invalid never starts a daemon. Also the warnings
//! of the checks that cannot pass on this node, placed at their line.
//!
//! Uses `config`, `api` and `checks`; none of them uses it.

use std::path::Path;

use crate::config::{self, Config, ConfigError, ConfigErrors};

/// Loads `path` and refuses it on any problem, config or API files alike, all reported at once.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let loaded = config::load(path);
    // The API files are checked even when the rest is invalid, so one run shows everything; a
    // broken api section itself is `config::load`'s problem, then read leniently here.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let api = match &loaded {
        Ok(c) => c.api.clone(),
        Err(_) => config::api_section(path).0,
    };
    let mut problems = Vec::new();
    if let Some(Err(e)) = api.token_file.as_deref().map(crate::api::load_token) {
        problems.push(config::locate(
            path,
            &text,
            "api.token_file",
            format!("api.token_file: {e}"),
        ));
    }
    if let Some(tls) = &api.tls {
        if let Err(e) = crate::api::check_tls(&tls.cert_file, &tls.key_file) {
            problems.push(config::locate(path, &text, "api.tls", e.to_string()));
        }
    }
    match loaded {
        Ok(mut c) if problems.is_empty() => {
            c.warnings.extend(check_warnings(path, &text, &c));
            Ok(c)
        }
        Ok(_) => Err(ConfigErrors(problems)),
        Err(mut e) => {
            e.0.extend(problems);
            Err(e)
        }
    }
}

/// Checks that are valid but cannot pass here (a listener address that is not local).
fn check_warnings(path: &Path, text: &str, c: &Config) -> Vec<ConfigError> {
    c.checks
        .iter()
        .enumerate()
        .flat_map(|(i, check)| {
            crate::checks::config_warnings(std::slice::from_ref(check))
                .into_iter()
                .map(move |w| config::locate(path, text, &format!("checks[{i}].address"), w))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The six mistakes of issue 22 in one file: an unknown key, a wrong type, three semantic
    /// errors and a missing token file. One run names all six, each with line and column.
    #[test]
    fn every_problem_of_a_file_in_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vw.yaml");
        let text = r#"router_id: 198.51.100.2
local_as: 65101
peers:
  - name: tor1
    address: 198.51.100.1
    remote_as: 65000
    colour: blue
checks:
  - name: web
    type: tcp
    target: 203.0.113.10
    rise: 0
    fall: many
vips:
  - name: web
    prefixes: [203.0.113.10/33]
    checks: [web]
api:
  listen: 127.0.0.1:9179
  token_file: /nonexistent/vipwarden/token
"#;
        std::fs::write(&path, text).unwrap();
        let e = load(&path).unwrap_err();
        let lines: Vec<String> = e.0.iter().map(|e| e.to_string()).collect();
        assert_eq!(lines.len(), 6, "{lines:#?}");
        let p = path.display();
        for (at, what) in [
            ("7:5", "unknown field `colour`"),
            ("13:11", "checks[0].fall must be a whole number"),
            ("11:13", "checks[0].target"),
            ("12:11", "checks[0].rise must be at least 1"),
            ("16:16", "vips[0].prefixes[0]"),
            ("20:15", "api.token_file"),
        ] {
            let want = format!("{p}:{at}: ");
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&want) && l.contains(what)),
                "{want}{what} not in {lines:#?}"
            );
        }
    }

    #[test]
    fn a_bad_token_file_alone_refuses_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vw.yaml");
        let text = "router_id: 198.51.100.2\nlocal_as: 65101\npeers: [{name: t, address: 198.51.100.1, remote_as: 65000}]\nchecks: [{name: web, type: tcp, target: \"203.0.113.10:80\"}]\nvips: [{name: web, prefixes: [203.0.113.10/32], checks: [web]}]\napi:\n  token_file: /nonexistent/token\n";
        std::fs::write(&path, text).unwrap();
        assert!(config::load(&path).is_ok());
        let e = load(&path).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].line, Some(7), "{}", e.0[0]);
    }

    #[test]
    fn a_non_local_listener_warns_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vw.yaml");
        let text = "router_id: 198.51.100.2\nlocal_as: 65101\npeers: [{name: t, address: 198.51.100.1, remote_as: 65000}]\nchecks:\n  - name: web\n    type: listener\n    address: 203.0.113.254\n    port: 80\nvips: [{name: web, prefixes: [203.0.113.10/32], checks: [web]}]\n";
        std::fs::write(&path, text).unwrap();
        let c = load(&path).unwrap();
        let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(&format!("{}:7:14: check web", path.display())),
            "{w:?}"
        );
    }
}

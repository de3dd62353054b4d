//! `vipwarden check-config` and the daemon on a config that loads but cannot work as written:
//! a latency condition on stock nginx `combined` (issue 13 item 4). Runs the real binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vipwarden");

/// Line 18 is the latency condition; `LOG_FORMAT` and `STATE` are replaced.
const CONFIG: &str = r#"router_id: 198.51.100.2
local_as: 65101
peers: [{name: tor1, address: 127.0.0.1, port: 1, remote_as: 65000}]
checks: [{name: web, type: tcp, target: "127.0.0.1:1"}]
state_dir: STATE
api: {listen: "127.0.0.1:0"}
signals:
  - name: web_log
    type: access_log
    path: /nonexistent/access.log
    format: nginx
    log_format: LOG_FORMAT
vips:
  - name: web
    prefixes: [203.0.113.10/32]
    checks: [web]
    withdraw_when:
      - {signal: web_log.latency_p99, above: 1500ms}
      - {signal: web_log.error_ratio, above: 0.05}
"#;

const TIMED: &str = r#"'$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time'"#;

fn write_config(dir: &Path, log_format: &str) -> std::path::PathBuf {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let path = dir.join("vw.yaml");
    let text = CONFIG
        .replace("LOG_FORMAT", log_format)
        .replace("STATE", state.to_str().unwrap());
    std::fs::write(&path, text).unwrap();
    path
}

fn check_config(path: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["check-config", "-c"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_warns_about_latency_from_nginx_combined_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "combined");
    let (code, out, err) = check_config(&path);
    assert_eq!(code, 0, "{out}{err}");
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{out}");
    let want = format!(
        "warning: {}:18:18: vips[0].withdraw_when[0]: web_log.latency_p99 needs a request time, \
         but lines written with signals[0].log_format (nginx `combined`) carry none",
        path.display()
    );
    assert!(warnings[0].starts_with(&want), "{}", warnings[0]);
    assert!(warnings[0].contains("add ` $request_time` at the end of the nginx log_format"));
    assert!(out.ends_with("configuration is valid\n"), "{out}");
}

#[test]
fn check_config_is_quiet_when_the_log_format_has_request_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), TIMED);
    let (code, out, err) = check_config(&path);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("warning:"), "{out}");
    assert!(out.ends_with("configuration is valid\n"), "{out}");
}

/// Reads the daemon's stderr until a line contains `what`, for at most `limit`.
fn wait_for(lines: &mpsc::Receiver<String>, what: &str, limit: Duration) -> Option<String> {
    let end = Instant::now() + limit;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(what) => return Some(l),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn the_daemon_logs_the_warning_at_start_and_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "combined");
    let mut child = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let needle = "vips[0].withdraw_when[0]: web_log.latency_p99 needs a request time";
    let at_start = wait_for(&rx, needle, Duration::from_secs(10));
    // The API task runs only once the daemon's loop (and its SIGHUP handler) is up: before that
    // SIGHUP would end the process.
    let listening = at_start
        .as_ref()
        .and_then(|_| wait_for(&rx, "API listening", Duration::from_secs(10)));
    let after_hup = listening.as_ref().and_then(|_| {
        // SAFETY: kill(2) on the child we spawned and still own.
        unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
        wait_for(&rx, needle, Duration::from_secs(10))
    });
    // SIGTERM (not SIGKILL) so the daemon stops itself; then reap it.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    if child
        .wait_timeout_or_kill(Duration::from_secs(10))
        .is_none()
    {
        panic!("the daemon did not stop within 10 s of SIGTERM");
    }
    let at_start = at_start.expect("no configuration warning at start");
    assert!(at_start.contains("WARN configuration: "), "{at_start}");
    assert!(at_start.contains(&format!("{}:18:18", path.display())));
    let after_hup = after_hup.expect("no configuration warning after SIGHUP");
    assert!(after_hup.contains("WARN SIGHUP: "), "{after_hup}");
}

trait WaitTimeout {
    fn wait_timeout_or_kill(&mut self, limit: Duration) -> Option<std::process::ExitStatus>;
}

impl WaitTimeout for std::process::Child {
    /// Waits up to `limit`; past it kills the child (ours) and returns None.
    fn wait_timeout_or_kill(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.kill();
        let _ = self.wait();
        None
    }
}

/// The example on docs/signals.md: the shipped passive-signals config is quiet, and the same file with
/// `log_format: combined` warns about both latency conditions at their lines.
#[test]
fn the_shipped_example_is_quiet_and_its_combined_variant_warns() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/passive-signals.yaml");
    let (code, out, err) = check_config(&example);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("warning:"), "{out}");
    let text = std::fs::read_to_string(&example).unwrap();
    let timed = text
        .lines()
        .find(|l| l.trim_start().starts_with("log_format: '"))
        .expect("the example gives a log_format");
    assert!(timed.ends_with("$request_time'"), "{timed}");
    let dir = tempfile::tempdir().unwrap();
    let combined = dir.path().join("passive-signals.yaml");
    std::fs::write(&combined, text.replace(timed, "    log_format: combined")).unwrap();
    let (code, out, err) = check_config(&combined);
    assert_eq!(code, 0, "{out}{err}");
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 2, "{out}");
    // Located at the condition's `signal:` value (docs/signals.md shows these lines).
    let at = |value: &str| {
        let n = text
            .lines()
            .position(|l| {
                l.trim_end()
                    .ends_with(&format!("- signal: web_log.{value}"))
            })
            .unwrap();
        format!(":{}:17: ", n + 1)
    };
    assert!(warnings[0].contains(&format!(
        "{}vips[0].withdraw_when[1]: web_log.latency_p99 needs a request time",
        at("latency_p99")
    )));
    assert!(warnings[1].contains(&format!(
        "{}vips[0].withdraw_when[2]: web_log.latency_p95 needs a request time",
        at("latency_p95")
    )));
}

/// Issue 18: one secret-file rule with the same words at check-config and in the daemon; a
/// SIGHUP that brings a key file breaking it is refused whole and the running config stays.
#[test]
fn an_unsafe_key_file_fails_check_config_and_a_sighup_with_the_same_words() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("tor1.key");
    std::fs::write(&key, "s3cret\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.path().join("vw.yaml");
    let text = format!(
        "router_id: 198.51.100.2\nlocal_as: 65101\npeers:\n  - name: tor1\n    address: 127.0.0.1\n    port: 1\n    remote_as: 65000\n    password_file: {}\nchecks: [{{name: web, type: tcp, target: \"127.0.0.1:1\"}}]\nstate_dir: {}\napi: {{listen: \"127.0.0.1:0\"}}\nvips: [{{name: web, prefixes: [203.0.113.10/32], checks: [web]}}]\n",
        key.display(),
        dir.path().display()
    );
    std::fs::write(&path, text).unwrap();
    let (code, out, err) = check_config(&path);
    assert_eq!(code, 0, "{out}{err}");

    let mut child = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let listening = wait_for(&rx, "API listening", Duration::from_secs(10));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640 | 0o004)).unwrap();
    let (code, _, check_err) = check_config(&path);
    let refused = listening.as_ref().and_then(|_| {
        // SAFETY: kill(2) on the child we spawned and still own.
        unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
        wait_for(&rx, "configuration not reloaded", Duration::from_secs(10))
    });
    // The reason is on the lines after the headline.
    let detail = refused
        .as_ref()
        .and_then(|_| wait_for(&rx, "TCP-MD5 password file", Duration::from_secs(5)));
    let still_running = child.try_wait().unwrap().is_none();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait_timeout_or_kill(Duration::from_secs(10));
    assert_ne!(code, 0, "check-config accepted a world-readable key file");
    let want = format!(
        "TCP-MD5 password file {} (mode 0644, owner uid",
        key.display()
    );
    assert!(check_err.contains(&want), "{check_err}");
    assert!(
        check_err.contains("a secret file must be owned by root or the daemon's user"),
        "{check_err}"
    );
    assert!(refused.is_some(), "no refused reload logged");
    let detail = detail.expect("the refusal does not name the key file");
    // The same sentence as check-config's, from `TCP-MD5 password file` to the end.
    let sentence = &detail[detail.find("TCP-MD5 password file").unwrap()..];
    assert!(check_err.contains(sentence), "{sentence}\nvs\n{check_err}");
    assert!(still_running, "the daemon stopped on a refused reload");
}

/// Issue 22: `run` refuses what check-config calls invalid (here a token file that does not
/// exist), with the same located line, and starts nothing.
#[test]
fn run_refuses_what_check_config_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), TIMED);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "api: {listen: \"127.0.0.1:0\"}",
        "api: {listen: \"127.0.0.1:0\", token_file: /nonexistent/vw-token}",
    );
    std::fs::write(&path, text).unwrap();
    let (code, out, err) = check_config(&path);
    assert_eq!(code, 1, "{out}{err}");
    let located = format!("{}:6:", path.display());
    assert!(
        err.contains(&located) && err.contains("api.token_file"),
        "{err}"
    );
    let mut child = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&path)
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait_timeout_or_kill(Duration::from_secs(10));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let status = status.expect("run started on a config check-config refuses");
    assert!(!status.success());
    assert!(
        err.contains(&located) && err.contains("nothing started"),
        "{err}"
    );
}

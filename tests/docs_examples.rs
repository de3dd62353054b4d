//! The documentation's examples and links are checked, so they cannot rot (issue 21, "Docs"):
//! every ```yaml block of README.md and docs/*.md parses as YAML, every block that is a whole
//! config (a top-level `router_id:`) passes `vipwarden::config::parse`, every fragment (a block
//! with only some keys) passes it too once merged into README's minimal config, every relative link
//! points at an existing file (and heading, for `page.md#anchor`), and every key-table row of a
//! subject page is repeated in docs/configuration.md ("every key in one place").

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Blocks that are not expected to pass `config::parse` (whole configs as written, fragments
/// merged into README's minimal config), as (page, first line of the block's text, a text every
/// error of the block must contain). Any other error still fails; a block that starts passing
/// fails the test until its entry is removed.
const PARSE_ALLOW: &[(&str, &str, &str)] = &[
    // The weights page's two examples (docs/weights.md, "In short" and "Keys and an example")
    // scale on `envoy.latency_p99` and `host.cpu_busy`, signals of the reader's own that the
    // examples do not define (docs/signals.md shows how).
    ("docs/weights.md", "vips:", "names unknown signal"),
];

/// Key files a fragment names (`/etc/vipwarden/...`) are made in a temporary directory.
const KEY_DIR: &str = "/etc/vipwarden/";

/// Merges `over` into `base`: mappings key by key, lists of named items (`peers`, `checks`,
/// `vips`, `signals`) item by item on `name` (unknown names appended), anything else replaced.
fn merge(base: &mut serde_yaml::Value, over: &serde_yaml::Value) {
    use serde_yaml::Value;
    let name = |v: &Value| v.get("name").cloned();
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(bv) => merge(bv, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) if o.iter().all(|v| name(v).is_some()) => {
            for v in o {
                match b.iter_mut().find(|bv| name(bv) == name(v)) {
                    Some(bv) => merge(bv, v),
                    None => b.push(v.clone()),
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A fragment shows only its subject's keys: a peer it adds gets the base peer's `next_hop_v6`
/// (README's minimal config announces an IPv6 prefix over IPv4 sessions).
fn inherit_next_hop(merged: &mut serde_yaml::Value, base: &serde_yaml::Value) {
    let Some(nh) = base["peers"][0].get("next_hop_v6").cloned() else {
        return;
    };
    if let Some(peers) = merged.get_mut("peers").and_then(|p| p.as_sequence_mut()) {
        for peer in peers.iter_mut().filter_map(|p| p.as_mapping_mut()) {
            if !peer.contains_key("next_hop_v6") {
                peer.insert("next_hop_v6".into(), nh.clone());
            }
        }
    }
}

/// Points every `/etc/vipwarden/NAME` string at `dir/NAME`, made as a 0600 key file.
fn localize_keys(v: &mut serde_yaml::Value, dir: &Path) {
    use serde_yaml::Value;
    match v {
        Value::String(s) if s.starts_with(KEY_DIR) => {
            let file = dir.join(&s[KEY_DIR.len()..]);
            std::fs::write(&file, "docs-example-key\n").expect("write key file");
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o600);
            std::fs::set_permissions(&file, mode).expect("chmod key file");
            *s = file.display().to_string();
        }
        Value::Mapping(m) => m.values_mut().for_each(|v| localize_keys(v, dir)),
        Value::Sequence(l) => l.iter_mut().for_each(|v| localize_keys(v, dir)),
        _ => {}
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and docs/*.md, as paths relative to the crate root, sorted.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("readable docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| {
            p.strip_prefix(root())
                .expect("under the root")
                .to_path_buf()
        })
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn read(page: &Path) -> String {
    std::fs::read_to_string(root().join(page))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", page.display()))
}

/// A fenced code block: its info string, the 1-based line of its opening fence, its text.
struct Block {
    lang: String,
    line: usize,
    text: String,
}

/// Fenced blocks (``` at the start of a line, possibly indented) and the lines outside them.
fn split(text: &str) -> (Vec<Block>, Vec<(usize, &str)>) {
    let mut blocks = Vec::new();
    let mut prose = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => {
                open = Some(Block {
                    lang: info.trim().to_string(),
                    line: i + 1,
                    text: String::new(),
                })
            }
            (Some(_), Some(_)) => blocks.push(open.take().expect("open block")),
            (Some(b), None) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            (None, None) => prose.push((i + 1, line)),
        }
    }
    assert!(open.is_none(), "unclosed code fence");
    (blocks, prose)
}

fn yaml_blocks() -> Vec<(PathBuf, Block)> {
    let mut out = Vec::new();
    for page in pages() {
        let (blocks, _) = split(&read(&page));
        out.extend(
            blocks
                .into_iter()
                .filter(|b| b.lang == "yaml" || b.lang == "yml")
                .map(|b| (page.clone(), b)),
        );
    }
    out
}

#[test]
fn every_yaml_block_parses_and_every_whole_config_is_valid() {
    let mut failures = Vec::new();
    let mut configs = 0;
    let mut fragments = 0;
    let blocks = yaml_blocks();
    let is_whole =
        |v: &serde_yaml::Value| v.as_mapping().is_some_and(|m| m.contains_key("router_id"));
    // The base for fragments: README's minimal config (its first whole config).
    let base: serde_yaml::Value = blocks
        .iter()
        .filter(|(p, _)| p == Path::new("README.md"))
        .filter_map(|(_, b)| serde_yaml::from_str(&b.text).ok())
        .find(is_whole)
        .expect("README.md has a minimal config block");
    let keys = tempfile::tempdir().expect("temp dir");
    for (page, block) in &blocks {
        let at = format!("{}:{}", page.display(), block.line);
        let configs_before = configs;
        let value: serde_yaml::Value = match serde_yaml::from_str(&block.text) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{at}: not YAML: {e}"));
                continue;
            }
        };
        let (text, what) = if is_whole(&value) {
            configs += 1;
            // Blank lines in front, so the errors' line numbers are the page's.
            ("\n".repeat(block.line) + &block.text, "config block")
        } else if value.is_mapping() {
            fragments += 1;
            let mut merged = base.clone();
            merge(&mut merged, &value);
            inherit_next_hop(&mut merged, &base);
            localize_keys(&mut merged, keys.path());
            let text = serde_yaml::to_string(&merged).expect("serialize");
            (text, "fragment, merged into README.md's minimal config,")
        } else {
            continue;
        };
        let first = block.text.lines().next().unwrap_or("");
        let allowed = PARSE_ALLOW
            .iter()
            .find(|(p, l, _)| Path::new(p) == page && *l == first)
            .map(|(_, _, why)| *why);
        // A fragment's error positions are in the merged text, printed below them.
        let label = if configs_before == configs {
            PathBuf::from(format!("{at} (merged)"))
        } else {
            page.clone()
        };
        match vipwarden::config::parse(&label, &text) {
            Ok(_) if allowed.is_some() => failures.push(format!(
                "{at}: valid now; remove it from PARSE_ALLOW in tests/docs_examples.rs"
            )),
            Ok(_) => {}
            Err(e) if allowed.is_some_and(|why| e.to_string().lines().all(|l| l.contains(why))) => {
            }
            Err(e) => failures.push(format!("{at}: {what} is not valid:\n{e}\n{text}")),
        }
    }
    assert!(
        blocks.len() >= 8,
        "found only {} yaml blocks: is the fence parser broken?",
        blocks.len()
    );
    assert!(
        configs >= 1,
        "no whole-config block found (README's minimal config?)"
    );
    assert!(fragments >= 5, "found only {fragments} config fragments");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// GitHub's heading anchor: lower case, punctuation other than `-` and `_` dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let (_, prose) = split(text);
    prose
        .iter()
        .filter_map(|(_, l)| {
            let hashes = l.len() - l.trim_start_matches('#').len();
            (1..=6)
                .contains(&hashes)
                .then(|| l[hashes..].strip_prefix(' '))
                .flatten()
        })
        .map(slug)
        .collect()
}

/// `](target)` links in the text outside code fences and inline code spans.
fn links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut code = false;
    let bytes: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            '`' => code = !code,
            ']' if !code && bytes.get(i + 1) == Some(&'(') => {
                let rest: String = bytes[i + 2..].iter().collect();
                if let Some(end) = rest.find(')') {
                    out.push(rest[..end].to_string());
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

#[test]
fn every_relative_link_points_at_an_existing_file_and_heading() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = read(&page);
        let dir = page.parent().unwrap_or(Path::new(""));
        let (_, prose) = split(&text);
        for (line, l) in prose {
            for target in links(l) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (file, anchor) = match target.split_once('#') {
                    Some((f, a)) => (f, Some(a)),
                    None => (target.as_str(), None),
                };
                let at = format!("{}:{line}", page.display());
                let linked = if file.is_empty() {
                    page.clone()
                } else {
                    dir.join(file)
                };
                if !root().join(&linked).exists() {
                    failures.push(format!(
                        "{at}: {target}: {} does not exist",
                        linked.display()
                    ));
                    continue;
                }
                if let Some(anchor) = anchor {
                    if linked.extension().is_some_and(|x| x == "md")
                        && !anchors(&read(&linked)).contains(anchor)
                    {
                        failures.push(format!(
                            "{at}: {target}: no heading #{anchor} in {}",
                            linked.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        checked >= 20,
        "found only {checked} relative links: is the link parser broken?"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_key_table_row_is_in_the_configuration_reference() {
    let reference = read(Path::new("docs/configuration.md"));
    let in_reference: BTreeSet<&str> = reference.lines().map(str::trim).collect();
    let mut failures = Vec::new();
    let mut rows = 0;
    for page in pages() {
        if page == Path::new("docs/configuration.md") {
            continue;
        }
        let text = read(&page);
        let mut in_table = false;
        for (i, l) in text.lines().enumerate() {
            let l = l.trim();
            if l.starts_with("| key | default | meaning |") {
                in_table = true;
                continue;
            }
            if !l.starts_with('|') {
                in_table = false;
                continue;
            }
            if in_table && !l.starts_with("|---") {
                rows += 1;
                if !in_reference.contains(l) {
                    failures.push(format!(
                        "{}:{}: key row not in docs/configuration.md (copy it there): {l}",
                        page.display(),
                        i + 1
                    ));
                }
            }
        }
    }
    assert!(
        rows >= 20,
        "found only {rows} key rows: is the table parser broken?"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn slugs_match_github() {
    assert_eq!(
        slug("Authentication (TCP-MD5, TCP-AO) and GTSM"),
        "authentication-tcp-md5-tcp-ao-and-gtsm"
    );
    assert_eq!(
        slug("Passive signals: withdraw when real traffic suffers"),
        "passive-signals-withdraw-when-real-traffic-suffers"
    );
    assert_eq!(
        slug("First day: the router side and the VIP on `lo`"),
        "first-day-the-router-side-and-the-vip-on-lo"
    );
}

//! A file that fits the schema, read without the whole YAML document in memory. serde_yaml 0.9
//! loads every event of a document before deserializing anything (~200 MB at 100k VIPs), so it
//! is never given the whole file here: `vip_split` finds the items of the `vips:` list in the
//! text; a few dozen at a time, as the block list they form there, are read into a small tree
//! whose items are turned into `RawVip`s before the next ones are read; and the rest of the
//! file (the text with the `vips:` block cut out) is one more small document. Every value is
//! still deserialized from a YAML tree, as the full path does, so both accept and refuse the
//! same things (`name: 123` is refused as a number, not taken as the text "123", which
//! serde_yaml's text reader would do). Anything unusual or any error returns None: the full path
//! then reports every problem with its position. A leaf: text in, raw config out.

use serde::Deserialize;
use serde_yaml::Value;

use super::raw::{RawConfig, RawVip};
use super::vip_split;

/// VIPs per document given to serde_yaml: each document costs a libyaml parser (one per VIP
/// took ~80 ms more at 100k); a few dozen still make a small tree and event list.
const VIPS_PER_DOC: usize = 64;

/// The raw config of `text`, or None when anything at all is wrong or unusual about it.
pub fn parse(text: &str) -> Option<RawConfig> {
    let split = vip_split::split(text)?;
    let Some(block) = split.vips else {
        // No `vips:` list to cut out: the file is all "rest".
        return rest(text, split.rest_nodes);
    };
    let (cut_from, cut_to) = block.cut;
    let rest_text = [text.get(..cut_from)?, text.get(cut_to..)?].concat();
    let mut raw = rest(&rest_text, split.rest_nodes)?;
    // Sized exactly: the list lives as long as the config, so no growth slack.
    let mut vips = Vec::with_capacity(block.len());
    let mut from = 0;
    while from < block.len() {
        let to = block.len().min(from + VIPS_PER_DOC);
        let items = block.items(text, from..to)?;
        let tree: Value = serde_yaml::from_str(items.text).ok()?;
        if nodes(&tree)? != items.nodes {
            return None;
        }
        let Value::Sequence(trees) = tree else {
            return None;
        };
        if trees.len() != to - from {
            return None;
        }
        for tree in trees {
            vips.push(RawVip::deserialize(tree).ok()?);
        }
        from = to;
    }
    raw.vips = vips;
    Some(raw)
}

/// `text` (the file without its `vips:` list) as a RawConfig, when serde_yaml sees the `nodes`
/// yaml-rust2 counted in it.
fn rest(text: &str, nodes_seen: usize) -> Option<RawConfig> {
    let tree: Value = serde_yaml::from_str(text).ok()?;
    // A `vips` key here is one yaml-rust2 did not see as such (e.g. after a byte order mark,
    // which it keeps in the key): the two parsers disagree, and the node count would not tell.
    if tree.get("vips").is_some() || nodes(&tree)? != nodes_seen {
        return None;
    }
    RawConfig::deserialize(tree).ok()
}

/// The number of nodes in `tree` (each scalar, list and mapping, keys included), as
/// `vip_split` counts them; None for a tag, which `vip_split` refuses.
fn nodes(tree: &Value) -> Option<usize> {
    match tree {
        Value::Sequence(items) => items.iter().try_fold(1, |n, v| Some(n + nodes(v)?)),
        Value::Mapping(map) => map
            .iter()
            .try_fold(1, |n, (k, v)| Some(n + nodes(k)? + nodes(v)?)),
        Value::Tagged(_) => None,
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => Some(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of testbed/bench/memory_configs.py (`vips`), two VIPs long.
    const BENCH: &str = "router_id: 198.51.100.2\nlocal_as: 65101\nstate_dir: /tmp/s\n\
        api: {listen: '127.0.0.1:19180'}\n\
        peers:\n  - {name: tor, address: '127.0.0.1', port: 1, remote_as: 65000, \
        local_address: '127.0.0.1', next_hop_v6: '2001:db8:1::2', hold_time: 9s}\n\
        checks:\n  - {name: c0, type: tcp, target: '127.0.0.1:1', interval: 1s, \
        timeout: 500ms, rise: 1, fall: 1}\n\
        vips:\n  - {name: v0, prefixes: ['2001:db8:a::1/128'], checks: [c0]}\n\
        \x20 - {name: v1, prefixes: ['2001:db8:a::2/128'], checks: [c0]}\n";

    #[test]
    fn the_bench_shape_is_read_a_vip_at_a_time() {
        let raw = parse(BENCH).expect("the direct path");
        let names: Vec<_> = raw.vips.iter().map(|v| v.name.as_deref()).collect();
        assert_eq!(names, [Some("v0"), Some("v1")]);
        assert_eq!(raw.vips.capacity(), 2);
        assert_eq!(raw.vips[1].prefixes, ["2001:db8:a::2/128"]);
        assert_eq!(raw.checks.len(), 1);
        assert_eq!(raw.local_as, Some(65101));
        // Block style, the list not last, comments between items, dashes in the key's column.
        let block = "vips:\n# first\n- name: v0\n  prefixes:\n    - 2001:db8:a::1/128\n\
            \x20 # between\n\n- name: v1\n  checks: [c0]\nrouter_id: 198.51.100.2\n";
        let raw = parse(block).expect("the direct path");
        assert_eq!(raw.vips.len(), 2);
        assert_eq!(raw.vips[0].prefixes, ["2001:db8:a::1/128"]);
        assert_eq!(raw.vips[1].checks, ["c0"]);
        assert_eq!(raw.router_id.as_deref(), Some("198.51.100.2"));
    }

    #[test]
    fn many_vips_are_read_in_order_across_documents() {
        let mut text = BENCH.split("vips:").next().unwrap_or_default().to_string();
        text.push_str("vips:\n");
        let n = 3 * VIPS_PER_DOC + 5;
        for i in 0..n {
            match i % 3 {
                0 => text.push_str(&format!("  - {{name: v{i}, checks: [c0]}}\n")),
                1 => text.push_str(&format!(
                    "  # {i}\n  - name: v{i}\n    prefixes:\n    - p{i}\n\n"
                )),
                _ => text.push_str(&format!(
                    "  - name: v{i}\n    drain: |\n      x\n\n      y\n"
                )),
            }
        }
        text.push_str("fleet: {}\n");
        let raw = parse(&text).expect("the direct path");
        let names: Vec<_> = raw.vips.iter().filter_map(|v| v.name.clone()).collect();
        let want: Vec<_> = (0..n).map(|i| format!("v{i}")).collect();
        assert_eq!(names, want);
        assert_eq!(raw.vips.capacity(), n);
        let last_doc = 3 * VIPS_PER_DOC + 1;
        assert_eq!(raw.vips[last_doc].prefixes, [format!("p{last_doc}")]);
        assert!(raw.fleet.is_some());
    }

    #[test]
    fn unusual_shapes_fall_back_to_the_full_path() {
        let head = BENCH.split("vips:").next().unwrap_or_default();
        let item = "  - {name: v0, prefixes: ['2001:db8:a::1/128'], checks: [c0]}\n";
        let anchored = item.replace("- {", "- &a {");
        let cases = [
            ("an anchor on an item", format!("{head}vips:\n{anchored}")),
            ("an alias", format!("{head}vips:\n{anchored}  - *a\n")),
            ("an anchor elsewhere", format!("{BENCH}fleet: &f {{}}\n")),
            ("a tag", BENCH.replace("local_as: ", "local_as: !!int ")),
            ("a flow list", format!("{head}vips: [{{name: v9}}]\n")),
            ("an empty flow list", format!("{head}vips: []\n")),
            ("two documents", format!("{BENCH}---\nfleet: {{}}\n")),
            ("a repeated key", format!("{BENCH}local_as: 65102\n")),
            ("a repeated vips:", format!("{BENCH}vips:\n{item}")),
            (
                "an item under its dash",
                format!("{head}vips:\n  -\n    name: v9\n"),
            ),
            (
                "a tab after the dash",
                format!("{head}vips:\n  -\tname: v9\n"),
            ),
        ];
        for (name, text) in cases {
            assert!(
                parse(&text).is_none(),
                "{name}: took the direct path:\n{text}"
            );
        }
    }
}

//! `vipwarden man`: clap_mangen's page, except that a command's `after_long_help` (written as
//! "Exit status:", "Examples:", "Environment:", ... paragraphs for `--help`) becomes the man
//! page's own sections (EXIT STATUS, EXAMPLES, ...) instead of one section called EXTRA.

use std::io::{self, Write};
use std::path::Path;

/// Sections in man-pages(7) order; a heading not listed keeps its place before EXAMPLES.
const ORDER: [&str; 5] = ["NOTES", "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES"];

/// Renders one command's page.
pub fn render(cmd: &clap::Command, w: &mut dyn Write) -> io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(w)?;
    }
    let extra = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    for (name, lines) in sections(&extra) {
        writeln!(w, ".SH \"{name}\"")?;
        writeln!(w, ".nf")?;
        for l in lines {
            writeln!(w, "{}", escape(&l))?;
        }
        writeln!(w, ".fi")?;
    }
    if cmd.get_version().is_some() || cmd.get_long_version().is_some() {
        man.render_version_section(w)?;
    }
    Ok(())
}

/// One page per command, like `clap_mangen::generate_to`: `vipwarden.1`,
/// `vipwarden-check-config.1`, ...
pub fn generate_to(cmd: clap::Command, dir: &Path) -> io::Result<()> {
    fn each(cmd: clap::Command, dir: &Path) -> io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            each(sub, dir)?;
        }
        let name = clap_mangen::Man::new(cmd.clone()).get_filename();
        let mut f = std::fs::File::create(dir.join(name))?;
        render(&cmd, &mut f)?;
        f.flush()
    }
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    each(cmd, dir)
}

/// Splits help text at its headings (a line at column 0 that starts with a capital and has a
/// colon, e.g. "Exit status:" or "Exit status: 0 after a planned stop"). Text before the first
/// heading is NOTES. Sections come out in man-pages order.
fn sections(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let heading = line
            .split_once(':')
            .filter(|(h, _)| {
                line.starts_with(|c: char| c.is_ascii_uppercase())
                    && h.chars().all(|c| c.is_ascii_alphabetic() || c == ' ')
                    && h.split(' ').count() <= 3
            })
            .map(|(h, rest)| (title(h), rest.trim()));
        match heading {
            Some((name, rest)) => {
                let at = match out.iter().position(|(n, _)| *n == name) {
                    Some(i) => i,
                    None => {
                        out.push((name, Vec::new()));
                        out.len() - 1
                    }
                };
                if !rest.is_empty() {
                    out[at].1.push(rest.to_string());
                }
            }
            None => {
                if out.is_empty() {
                    out.push(("NOTES".to_string(), Vec::new()));
                }
                if let Some(last) = out.last_mut() {
                    last.1.push(line.to_string());
                }
            }
        }
    }
    for (_, lines) in &mut out {
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
        while lines.first().is_some_and(|l| l.trim().is_empty()) {
            lines.remove(0);
        }
    }
    out.retain(|(_, l)| !l.is_empty());
    let rank = |n: &str| ORDER.iter().position(|o| *o == n).unwrap_or(1);
    out.sort_by_key(|(n, _)| rank(n));
    out
}

fn title(h: &str) -> String {
    match h.trim() {
        "Example" | "Examples" => "EXAMPLES".to_string(),
        other => other.to_uppercase(),
    }
}

/// Roff: a backslash is `\e`; a line starting with `.` or `'` would be a request.
fn escape(line: &str) -> String {
    let l = line.replace('\\', "\\e");
    if l.starts_with('.') || l.starts_with('\'') {
        format!("\\&{l}")
    } else {
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELP: &str = "Checks what the daemon checks.\n\nExit status: 0 valid; 1 invalid.\n\nExamples:\n  vipwarden check-config -c /etc/vipwarden/vipwarden.yaml\n\nEnvironment:\n  RUST_LOG   refines\n";

    #[test]
    fn headings_become_sections_in_man_pages_order() {
        let s = sections(HELP);
        let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["NOTES", "EXIT STATUS", "ENVIRONMENT", "EXAMPLES"]);
        assert_eq!(s[1].1, ["0 valid; 1 invalid."]);
        assert_eq!(
            s[3].1,
            ["  vipwarden check-config -c /etc/vipwarden/vipwarden.yaml"]
        );
    }

    #[test]
    fn the_page_has_its_sections_and_no_extra() {
        let cmd = clap::Command::new("vw")
            .version("1")
            .about("x")
            .after_long_help(HELP);
        let mut out = Vec::new();
        render(&cmd, &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
        assert!(page.contains(".SH \"EXAMPLES\""), "{page}");
        assert!(!page.contains("EXTRA"), "{page}");
        assert!(page.contains(".TH vw"), "{page}");
    }

    #[test]
    fn roff_requests_are_escaped() {
        assert_eq!(escape(".hidden"), "\\&.hidden");
        assert_eq!(escape("a\\b"), "a\\eb");
    }
}

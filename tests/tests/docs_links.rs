//! The repository's links stay honest: every relative link `[text](path#anchor)` in a Markdown
//! file names a file or folder that exists, and its anchor a heading of that file (as GitHub
//! makes anchors from headings); every `docs/<page>.md#anchor` named in Rust sources exists too.
//! Reads files only: no network, no build of diagd.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The repository root: the parent of this package's folder.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Every file under `dir` with extension `ext`, skipping build output and hidden folders.
fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                files(&path, ext, out);
            }
        } else if kind.is_file() && path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// The lines of a Markdown text outside fenced code blocks, with their numbers (from 1).
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<(char, usize)> = None;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        if let Some(c) = marker {
            let run = trimmed.chars().take_while(|x| *x == c).count();
            if run >= 3 {
                match fence {
                    None => fence = Some((c, run)),
                    Some((open, len)) if open == c && run >= len && trimmed[run..].trim().is_empty() => fence = None,
                    Some(_) => {}
                }
                continue;
            }
        }
        if fence.is_none() {
            lines.push((i + 1, line));
        }
    }
    lines
}

/// `line` without its inline code spans (a run of backticks up to the next run as long).
fn without_code(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|c| **c == '`').count();
        let mut j = i + run;
        let mut closed = None;
        while j < chars.len() {
            let next = chars[j..].iter().take_while(|c| **c == '`').count();
            if next == run {
                closed = Some(j + next);
                break;
            }
            j += next.max(1);
        }
        match closed {
            Some(end) => i = end,
            None => {
                out.extend(&chars[i..i + run]);
                i += run;
            }
        }
    }
    out
}

/// The anchor GitHub gives a heading: lower case; letters, digits, `-` and `_` kept, spaces
/// turned into `-`, everything else dropped; link targets and code backticks removed first.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](target)` reads as `text`.
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](").map(|m| open + m) else { break };
        let Some(close) = rest[mid..].find(')').map(|c| mid + c) else { break };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..mid]);
        rest = &rest[close + 1..];
    }
    text.push_str(rest);
    text.chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file: its headings' slugs (the second of a name gets `-1`, …)
/// and the `id`/`name` of HTML anchors.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (_, line) in prose_lines(text) {
        let trimmed = line.trim_start();
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && trimmed[level..].starts_with([' ', '\t']) {
            let heading = trimmed[level..].trim().trim_end_matches('#').trim();
            let base = slug(heading);
            let n = seen.entry(base.clone()).or_insert(0);
            out.push(if *n == 0 { base.clone() } else { format!("{base}-{n}") });
            *n += 1;
        }
        for attr in ["id=\"", "name=\""] {
            let mut rest = line;
            while let Some(at) = rest.find(attr) {
                rest = &rest[at + attr.len()..];
                if let Some(end) = rest.find('"') {
                    out.push(rest[..end].to_owned());
                }
            }
        }
    }
    out
}

/// The link targets of one line of prose: `](target)` and reference definitions `[x]: target`.
fn targets(line: &str) -> Vec<String> {
    let line = without_code(line);
    let mut out = Vec::new();
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let target = if let Some(inner) = rest.strip_prefix('<') {
            inner.split('>').next().unwrap_or("")
        } else {
            // Up to the closing parenthesis, balancing any inside; a title follows a space.
            let mut depth = 0;
            let end = rest
                .char_indices()
                .find(|&(_, c)| match c {
                    '(' => {
                        depth += 1;
                        false
                    }
                    ')' if depth == 0 => true,
                    ')' => {
                        depth -= 1;
                        false
                    }
                    _ => false,
                })
                .map_or(rest.len(), |(i, _)| i);
            rest[..end].split_whitespace().next().unwrap_or("")
        };
        out.push(target.to_owned());
    }
    // A reference definition: the line is `[label]: target`, the label's first `]` followed by `:`.
    let definition = line.trim_start().strip_prefix('[').and_then(|label| {
        let rest = label.find(']').and_then(|close| label[close + 1..].strip_prefix(':'))?;
        rest.split_whitespace().next()
    });
    if let Some(target) = definition {
        out.push(target.trim_start_matches('<').trim_end_matches('>').to_owned());
    }
    out
}

/// Whether a link is not a path in the repository: a URL (checked by nobody here), or a
/// rustdoc intra-doc link such as `crate::http::Route` in a README that is also crate docs.
fn is_external(target: &str) -> bool {
    if target.contains("::") {
        return true;
    }
    let scheme = target.split_once(':').map(|(s, _)| s);
    scheme.is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
}

/// `path` with `.` and `..` resolved without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Checks `target` named in `from` (line `line`); a problem is pushed to `errors`.
fn check(root: &Path, from: &Path, base: &Path, line: usize, target: &str, errors: &mut Vec<String>) {
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let shown = from.strip_prefix(root).unwrap_or(from).display();
    let file = normalize(&if path.is_empty() { from.to_path_buf() } else { base.join(path) });
    if !file.starts_with(root) {
        errors.push(format!("{shown}:{line}: `{target}` points outside the repository"));
        return;
    }
    if !file.exists() {
        errors.push(format!("{shown}:{line}: `{target}`: {} does not exist", file.display()));
        return;
    }
    let Some(anchor) = anchor.filter(|a| !a.is_empty()) else { return };
    if file.extension().is_none_or(|e| e != "md") {
        errors.push(format!("{shown}:{line}: `{target}`: an anchor into a file that is not Markdown"));
        return;
    }
    let text = fs::read_to_string(&file).unwrap_or_default();
    if !anchors(&text).iter().any(|a| a == anchor) {
        let have = anchors(&text).join(", ");
        errors.push(format!("{shown}:{line}: `{target}`: no heading makes #{anchor} (anchors: {have})"));
    }
}

#[test]
fn every_relative_markdown_link_resolves_to_a_file_and_heading() {
    let root = root();
    let mut markdown = Vec::new();
    files(&root, "md", &mut markdown);
    assert!(
        markdown.iter().any(|p| p.ends_with("docs/README.md")),
        "docs/README.md not found under {}",
        root.display()
    );
    let mut errors = Vec::new();
    let mut checked = 0;
    for file in &markdown {
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let base = file.parent().expect("a file has a folder");
        for (line, prose) in prose_lines(&text) {
            for target in targets(prose) {
                if target.is_empty() || is_external(&target) {
                    continue;
                }
                check(&root, file, base, line, &target, &mut errors);
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} links found: is the scan broken?");
    assert!(errors.is_empty(), "{} broken links:\n{}", errors.len(), errors.join("\n"));
}

#[test]
fn every_docs_page_named_in_rust_sources_exists() {
    let root = root();
    let mut sources = Vec::new();
    files(&root, "rs", &mut sources);
    let mut errors = Vec::new();
    for file in sources.iter().filter(|f| !f.ends_with("tests/tests/docs_links.rs")) {
        let Ok(text) = fs::read_to_string(file) else { continue };
        for (i, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("docs/") {
                let before = rest[..at].chars().next_back();
                rest = &rest[at + "docs/".len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-') {
                    continue;
                }
                let name_len =
                    rest.find(|c: char| !(c.is_ascii_alphanumeric() || "_-.".contains(c))).unwrap_or(rest.len());
                let Some(md) = rest[..name_len].find(".md") else { continue };
                let page = &rest[..md + ".md".len()];
                let after = &rest[page.len()..];
                if after.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                    continue;
                }
                let anchor = after
                    .strip_prefix('#')
                    .map(|a| a.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_')).next().unwrap_or(""));
                let target = match anchor {
                    Some(a) => format!("docs/{page}#{a}"),
                    None => format!("docs/{page}"),
                };
                check(&root, file, &root, i + 1, &target, &mut errors);
            }
        }
    }
    assert!(errors.is_empty(), "{} broken references:\n{}", errors.len(), errors.join("\n"));
}

#[test]
fn slugs_and_scans_follow_github() {
    assert_eq!(slug("Readiness: `/readyz`"), "readiness-readyz");
    assert_eq!(slug("One component: `/readyz/<name>`"), "one-component-readyzname");
    assert_eq!(slug("The `diagd debug` command"), "the-diagd-debug-command");
    assert_eq!(slug("Capacity, label text and overflow"), "capacity-label-text-and-overflow");
    assert_eq!(slug("Limits and their defaults"), "limits-and-their-defaults");
    assert_eq!(slug("See [the rule](states.md#x) here"), "see-the-rule-here");
    assert_eq!(slug("snake_case and Ünïcode"), "snake_case-and-ünïcode");
    assert_eq!(anchors("# A\n## A\n```\n# not a heading\n```\n### A #\n"), ["a", "a-1", "a-2"]);
    assert_eq!(targets("[a](b.md#c) and [d](<e f.md>) `[x](no.md)` [g](h.md \"title\")"), ["b.md#c", "e f.md", "h.md"]);
    assert_eq!(targets("[ref]: ../SECURITY.md#the-drain"), ["../SECURITY.md#the-drain"]);
    assert!(targets("[`Error::Full`] holding a [`NameError`]: `Empty`, `TooLong`").is_empty());
    assert_eq!(prose_lines("a\n```text\n[x](y)\n```\nb\n"), [(1, "a"), (5, "b")]);
    assert!(is_external("https://example.com/x") && is_external("mailto:a@b.c") && is_external("crate::http::Route"));
    assert!(!is_external("docs/states.md#shutdown") && !is_external("#local"));
    assert_eq!(normalize(Path::new("/r/a/../b/./c.md")), Path::new("/r/b/c.md"));
}

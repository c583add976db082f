//! Earlier runs on other CPUs, kept beside the current one.
//!
//! The same code can rank differently on another CPU (a 128-bit compare-and-swap, say, costs
//! far more on one vendor's cores than on the other's), so a run on a new CPU model does not
//! erase the last run on the previous one: before BENCHMARKS.md is rewritten, a file measured
//! on another model is moved to `benches/history/<date> <model>.md`, and every file there is
//! summed up (its targets and its measured times) at the end of the new BENCHMARKS.md.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where earlier runs are kept, relative to the workspace root.
pub const DIR: &str = "benches/history";

/// The CPU model and date a BENCHMARKS.md was measured on (its `- CPU:` line and the date
/// in its first paragraph).
pub fn machine_of(markdown: &str) -> Option<(String, String)> {
    let model = markdown.lines().find_map(|l| l.strip_prefix("- CPU: "))?;
    let model = model.split(" — ").next()?.trim().to_owned();
    let date = markdown.split_once("` (")?.1.split_once(')')?.0.to_owned();
    Some((model, date))
}

/// Moves `root/BENCHMARKS.md` into [`DIR`] when it was measured on a CPU other than `model`:
/// the path it was moved to, if it was.
///
/// # Errors
/// When the history directory or file cannot be written.
pub fn archive_if_other_cpu(root: &Path, model: &str) -> std::io::Result<Option<PathBuf>> {
    let Ok(previous) = std::fs::read_to_string(root.join("BENCHMARKS.md")) else { return Ok(None) };
    let Some((was, date)) = machine_of(&previous) else { return Ok(None) };
    if was == model {
        return Ok(None);
    }
    let dir = root.join(DIR);
    std::fs::create_dir_all(&dir)?;
    let name: String = format!("{} {was}", date.get(..10).unwrap_or(&date))
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    let path = dir.join(format!("{name}.md"));
    // The chart is the new run's (one file, rewritten): the archived text keeps its tables.
    let kept: String = previous.lines().filter(|l| !l.starts_with("![")).flat_map(|l| [l, "\n"]).collect();
    std::fs::write(&path, kept)?;
    Ok(Some(path))
}

/// The `## ` section of `markdown` titled `title`, without its heading.
fn section<'a>(markdown: &'a str, title: &str) -> Option<&'a str> {
    let start = markdown.find(&format!("\n## {title}"))? + 1;
    let body = &markdown[start..];
    let body = &body[body.find('\n')? + 1..];
    Some(body.find("\n## ").map_or(body, |end| &body[..end]).trim())
}

/// The closing section of BENCHMARKS.md: each file in `root/`[`DIR`], newest first, with its
/// machine, targets and measured times. Empty when there is none.
pub fn markdown(root: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(DIR))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "md")).collect()
        })
        .unwrap_or_default();
    files.sort();
    files.reverse();
    let mut s = String::new();
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Some((model, date)) = machine_of(&text) else { continue };
        if s.is_empty() {
            let _ = writeln!(
                s,
                "\n## Earlier runs on other CPUs\n\nKept as they were measured (`{DIR}/`); the \
                 figures above are this machine's.\n"
            );
        }
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = writeln!(s, "### {model}, {date} ([{DIR}/{file}]({DIR}/{}))\n", file.replace(' ', "%20"));
        for title in ["Targets", "Measured times"] {
            if let Some(body) = section(&text, title) {
                let _ = writeln!(s, "#### {title}\n\n{body}\n");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "# Benchmarks\n\nmeasured in one run of `cargo bench -p diag-benches` (2026-11-22 11:18 UTC). \
        This file\n\n## Machine\n\n- CPU: Intel(R) Xeon(R) Processor — `nproc` = 2\n\n## Targets\n\n| t | met |\n| a | yes |\n\n\
        ## Ratios\n\n![chart](BENCHMARKS.svg)\n\nr\n\n## Measured times (median per operation)\n\n| op | ns |\n";

    #[test]
    fn a_run_on_another_cpu_is_archived_and_summed_up() {
        let root = std::env::temp_dir().join(format!("diag-bench-history-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("BENCHMARKS.md"), OLD).unwrap();
        assert_eq!(machine_of(OLD), Some(("Intel(R) Xeon(R) Processor".into(), "2026-11-22 11:18 UTC".into())));

        assert_eq!(archive_if_other_cpu(&root, "Intel(R) Xeon(R) Processor").unwrap(), None, "same CPU: replaced");
        let moved = archive_if_other_cpu(&root, "AMD EPYC").unwrap().expect("another CPU: archived");
        assert!(moved.ends_with("benches/history/2026-11-22-Intel-R--Xeon-R--Processor.md"), "{}", moved.display());
        let summary = markdown(&root);
        assert!(summary.contains("### Intel(R) Xeon(R) Processor, 2026-11-22 11:18 UTC"), "{summary}");
        assert!(summary.contains("#### Targets\n\n| t | met |\n| a | yes |"), "{summary}");
        assert!(summary.contains("#### Measured times\n\n| op | ns |"), "{summary}");
        assert!(!summary.contains("Ratios"), "{summary}");
        assert!(!std::fs::read_to_string(&moved).unwrap().contains("BENCHMARKS.svg"), "the chart is not archived");
        std::fs::remove_dir_all(&root).unwrap();
    }
}

//! The Rust runner's table: per file and mode, passed / failed / skipped,
//! then the skips by reason and every failure.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::run::FileResult;

pub fn markdown(results: &[FileResult], modes: &[&str], seconds: f64) -> String {
    let mut out = String::from("| suite | file |");
    for m in modes {
        let _ = write!(out, " {m} (passed / failed / skipped) |");
    }
    out.push_str("\n|---|---|");
    for _ in modes {
        out.push_str("---:|");
    }
    out.push('\n');
    let mut keys: Vec<(&str, &str)> = results
        .iter()
        .map(|r| (r.suite.as_str(), r.name.as_str()))
        .collect();
    keys.dedup();
    for (suite, name) in &keys {
        let _ = write!(out, "| {suite} | {name} |");
        for m in modes {
            if let Some(r) = results
                .iter()
                .find(|r| r.suite == *suite && r.name == *name && r.mode == *m)
            {
                let _ = write!(out, " {} |", cell(r.passed, r.failed, skipped(r)));
            }
        }
        out.push('\n');
    }
    out.push_str("| **total** | |");
    for m in modes {
        let mine: Vec<&FileResult> = results.iter().filter(|r| r.mode == *m).collect();
        let passed = mine.iter().map(|r| r.passed).sum();
        let failed = mine.iter().map(|r| r.failed).sum();
        let skip = mine.iter().map(|r| skipped(r)).sum();
        let _ = write!(out, " **{}** |", cell(passed, failed, skip));
    }
    out.push('\n');
    for m in modes {
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for r in results.iter().filter(|r| r.mode == *m) {
            for (reason, n) in &r.skipped {
                *reasons.entry(reason.as_str()).or_insert(0) += n;
            }
        }
        let mut reasons: Vec<(&str, usize)> = reasons.into_iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let _ = writeln!(out, "\nSkipped in `{m}` mode, by reason:\n");
        for (reason, n) in reasons {
            let _ = writeln!(out, "- {n}: {reason}");
        }
    }
    let failures: Vec<String> = results
        .iter()
        .flat_map(|r| {
            r.failures.iter().map(move |(line, why)| {
                format!("- {} {}/{} line {line}: {why}", r.mode, r.suite, r.name)
            })
        })
        .collect();
    if failures.is_empty() {
        out.push_str("\nNo failures.\n");
    } else {
        let _ = writeln!(out, "\nFailures:\n\n{}", failures.join("\n"));
    }
    let _ = writeln!(out, "\n({seconds:.1} s)");
    out
}

fn skipped(r: &FileResult) -> usize {
    r.skipped.values().sum()
}

fn cell(passed: usize, failed: usize, skipped: usize) -> String {
    format!("{passed} / {failed} / {skipped}")
}

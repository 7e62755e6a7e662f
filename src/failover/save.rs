//! Where a series' reports go and how they are written: Markdown, compact JSON (operations
//! as rows: thousands of them in a series) and one SVG per run. Shared by `kbz failover`
//! and the console's Failover view.

use super::report;
use super::run::RunReport;
use std::path::{Path, PathBuf};

/// A series' name: its UTC start and the cluster (sorts by time in a listing).
pub fn series_id(cluster: &str) -> String {
    let stamp: String = crate::engine::logs::utc_now()
        .replace([':', '-'], "")
        .chars()
        .take(15)
        .collect();
    format!("{stamp}-{cluster}")
}

/// The default report file of a series, in the state dir.
pub fn default_report(state: &Path, series: &str) -> PathBuf {
    state.join("failover").join(series).join("report.md")
}

/// What was written.
pub struct Written {
    pub markdown: PathBuf,
    pub json: PathBuf,
    pub svgs: Vec<PathBuf>,
    /// The JSON document, for `--json`.
    pub document: serde_json::Value,
}

pub fn write(reports: &[RunReport], command: &str, md_path: &Path) -> Result<Written, String> {
    let fail = |p: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", p.display());
    if let Some(dir) = md_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(dir, &e))?;
    }
    std::fs::write(md_path, report::markdown(reports, command)).map_err(|e| fail(md_path, &e))?;
    let ops = |r: &RunReport| -> Vec<serde_json::Value> {
        r.ops
            .iter()
            .map(|o| {
                serde_json::json!([
                    o.id,
                    (o.start_ms * 10.0).round() / 10.0,
                    (o.end_ms * 10.0).round() / 10.0,
                    o.outcome,
                    o.node,
                    o.error
                ])
            })
            .collect()
    };
    let document = serde_json::json!({
        "command": command,
        "ops_columns": ["id", "start_ms", "end_ms", "outcome", "node", "error"],
        "runs": reports
            .iter()
            .map(|r| serde_json::json!({ "report": r, "ops": ops(r), "samples": r.samples }))
            .collect::<Vec<_>>(),
    });
    let json = md_path.with_extension("json");
    let text = serde_json::to_string(&document).map_err(|e| fail(&json, &e))?;
    std::fs::write(&json, text).map_err(|e| fail(&json, &e))?;
    let mut svgs = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        let path = if reports.len() == 1 {
            md_path.with_extension("svg")
        } else {
            md_path.with_extension(format!("run{}.svg", i + 1))
        };
        std::fs::write(&path, report::svg(r)).map_err(|e| fail(&path, &e))?;
        svgs.push(path);
    }
    Ok(Written {
        markdown: md_path.to_path_buf(),
        json,
        svgs,
        document,
    })
}

//! A run's report for people and for scripts: Markdown with every figure, the timeline and the
//! verdict; JSON with the same and every operation; an SVG timeline where the write gap and
//! the leader change are visible at a glance.

use super::run::RunReport;
use super::workload::Outcome;
use std::fmt::Write;

fn secs(ms: Option<f64>) -> String {
    ms.map_or_else(|| "—".into(), |v| format!("{:.2} s", v / 1000.0))
}

/// min / median / p95 / max of some values (nearest rank).
pub fn spread(values: &[f64]) -> Option<[f64; 4]> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| v[(((p * v.len() as f64).ceil() as usize).max(1) - 1).min(v.len() - 1)];
    Some([v[0], rank(0.5), rank(0.95), v[v.len() - 1]])
}

pub fn markdown(runs: &[RunReport], command: &str) -> String {
    let mut md = String::new();
    let Some(first) = runs.first() else {
        return md;
    };
    let _ = writeln!(
        md,
        "# Failover test: {} ({}), fault `{}`\n",
        first.cluster,
        first.technology,
        first.fault.name()
    );
    let _ = writeln!(
        md,
        "Command: `{command}`  \nStarted: {}\n",
        first.started_at
    );
    for r in runs {
        let _ = writeln!(md, "**Verdict (run {}):** {}\n", r.run, r.verdict);
    }
    if runs.len() > 1 {
        let _ = writeln!(md, "## Distribution over {} runs\n", runs.len());
        let _ = writeln!(
            md,
            "| figure | min | median | p95 | max |\n| --- | --- | --- | --- | --- |"
        );
        type Pick = fn(&RunReport) -> Option<f64>;
        let rows: [(&str, Pick); 5] = [
            ("detection", |r| r.measures.detection_ms),
            ("new leader", |r| r.measures.new_leader_ms),
            ("write gap", |r| Some(r.measures.write_gap_ms)),
            ("reintegration", |r| r.measures.reintegration_ms),
            ("lost acknowledged writes", |r| {
                Some(r.measures.lost.len() as f64 * 1000.0)
            }),
        ];
        for (name, pick) in rows {
            let vals: Vec<f64> = runs.iter().filter_map(pick).collect();
            match spread(&vals) {
                Some(s) if name.starts_with("lost") => {
                    let n: Vec<String> = s.iter().map(|v| format!("{}", v / 1000.0)).collect();
                    let _ = writeln!(md, "| {name} | {} |", n.join(" | "));
                }
                Some(s) => {
                    let n: Vec<String> = s.iter().map(|v| secs(Some(*v))).collect();
                    let _ = writeln!(
                        md,
                        "| {name} ({} of {} runs) | {} |",
                        vals.len(),
                        runs.len(),
                        n.join(" | ")
                    );
                }
                None => {
                    let _ = writeln!(md, "| {name} | — | — | — | — |");
                }
            }
        }
        md.push('\n');
    }
    for r in runs {
        let m = &r.measures;
        let _ = writeln!(md, "## Run {}\n", r.run);
        if let Some(b) = &r.before {
            let _ = writeln!(md, "Before: {}  ", b.summary());
        }
        if let Some(a) = &r.after {
            let _ = writeln!(md, "After: {}  ", a.summary());
        }
        let _ = writeln!(
            md,
            "Target: {} · fault `{}`{}\n",
            r.target.as_deref().unwrap_or("?"),
            r.fault.name(),
            if r.forced {
                " · forced past the preflight"
            } else {
                ""
            }
        );
        for w in &r.preflight {
            let _ = writeln!(
                md,
                "- Preflight: **{}**: {}. Fix: {}.",
                w.what, w.why, w.fix
            );
        }
        let _ = writeln!(md, "\n| figure | value |\n| --- | --- |");
        let rows = [
            (
                "detection (first sign the cluster noticed)",
                secs(m.detection_ms),
            ),
            (
                "new leader",
                match &m.new_leader {
                    Some(l) => format!("{l} after {}", secs(m.new_leader_ms)),
                    None => "none".into(),
                },
            ),
            (
                "write unavailability (largest gap between acknowledged writes)",
                secs(Some(m.write_gap_ms)),
            ),
            (
                "writes ok / fail / unknown",
                format!("{} / {} / {}", m.ok, m.fail, m.unknown),
            ),
            (
                "acknowledged writes lost",
                format!("{} {:?}", m.lost.len(), m.lost),
            ),
            ("unknown writes found after all", m.recovered.to_string()),
            (
                "writes found twice or more (at-least-once delivery, not losses)",
                m.duplicates.to_string(),
            ),
            (
                "ids found never attempted",
                format!("{}", m.unexpected.len()),
            ),
            (
                "acknowledged writes a member lacks (each member read on its own)",
                if m.missing_on.is_empty() {
                    "none".to_string()
                } else {
                    m.missing_on
                        .iter()
                        .map(|(h, ids)| format!("{h}: {}", ids.len()))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ),
            (
                "split brain (acknowledged by the old leader after the new was elected)",
                format!("{}", m.split_brain.len()),
            ),
            (
                "reintegration of the old leader (from the heal)",
                secs(m.reintegration_ms),
            ),
            (
                "old leader rejoined by",
                match (&r.rejoined_by, &r.restarted) {
                    (_, Some(why)) => format!("a restart by kbz (it stayed {why})"),
                    (Some(how), None) => how.clone(),
                    (None, None) => "—".into(),
                },
            ),
            (
                "read back from",
                r.read_back_from.clone().unwrap_or_else(|| "—".into()),
            ),
        ];
        for (k, v) in rows {
            let _ = writeln!(md, "| {k} | {v} |");
        }
        let _ = writeln!(md, "\n### Timeline\n\n| t | event |\n| --- | --- |");
        for e in &r.events {
            let _ = writeln!(md, "| {:.2} s | {} |", e.at_ms / 1000.0, e.what);
        }
        md.push('\n');
    }
    md
}

/// The timeline as an SVG: one tick per write (green ok, red fail, orange unknown), the
/// largest gap shaded, fault and heal as vertical lines, leader changes labelled.
pub fn svg(r: &RunReport) -> String {
    let end = r.ops.last().map_or(1000.0, |o| o.end_ms).max(1000.0);
    let (w, h, left, right) = (900.0, 200.0, 20.0, 20.0);
    let x = |ms: f64| left + (ms / end) * (w - left - right);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"##
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let m = &r.measures;
    let _ = writeln!(
        s,
        r##"<rect x="{:.1}" y="40" width="{:.1}" height="70" fill="#fde2e2"/><text x="{:.1}" y="125" fill="#b00">write gap {:.2} s</text>"##,
        x(m.write_gap_from_ms),
        (x(m.write_gap_from_ms + m.write_gap_ms) - x(m.write_gap_from_ms)).max(1.0),
        x(m.write_gap_from_ms),
        m.write_gap_ms / 1000.0
    );
    for o in &r.ops {
        let (colour, y) = match o.outcome {
            Outcome::Ok => ("#2a2", 50.0),
            Outcome::Fail => ("#d22", 75.0),
            Outcome::Unknown => ("#e90", 95.0),
        };
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{y}" y2="{1}" stroke="{colour}"/>"##,
            x(o.start_ms),
            y + 12.0
        );
    }
    let mut marks: Vec<(f64, String, &str)> = Vec::new();
    if let Some(t) = r.inject_ms {
        marks.push((
            t,
            format!("{} {}", r.fault.name(), r.target.as_deref().unwrap_or("")),
            "#000",
        ));
    }
    if let Some(t) = r.heal_ms {
        marks.push((t, "healed".into(), "#555"));
    }
    if let (Some(l), Some(t), Some(i)) = (&m.new_leader, m.new_leader_ms, r.inject_ms) {
        marks.push((i + t, format!("new leader {l}"), "#06c"));
    }
    for (i, (t, label, colour)) in marks.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="30" y2="140" stroke="{colour}" stroke-dasharray="4 2"/><text x="{1:.1}" y="{2}" fill="{colour}">{label}</text>"##,
            x(*t),
            x(*t) + 3.0,
            20 + 12 * (i % 2)
        );
    }
    // A time axis, a tick every 5 s.
    let _ = writeln!(
        s,
        r##"<line x1="{left}" x2="{:.1}" y1="145" y2="145" stroke="#999"/>"##,
        x(end)
    );
    let mut t = 0.0;
    while t <= end {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="142" y2="148" stroke="#999"/><text x="{0:.1}" y="158" fill="#777" font-size="9">{1}s</text>"##,
            x(t),
            t / 1000.0
        );
        t += 5000.0;
    }
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="172">ok (green) · fail (red) · unknown (orange) · {:.1} s shown</text>"##,
        end / 1000.0
    );
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="192" font-weight="bold">{}</text>"##,
        escape(&r.verdict)
    );
    s.push_str("</svg>\n");
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_nearest_rank() {
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[5.0]), Some([5.0; 4]));
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(spread(&v), Some([1.0, 5.0, 10.0, 10.0]));
    }

    fn run() -> RunReport {
        use super::super::fault::FaultKind;
        use super::super::measure::Measures;
        use super::super::workload::Op;
        let op = |id: u64, at: f64, outcome: Outcome| Op {
            id,
            start_ms: at,
            end_ms: at + 1.0,
            outcome,
            node: Some("redis-01".into()),
            error: None,
        };
        RunReport {
            run: "r-1".into(),
            cluster: "redis".into(),
            technology: "redis".into(),
            fault: FaultKind::Kill,
            target: Some("redis-01".into()),
            started_at: "2026-11-28T19:00:00Z".into(),
            before: None,
            after: None,
            preflight: vec![],
            forced: false,
            inject_ms: Some(3000.0),
            heal_ms: Some(9000.0),
            events: vec![],
            measures: Measures {
                new_leader: Some("redis-02".into()),
                new_leader_ms: Some(4400.0),
                write_gap_ms: 4300.0,
                write_gap_from_ms: 3000.0,
                ..Default::default()
            },
            read_back_from: Some("redis-02".into()),
            rejoined_by: None,
            restarted: None,
            verdict: "failed over from redis-01 to redis-02 in 4.4 s; <ok>".into(),
            error: None,
            ops: vec![
                op(1, 0.0, Outcome::Ok),
                op(2, 3100.0, Outcome::Fail),
                op(3, 12000.0, Outcome::Ok),
            ],
            samples: vec![],
            completed: true,
        }
    }

    #[test]
    fn the_timeline_shows_the_gap_the_fault_and_the_new_leader() {
        let svg = svg(&run());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("write gap 4.30 s"));
        assert!(svg.contains(">kill redis-01</text>"));
        assert!(svg.contains(">new leader redis-02</text>"));
        assert!(svg.contains("&lt;ok&gt;"), "the verdict is escaped");
        assert_eq!(
            svg.matches("stroke=\"#d22\"").count(),
            1,
            "one failed write"
        );
        assert!(svg.contains(">10s</text>"), "the time axis");
    }

    #[test]
    fn the_markdown_has_the_verdict_the_figures_and_the_distribution() {
        let mut second = run();
        second.run = "r-2".into();
        second.measures.new_leader_ms = Some(5000.0);
        let md = markdown(&[run(), second], "kbz failover redis --runs 2");
        assert!(md.contains("**Verdict (run r-1):** failed over"));
        assert!(
            md.contains("| new leader | redis-02 after 4.40 s |"),
            "{md}"
        );
        assert!(
            md.contains("| new leader (2 of 2 runs) | 4.40 s | 4.40 s | 5.00 s | 5.00 s |"),
            "{md}"
        );
        assert!(md.contains("Command: `kbz failover redis --runs 2`"));
    }
}

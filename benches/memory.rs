//! Memory per million buffered log lines: 100 hosts' rings filled to 10,000 lines of a
//! typical 120-character journal line, measured as the process's resident size before and
//! after. `cargo bench --bench memory`

use keybuzz_console::engine::logs::LogEvent;
use keybuzz_console::tui::{LOG_CAPACITY, LogPane};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

fn main() {
    let hosts: Vec<String> = (0..100).map(|i| format!("host-{i:03}")).collect();
    let total = hosts.len() * LOG_CAPACITY;
    let before = rss_bytes();
    let mut pane = LogPane::new(&hosts, "journal");
    for i in 0..total {
        let line = format!(
            "2026-11-28T12:00:{:02}.{:03}Z postgres[4242]: checkpoint complete: wrote {i} buffers (0.1%); sync files=3, longest=0.001 s",
            i / 1000 % 60,
            i % 1000
        );
        pane.on_event(i % hosts.len(), LogEvent::Line(line));
    }
    let after = rss_bytes();
    let text: usize = 120;
    let per_line = (after - before) as f64 / total as f64;
    println!(
        "{total} lines buffered ({} hosts x {LOG_CAPACITY}), ~{text} bytes of text each: {:.0} MB resident, {:.0} bytes per line, {:.0} MB per million lines",
        hosts.len(),
        (after - before) as f64 / 1e6,
        per_line,
        per_line * 1e6 / 1e6
    );
    assert_eq!(pane.lines(), total);
}

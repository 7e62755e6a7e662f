//! Host basics, for every host whatever it runs: load, memory, disk use, failed systemd units,
//! clock offset. One small command; the clock offset is the host's `date` against the middle
//! of the round trip here, so it is known within half that round trip.

use super::{Severity, Warning};
use crate::ssh::{Pool, Target};
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Sections of the command's output, in order. `date` comes first, so that the offset's
/// uncertainty is the channel's set-up rather than the whole command.
pub const COMMAND: &str = "date +%s.%N; echo ::kbz-section; cat /proc/loadavg; nproc; \
     echo ::kbz-section; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; \
     echo ::kbz-section; df -P -k / /var/lib 2>/dev/null; \
     echo ::kbz-section; systemctl list-units --state=failed --plain --no-legend --no-pager 2>/dev/null; \
     echo ::kbz-section; timedatectl show -p NTPSynchronized --value 2>/dev/null";

/// A clock further off than this breaks TLS, Sentinel (TILT on jumps), log correlation.
const CLOCK_WARN_MS: f64 = 500.0;
const DISK_WARN: u8 = 85;
/// etcd, PostgreSQL and Redis stop or corrupt when their disk fills.
const DISK_CRITICAL: u8 = 95;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostBasics {
    pub load1: f64,
    pub cpus: u32,
    pub mem_used_pct: u8,
    /// (mount point, percent used) of `/` and `/var/lib` (where the services keep data).
    pub disks: Vec<(String, u8)>,
    pub failed_units: Vec<String>,
    /// The host's clock minus ours, in ms; `clock_error_ms` is how far that can be off.
    pub clock_offset_ms: f64,
    pub clock_error_ms: f64,
    /// What timedatectl says of NTP, when it says.
    pub ntp_synchronized: Option<bool>,
}

fn since_epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Parses the command's output; `sent` and `received` are our clock around the command.
pub fn parse(text: &str, sent: SystemTime, received: SystemTime) -> Result<HostBasics, String> {
    let s: Vec<&str> = text.split("::kbz-section").map(str::trim).collect();
    let get = |i: usize| s.get(i).copied().unwrap_or("");
    let remote: f64 = get(0).parse().map_err(|_| format!("date: {:?}", get(0)))?;
    let (a, b) = (since_epoch(sent), since_epoch(received));
    let mid = (a + b) / 2.0;
    let mut load = get(1).lines();
    let load1 = load
        .next()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("loadavg: {:?}", get(1)))?;
    let cpus = load.next().and_then(|v| v.trim().parse().ok()).unwrap_or(1);
    let kb = |key: &str| {
        get(2)
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let mem_used_pct = match (kb("MemTotal:"), kb("MemAvailable:")) {
        (Some(t), Some(a)) if t > 0 => (100 - a.min(t) * 100 / t) as u8,
        _ => return Err(format!("meminfo: {:?}", get(2))),
    };
    let mut disks: Vec<(String, u8)> = Vec::new();
    for l in get(3).lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let [_, _, _, _, pct, mount] = f[..]
            && let Ok(p) = pct.trim_end_matches('%').parse::<u8>()
            && !disks.iter().any(|(m, _)| m == mount)
        {
            disks.push((mount.to_string(), p));
        }
    }
    let failed_units = get(4)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    let ntp_synchronized = match get(5) {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    };
    Ok(HostBasics {
        load1,
        cpus,
        mem_used_pct,
        disks,
        failed_units,
        clock_offset_ms: (remote - mid) * 1000.0,
        clock_error_ms: (b - a) * 1000.0 / 2.0,
        ntp_synchronized,
    })
}

impl HostBasics {
    /// "load 0.12/2 · mem 23% · disk 41%": what a tile has room for.
    pub fn summary(&self) -> String {
        let disk = self.disks.iter().map(|(_, p)| *p).max().unwrap_or(0);
        format!("ld {:.1} mem {}% dk {disk}%", self.load1, self.mem_used_pct)
    }

    /// The clock offset, if it is certainly beyond the limit.
    pub fn clock_off(&self) -> Option<f64> {
        (self.clock_offset_ms.abs() - self.clock_error_ms > CLOCK_WARN_MS)
            .then_some(self.clock_offset_ms)
    }

    pub fn warnings(&self, host: &str) -> Vec<Warning> {
        let mut w = Vec::new();
        for (mount, pct) in &self.disks {
            if *pct >= DISK_WARN {
                w.push(Warning {
                    severity: if *pct >= DISK_CRITICAL {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    what: format!("{host}: {mount} is {pct}% full"),
                    why: "etcd, PostgreSQL and Redis stop (or refuse writes) when their disk fills"
                        .into(),
                    fix: format!(
                        "free space on {host} (`du -xh {mount} | sort -h | tail`), or grow the disk"
                    ),
                });
            }
        }
        if !self.failed_units.is_empty() {
            w.push(Warning {
                severity: Severity::Warning,
                what: format!(
                    "{host}: failed unit{} {}",
                    if self.failed_units.len() == 1 {
                        ""
                    } else {
                        "s"
                    },
                    self.failed_units.join(", ")
                ),
                why: "a service that should run does not".into(),
                fix: format!(
                    "on {host}: systemctl status {0}; journalctl -u {0} says why",
                    self.failed_units[0]
                ),
            });
        }
        if let Some(off) = self.clock_off() {
            w.push(Warning {
                severity: Severity::Warning,
                what: format!("{host}: clock {:+.1} s off", off / 1000.0),
                why: "Sentinel enters TILT on clock jumps, leases and TLS need agreeing clocks, and logs no longer line up".into(),
                fix: format!(
                    "enable time sync on {host} (systemctl enable --now systemd-timesyncd or chrony){}",
                    if self.ntp_synchronized == Some(false) { "; timedatectl says it is not synchronized" } else { "" }
                ),
            });
        }
        w
    }
}

/// Runs the command on one host.
pub async fn probe(pool: &Pool, target: &Target) -> Result<HostBasics, String> {
    // A frozen host must not hold `kbz doctor` for a whole connect timeout and more.
    tokio::time::timeout(Duration::from_secs(5), probe_inner(pool, target))
        .await
        .unwrap_or_else(|_| Err(format!("{}: no answer within 5 s", target.alias)))
}

async fn probe_inner(pool: &Pool, target: &Target) -> Result<HostBasics, String> {
    // Connected first: the clock's uncertainty is one command's round trip, not a handshake.
    pool.connection(target)
        .await
        .map_err(|s| s.explain(&target.alias))?;
    let sent = SystemTime::now();
    let out = pool
        .probe_stdout(
            target,
            COMMAND.into(),
            Duration::from_secs(8),
            "host basics",
        )
        .await?;
    parse(&out, sent, SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    fn at(secs: f64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs_f64(secs)
    }

    #[test]
    fn parses_a_captured_host() {
        let text = fixture("host/basics-db-master-01.txt");
        let remote: f64 = text.lines().next().unwrap().parse().unwrap();
        let b = parse(&text, at(remote - 0.010), at(remote + 0.010)).unwrap();
        assert!(b.clock_offset_ms.abs() < 0.01, "{b:?}");
        assert!((b.clock_error_ms - 10.0).abs() < 0.01);
        assert!(b.cpus >= 1);
        assert!(b.mem_used_pct > 0 && b.mem_used_pct < 100);
        assert_eq!(b.disks.first().map(|d| d.0.as_str()), Some("/"));
        assert!(b.failed_units.is_empty());
        assert!(b.warnings("db-master-01").is_empty());
        assert!(b.summary().starts_with("ld "), "{}", b.summary());
    }

    #[test]
    fn a_failed_unit_a_full_disk_and_a_clock_off_are_named() {
        let text = fixture("host/basics-failed-unit.txt");
        let remote: f64 = text.lines().next().unwrap().parse().unwrap();
        // Our clock 3 s behind the host's, with a 20 ms round trip.
        let b = parse(
            // Whatever the capture's disk use was, `/` at 97%.
            &regex::Regex::new(r"\d+% /\n")
                .unwrap()
                .replace_all(&text, "97% /\n"),
            at(remote - 3.010),
            at(remote - 2.990),
        )
        .unwrap();
        assert_eq!(b.failed_units, vec!["kbz-broken.service".to_string()]);
        let w = b.warnings("redis-03");
        let whats: Vec<&str> = w.iter().map(|w| w.what.as_str()).collect();
        assert!(
            whats.contains(&"redis-03: failed unit kbz-broken.service"),
            "{whats:?}"
        );
        assert!(whats.contains(&"redis-03: clock +3.0 s off"), "{whats:?}");
        let full: Vec<&Warning> = w.iter().filter(|w| w.what.contains("full")).collect();
        assert_eq!(full.len(), 1, "{whats:?}");
        assert_eq!(full[0].severity, Severity::Critical);
    }

    #[test]
    fn a_clock_within_the_round_trip_is_not_called_off() {
        let text = fixture("host/basics-db-master-01.txt");
        let remote: f64 = text.lines().next().unwrap().parse().unwrap();
        // 0.6 s apparent offset, but the round trip took 1 s: it cannot be told apart.
        let b = parse(&text, at(remote - 1.1), at(remote - 0.1)).unwrap();
        assert!(b.clock_off().is_none(), "{b:?}");
    }

    #[test]
    fn garbage_is_an_error_not_a_zero() {
        assert!(parse("hello", at(0.0), at(0.0)).is_err());
    }
}

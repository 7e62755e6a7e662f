//! The lab's network: one bridge with a private /24 nobody else uses, and per host a veth
//! pair whose names kbz chooses (with `--network-bridge`, nspawn would shorten long host names
//! into hashed interface names, which a "cut" or a clean-up could not find again). No NAT, no gateway: lab hosts
//! can reach each other and this machine, nothing else.

use super::sys;
use std::net::Ipv4Addr;

pub const BRIDGE: &str = "kbzbr0";

/// Host-side and container-side interface names of the host at `octet`.
pub fn veth_names(octet: u8) -> (String, String) {
    (format!("kbzv{octet}"), format!("kbzc{octet}"))
}

/// The lab's /24 (network address): the first candidate that no route or address of this
/// machine overlaps.
pub fn choose_subnet() -> Result<Ipv4Addr, String> {
    let routes = sys::run("ip", &["-4", "route", "show", "table", "all"])?;
    let addrs = sys::run("ip", &["-4", "-o", "addr", "show"])?;
    let taken = taken_prefixes(&routes, &addrs);
    (203..=250u8)
        .map(|b| Ipv4Addr::new(10, b, 0, 0))
        .find(|net| !taken.iter().any(|(p, len)| overlaps(*net, 24, *p, *len)))
        .ok_or_else(|| "no free 10.x.0.0/24 between 10.203 and 10.250 on this machine".into())
}

/// Prefixes in `ip route` and `ip addr` output (a route without a length is a /32). The
/// default route is not a claim on an address range.
fn taken_prefixes(routes: &str, addrs: &str) -> Vec<(Ipv4Addr, u8)> {
    let from_routes = routes.lines().filter_map(|l| {
        let mut words = l.split_whitespace();
        let mut first = words.next()?;
        if matches!(first, "local" | "broadcast" | "unicast" | "multicast") {
            first = words.next()?;
        }
        parse_prefix(first)
    });
    let from_addrs = addrs.lines().filter_map(|l| {
        let mut words = l.split_whitespace();
        words.find(|w| *w == "inet")?;
        parse_prefix(words.next()?)
    });
    from_routes.chain(from_addrs).collect()
}

fn parse_prefix(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, len.parse().ok()?),
        None => (s, 32),
    };
    Some((ip.parse().ok()?, len))
}

fn overlaps(a: Ipv4Addr, alen: u8, b: Ipv4Addr, blen: u8) -> bool {
    let len = alen.min(blen).min(32);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(a) & mask) == (u32::from(b) & mask)
}

pub fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// The state directory of the lab that owns the bridge (kept in the bridge's alias, so it
/// vanishes with the bridge), if any.
pub fn bridge_owner() -> Option<std::path::PathBuf> {
    let alias = std::fs::read_to_string(format!("/sys/class/net/{BRIDGE}/ifalias")).ok()?;
    let alias = alias.trim();
    (!alias.is_empty()).then(|| std::path::PathBuf::from(alias))
}

/// Creates the bridge with the lab's first address, unless it is already there.
pub fn bridge_up(net: Ipv4Addr, owner: &std::path::Path) -> Result<(), String> {
    let o = net.octets();
    let addr = format!("{}.{}.{}.1/24", o[0], o[1], o[2]);
    if !link_exists(BRIDGE) {
        sys::run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
    }
    let have = sys::run("ip", &["-4", "-o", "addr", "show", "dev", BRIDGE])?;
    if !have.contains(&addr) {
        sys::run("ip", &["addr", "add", &addr, "dev", BRIDGE])?;
    }
    sys::run("ip", &["link", "set", BRIDGE, "up"])?;
    sys::run(
        "ip",
        &["link", "set", BRIDGE, "alias", &owner.to_string_lossy()],
    )?;
    // No IPv6 on the lab: link-local chatter would be traffic nobody asked for.
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{BRIDGE}/disable_ipv6"),
        "1",
    );
    Ok(())
}

/// Removes a host's veth pair left by an earlier run ("File exists" otherwise).
pub fn clear_veth(octet: u8) {
    let (outside, inside) = veth_names(octet);
    for link in [outside, inside] {
        if link_exists(&link) {
            delete_link(&link);
        }
    }
}

/// nspawn creates the host's veth pair (`--network-veth-extra`, which needs no udev, unlike
/// `--network-interface`) but does not bridge it: wait for the host side, then plug it in.
pub fn attach(octet: u8) -> Result<(), String> {
    let (outside, _) = veth_names(octet);
    if !super::sys::wait_until(std::time::Duration::from_secs(15), || link_exists(&outside)) {
        return Err(format!("interface {outside} did not appear within 15 s"));
    }
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{outside}/disable_ipv6"),
        "1",
    );
    sys::run("ip", &["link", "set", &outside, "master", BRIDGE, "up"])?;
    Ok(())
}

/// Cable pulled (`false`) or plugged back (`true`), from outside the host.
pub fn set_link(octet: u8, up: bool) -> Result<(), String> {
    let (outside, _) = veth_names(octet);
    sys::run(
        "ip",
        &["link", "set", &outside, if up { "up" } else { "down" }],
    )?;
    Ok(())
}

/// True when the host's cable is plugged in (the host side of its veth is administratively up).
pub fn link_is_up(octet: u8) -> bool {
    let (outside, _) = veth_names(octet);
    std::fs::read_to_string(format!("/sys/class/net/{outside}/flags"))
        .ok()
        .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|flags| flags & 1 == 1)
}

/// Every interface the lab made (by our naming), the bridge last.
pub fn lab_links() -> Vec<String> {
    let mut links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("kbzv") || n.starts_with("kbzc"))
                .collect()
        })
        .unwrap_or_default();
    links.sort();
    if link_exists(BRIDGE) {
        links.push(BRIDGE.to_string());
    }
    links
}

pub fn delete_link(name: &str) {
    sys::run_quiet("ip", &["link", "del", name]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_taken_prefixes() {
        let routes = "default via 192.0.2.1 dev eth0\n192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.5\n\
                      local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1\n10.203.0.0/16 via 192.0.2.9 dev eth0\n";
        let addrs = "2: eth0    inet 192.0.2.5/24 brd 192.0.2.255 scope global eth0\\       valid_lft forever\n";
        let taken = taken_prefixes(routes, addrs);
        assert!(taken.contains(&(Ipv4Addr::new(10, 203, 0, 0), 16)));
        assert!(taken.contains(&(Ipv4Addr::new(127, 0, 0, 1), 32)));
        assert!(taken.contains(&(Ipv4Addr::new(192, 0, 2, 5), 24)));
        assert!(
            !taken.iter().any(|(p, _)| p.is_unspecified()),
            "default is not a claim"
        );
        assert!(overlaps(
            Ipv4Addr::new(10, 203, 0, 0),
            24,
            Ipv4Addr::new(10, 203, 0, 0),
            16
        ));
        assert!(!overlaps(
            Ipv4Addr::new(10, 204, 0, 0),
            24,
            Ipv4Addr::new(10, 203, 0, 0),
            16
        ));
    }

    #[test]
    fn interface_names_fit_the_kernel_limit() {
        let (a, b) = veth_names(254);
        assert!(a.len() <= 15 && b.len() <= 15);
        assert_ne!(a, b);
    }
}

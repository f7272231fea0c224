//! Checks that keep the run inside the namespace it was meant for: the TUN device must exist
//! already (opening a missing name would create a new device), and the kernel must route the
//! far end's address through it (else its SYN would leave by another interface).

use std::net::Ipv4Addr;

use anyhow::{bail, Context, Result};

/// `dev` is an existing TUN device here, and `to` is routed through it.
pub fn check(dev: &str, to: Ipv4Addr) -> Result<()> {
    let flags = std::fs::read_to_string(format!("/sys/class/net/{dev}/tun_flags")).ok();
    if flags.is_none() {
        bail!(
            "no TUN device {dev:?} in this network namespace: make it with scripts/setup.sh --netns NS --name {dev} \
             and run this inside NS (ip netns exec NS ...)"
        );
    }
    let table = std::fs::read_to_string("/proc/net/route").context("reading /proc/net/route")?;
    match route_dev(&table, to) {
        Some(via) if via == dev => Ok(()),
        Some(via) => bail!(
            "{to} is routed via {via}, not {dev}: pass --ip an address in {dev}'s subnet \
             (after scripts/setup.sh --addr 10.7.0.1/24, --ip 10.7.0.2)"
        ),
        None => bail!("no route to {to}: pass --ip an address in {dev}'s subnet (scripts/setup.sh --addr)"),
    }
}

/// The interface of the longest-prefix route to `to` in a /proc/net/route table (addresses
/// in hex, in the kernel's byte order, which is little-endian on the machines this runs on).
fn route_dev(table: &str, to: Ipv4Addr) -> Option<String> {
    let to = u32::from_le_bytes(to.octets());
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            (to & mask == dest).then(|| (mask.count_ones(), f[0].to_string()))
        })
        .max_by_key(|(bits, _)| *bits)
        .map(|(_, dev)| dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
ceil0\t0000070A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(route_dev(TABLE, Ipv4Addr::new(10, 7, 0, 2)).as_deref(), Some("ceil0"));
        assert_eq!(route_dev(TABLE, Ipv4Addr::new(10, 8, 0, 2)).as_deref(), Some("eth0"));
        assert_eq!(route_dev(&TABLE.replace("eth0\t00000000", "eth0\t0000000B"), Ipv4Addr::new(10, 8, 0, 2)), None);
    }
}

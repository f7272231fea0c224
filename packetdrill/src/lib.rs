//! synack as a packetdrill target. packetdrill loads this shared object with
//! `--so_filename=…/libsynack_packetdrill.so` and calls `packetdrill_interface_init`, which
//! fills in its `struct packetdrill_interface` (packetdrill's `packetdrill.h`): the socket
//! calls of a script become calls on synack's sans-I/O host, the script's packets go into the
//! host and the host's packets come back, and packetdrill's clock is virtual (see `world.rs`).
//!
//! `--so_flags` takes space- or comma-separated words:
//! - `insecure`: RFC 793's RST and SYN handling instead of RFC 5961's (the FreeBSD suite's
//!   `-insecure-` scripts);
//! - `keep_syn_fin`: take a SYN+FIN as a SYN instead of dropping it (FreeBSD's
//!   `net.inet.tcp.drop_synfin=0`, the `-dropping-disabled-` scripts);
//! - `trace`: print synack's trace (segments, states, drops and why) on stderr;
//! - `local_ip=A.B.C.D`: the stack's address (packetdrill's `--local_ip`, default
//!   192.168.0.1);
//! - `syn_backlog=N`: half-open connections a listener holds before SYN cookies (the host's
//!   `backlog`; a script sets it with `--so_flags=syn_backlog=N` on its first lines).
//!
//! Every entry point catches panics: a bug here fails the call (EIO), never packetdrill.

mod ffi;
mod preload;
pub mod sockets;
pub mod sockopt;
pub mod world;

use std::net::Ipv4Addr;

use synack::stack::HostConfig;

pub use ffi::packetdrill_interface_init;

/// The host packetdrill tests, configured from `--so_flags`.
pub fn host_config(flags: &str) -> Result<(HostConfig, bool), String> {
    let mut cfg = HostConfig { addr: Ipv4Addr::new(192, 168, 0, 1), ..Default::default() };
    let mut trace = false;
    for word in flags.split([' ', ',']).filter(|w| !w.is_empty()) {
        match word.split_once('=') {
            None if word == "insecure" => cfg.tcp.rfc793_rst_syn = true,
            None if word == "trace" => trace = true,
            None if word == "keep_syn_fin" => cfg.drop_syn_fin = false,
            Some(("local_ip", ip)) => {
                cfg.addr = ip.parse().map_err(|_| format!("local_ip={ip}: not an IPv4 address"))?;
            }
            Some(("syn_backlog", n)) => {
                cfg.backlog = n.parse().map_err(|_| format!("syn_backlog={n}: not a count"))?;
            }
            _ => {
                return Err(format!(
                    "unknown --so_flags word '{word}' (known: insecure, keep_syn_fin, trace, local_ip=A.B.C.D, syn_backlog=N)"
                ))
            }
        }
    }
    Ok((cfg, trace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        let (cfg, trace) = host_config("insecure, trace local_ip=10.0.0.1").unwrap();
        assert!(cfg.tcp.rfc793_rst_syn && trace);
        assert_eq!(cfg.addr, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(host_config("syn_backlog=1").unwrap().0.backlog, 1);
        assert!(host_config("syn_backlog=x").unwrap_err().contains("syn_backlog"));
        let (cfg, trace) = host_config("").unwrap();
        assert!(!cfg.tcp.rfc793_rst_syn && !trace);
        assert!(host_config("bogus").unwrap_err().contains("bogus"));
    }
}

//! Receive Packet Steering on a TUN device: which CPUs the kernel processes what we write on.
//!
//! Every packet written into a TUN runs the kernel's receive path inside the `write`; for an
//! ACK to a bulk sender that includes the sender's transmissions it releases, and they in turn
//! arm the sender's pacing timer on the same CPU. Measured receiving from Linux (BBR): that
//! work was ~30% of the event loop's time. With `rps_cpus` set on the device's receive queue
//! the kernel hands each written packet to a CPU of that mask and `write` returns at once, but
//! only if the loop runs elsewhere: on a CPU of the mask, the work comes back to it.

use std::io;

/// The CPUs in the device's `rps_cpus` mask (`/sys/class/net/DEV/queues/rx-0/rps_cpus`);
/// empty when RPS is off. The caller runs in the device's network namespace.
pub fn rps_cpus(dev: &str) -> io::Result<Vec<usize>> {
    let path = format!("/sys/class/net/{dev}/queues/rx-0/rps_cpus");
    let text = std::fs::read_to_string(&path)?;
    parse_mask(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: not a CPU mask")))
}

/// A sysfs CPU mask: hex digits in comma-separated groups of 32 bits, highest CPUs first
/// (`00000000,00000002` is CPU 1).
fn parse_mask(text: &str) -> Option<Vec<usize>> {
    let digits: Vec<u32> = text.trim().chars().filter(|&c| c != ',').map(|c| c.to_digit(16)).collect::<Option<_>>()?;
    let mut cpus = Vec::new();
    for (i, d) in digits.iter().rev().enumerate() {
        for bit in 0..4 {
            if d & (1 << bit) != 0 {
                cpus.push(i * 4 + bit);
            }
        }
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::parse_mask;

    #[test]
    fn masks_as_sysfs_prints_them() {
        assert_eq!(parse_mask("0\n"), Some(vec![]));
        assert_eq!(parse_mask("00000000\n"), Some(vec![]));
        assert_eq!(parse_mask("2\n"), Some(vec![1]));
        assert_eq!(parse_mask("00000003"), Some(vec![0, 1]));
        assert_eq!(parse_mask("00000001,00000010\n"), Some(vec![4, 32]));
        assert_eq!(parse_mask("f0"), Some(vec![4, 5, 6, 7]));
        assert_eq!(parse_mask("xyz"), None);
    }
}

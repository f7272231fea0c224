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

/// The CPUs of `allowed` outside a non-empty RPS `mask`, where the event loop should run; empty
/// (run anywhere) when the mask is empty (RPS off) or covers every allowed CPU.
pub fn outside_mask(allowed: &[usize], mask: &[usize]) -> Vec<usize> {
    if mask.is_empty() {
        return Vec::new();
    }
    allowed.iter().copied().filter(|cpu| !mask.contains(cpu)).collect()
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
    use super::{outside_mask, parse_mask};

    #[test]
    fn the_loop_goes_where_the_mask_is_not() {
        // setup.sh --rps on two CPUs: the loop on CPU0.
        assert_eq!(outside_mask(&[0, 1], &[1]), vec![0]);
        // A cpuset of 2-3 with every CPU but CPU2 in the mask.
        assert_eq!(outside_mask(&[2, 3], &[1, 3, 4]), vec![2]);
        assert_eq!(outside_mask(&[0, 1, 2, 3], &[2, 3]), vec![0, 1]);
        // RPS off, or nowhere left outside it: anywhere.
        assert_eq!(outside_mask(&[0, 1], &[]), Vec::<usize>::new());
        assert_eq!(outside_mask(&[0, 1], &[0, 1]), Vec::<usize>::new());
    }

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

//! Pinning threads to CPUs, and the cache probe: how long a cache line takes to go from one
//! CPU to the other and back, which tells whether the two CPUs share a cache right now.
//!
//! The 2-vCPU VMs this is measured on move between two placements: the vCPUs on cores that
//! share a cache (a round trip of ~57 ns) and on cores that do not (370–490 ns). Everything
//! that uses both CPUs runs 1.6–1.9× faster in the first, so a throughput is only comparable
//! with one measured at the same level.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// A round trip above this is "S" (separate caches), below it "F" (a shared one). The two
/// placements measure ~57 ns and 370–490 ns; 200 ns is 3.5× the first and under half the
/// second, so a noisy sample of either (a loaded machine adds tens of ns) lands on its side.
pub const SHARED_CACHE_MAX_NS: f64 = 200.0;

/// Pin the calling thread to `cpu`.
pub fn pin(cpu: usize, flag: &str) -> Result<()> {
    let mut set = CpuSet::new();
    let pinned =
        set.set(cpu).map_err(anyhow::Error::from).and_then(|()| Ok(sched_setaffinity(Pid::from_raw(0), &set)?));
    if let Err(e) = pinned {
        let usable = match sched_getaffinity(Pid::from_raw(0)) {
            Ok(allowed) => cpu_list((0..CpuSet::count()).filter(|&c| allowed.is_set(c).unwrap_or(false))),
            Err(_) => "unknown".to_string(),
        };
        bail!("cannot pin to CPU {cpu} ({e}); this process may use CPUs {usable}: pass {flag} one of them");
    }
    Ok(())
}

/// CPU numbers as a cpuset list prints them: "0-3,6,8-9".
fn cpu_list(cpus: impl IntoIterator<Item = usize>) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for c in cpus {
        match ranges.last_mut() {
            Some((_, hi)) if *hi + 1 == c => *hi = c,
            _ => ranges.push((c, c)),
        }
    }
    let text: Vec<String> =
        ranges.iter().map(|&(lo, hi)| if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") }).collect();
    text.join(",")
}

/// The line aligned to its own 128 bytes, so nothing else shares it (or its prefetched pair).
#[repr(align(128))]
struct Line(AtomicU32);

/// Median over `batches` of the mean round trip of `per_batch` ping-pongs, in ns. The median
/// keeps a batch in which the other thread was preempted (a loaded machine) from counting.
pub fn round_trip_ns(cpu: usize, peer_cpu: usize, batches: usize, per_batch: u32, timeout: Duration) -> Result<f64> {
    if cpu == peer_cpu {
        bail!("the cache probe needs two CPUs: --cpu and --peer-cpu are both {cpu}");
    }
    let line = Arc::new(Line(AtomicU32::new(0)));
    let abandon = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + timeout;
    let total = u32::try_from(batches).ok().and_then(|b| b.checked_mul(per_batch)).context("probe too long")?;
    let peer = {
        let (line, abandon) = (line.clone(), abandon.clone());
        std::thread::spawn(move || -> Result<()> {
            if let Err(e) = pin(peer_cpu, "--peer-cpu") {
                // The main thread would otherwise spin until the timeout for an answer.
                abandon.store(true, Ordering::Relaxed);
                return Err(e);
            }
            // Answer every odd value with the next even one.
            for i in 0..total {
                let want = 2 * i + 1;
                if !spin_until(&line.0, want, &abandon, deadline) {
                    return Ok(());
                }
                line.0.store(want + 1, Ordering::Release);
            }
            Ok(())
        })
    };
    let result = (|| -> Result<f64> {
        pin(cpu, "--cpu")?;
        let mut means = Vec::with_capacity(batches);
        let mut i = 0u32;
        for _ in 0..batches {
            let start = Instant::now();
            for _ in 0..per_batch {
                line.0.store(2 * i + 1, Ordering::Release);
                if !spin_until(&line.0, 2 * i + 2, &abandon, deadline) {
                    bail!("the cache probe got no answer from CPU {peer_cpu} within {timeout:?}");
                }
                i += 1;
            }
            means.push(start.elapsed().as_nanos() as f64 / f64::from(per_batch));
        }
        means.sort_by(f64::total_cmp);
        Ok(means[means.len() / 2])
    })();
    abandon.store(true, Ordering::Relaxed);
    match peer.join() {
        Ok(Ok(())) => result,
        Ok(Err(e)) => Err(e),
        Err(_) => bail!("the cache probe's peer thread panicked"),
    }
}

/// Spin until `line` holds `want`; false when abandoned or past the deadline (checked every
/// few thousand spins, so the clock costs nothing measurable).
fn spin_until(line: &AtomicU32, want: u32, abandon: &AtomicBool, deadline: Instant) -> bool {
    let mut spins = 0u32;
    while line.load(Ordering::Acquire) != want {
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(4096) && (abandon.load(Ordering::Relaxed) || Instant::now() > deadline) {
            return false;
        }
    }
    true
}

/// "F" (shared cache) or "S" (separate caches) for a round trip.
pub fn level(ns: f64) -> &'static str {
    if ns <= SHARED_CACHE_MAX_NS {
        "F"
    } else {
        "S"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_as_cpusets_print_them() {
        assert_eq!(cpu_list([0, 1]), "0-1");
        assert_eq!(cpu_list([2, 3]), "2-3");
        assert_eq!(cpu_list([0, 2, 3, 4, 7]), "0,2-4,7");
        assert_eq!(cpu_list([5]), "5");
        assert_eq!(cpu_list([]), "");
    }

    #[test]
    fn a_peer_that_cannot_pin_ends_the_probe_at_once() {
        // CPU_SETSIZE is past any CPU: the peer's pin fails; the probe must not spin for 20 s.
        let start = Instant::now();
        let r = round_trip_ns(0, CpuSet::count(), 3, 10, Duration::from_secs(20));
        let e = r.expect_err("no such CPU");
        assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
        assert!(format!("{e:#}").contains("--peer-cpu"), "{e:#}");
    }
}

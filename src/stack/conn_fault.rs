//! A fault on one connection: a seeded share of its outgoing segments never reaches the
//! device, so a learner can watch loss recovery on that connection without disturbing any
//! other (the device-wide `--faults` disturb them all). The connection believes each one was
//! sent, as it would if a router had dropped it; the tracer says it was dropped on purpose.

use super::{ConnId, Host};
use crate::device::faults::SplitMix64;

pub(super) struct DropFault {
    share: f64,
    rng: SplitMix64,
}

impl DropFault {
    /// Whether the next segment is dropped.
    pub(super) fn drops(&mut self) -> bool {
        self.rng.chance(self.share)
    }
}

impl Host {
    /// Drop `share` (0 to 1) of connection `id`'s outgoing segments from now on, decided by a
    /// generator seeded with `seed` (the same seed drops the same segments). `share` 0
    /// removes the fault. False when there is no such connection.
    pub fn set_drop_fault(&mut self, id: ConnId, share: f64, seed: u64) -> bool {
        let Some(entry) = self.conns.get_mut(&id) else { return false };
        let share = if share.is_finite() { share.clamp(0.0, 1.0) } else { 0.0 };
        entry.fault = (share > 0.0).then_some(DropFault { share, rng: SplitMix64(seed) });
        true
    }
}

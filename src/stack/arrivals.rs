//! Where each connection's input stands in the order the host received it, across
//! connections. An application serving many connections from many threads can then answer
//! requests in the order their bytes arrived rather than the order its threads happened to
//! run (two long-poll GETs for one Engine.IO session, a few milliseconds apart).

use std::collections::VecDeque;

use super::{ConnId, Host};

/// Arrivals remembered per connection: the request head an application has just read, with
/// a few pipelined pieces after it, is among them; older input is forgotten.
const KEPT: usize = 8;

/// One connection's recent arrivals of in-order input.
#[derive(Debug, Default)]
pub(super) struct ArrivalLog {
    /// (input offset just past the bytes, the host's arrival number), oldest first.
    recent: VecDeque<(u64, u64)>,
    /// Where the oldest kept arrival starts: what came before it is forgotten.
    floor: u64,
}

impl ArrivalLog {
    /// The connection's in-order input now reaches `total` bytes: if it grew, that growth is
    /// the host's next arrival (`last` is the host's latest arrival number).
    pub(super) fn note(&mut self, total: u64, last: &mut u64) {
        let end = self.recent.back().map_or(self.floor, |&(end, _)| end);
        if total <= end {
            return;
        }
        *last += 1;
        if self.recent.len() == KEPT {
            if let Some((end, _)) = self.recent.pop_front() {
                self.floor = end;
            }
        }
        self.recent.push_back((total, *last));
    }

    /// The arrival number of the byte at input offset `offset`; `None` if it has not
    /// arrived or is forgotten.
    pub(super) fn number_of(&self, offset: u64) -> Option<u64> {
        if offset < self.floor {
            return None;
        }
        self.recent.iter().find(|&&(end, _)| offset < end).map(|&(_, n)| n)
    }
}

impl Host {
    /// When byte `offset` of connection `id`'s input (counted from its first byte) became
    /// readable, as a number that grows with every arrival of data on any connection of
    /// this host: of two bytes, the one with the smaller number arrived first. `None` if the
    /// byte has not arrived, or arrived so many pieces ago that it is forgotten.
    pub fn arrival_number(&self, id: ConnId, offset: u64) -> Option<u64> {
        self.conns.get(&id)?.arrivals.number_of(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::{ArrivalLog, KEPT};

    #[test]
    fn each_byte_has_the_number_of_the_arrival_that_brought_it() {
        let (mut a, mut b, mut last) = (ArrivalLog::default(), ArrivalLog::default(), 0);
        a.note(5, &mut last);
        b.note(3, &mut last);
        // Nothing new (a segment with no data, or a duplicate): no arrival.
        a.note(5, &mut last);
        a.note(9, &mut last);
        assert_eq!(
            [a.number_of(0), a.number_of(4), a.number_of(5), a.number_of(8)],
            [Some(1), Some(1), Some(3), Some(3)]
        );
        assert_eq!(b.number_of(2), Some(2));
        assert_eq!(a.number_of(9), None, "not arrived yet");
    }

    #[test]
    fn old_arrivals_are_forgotten_not_misnumbered() {
        let (mut log, mut last) = (ArrivalLog::default(), 0);
        for i in 1..=(KEPT as u64 + 2) {
            log.note(10 * i, &mut last);
        }
        assert_eq!(log.number_of(0), None);
        assert_eq!(log.number_of(19), None);
        assert_eq!(log.number_of(20), Some(3));
        assert_eq!(log.number_of(10 * (KEPT as u64 + 2) - 1), Some(KEPT as u64 + 2));
    }
}

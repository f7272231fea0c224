//! Connections by four-tuple, with the last lookup remembered: a bulk transfer's packets all
//! name the same connection, and hashing a four-tuple with the keyed SipHash (which keeps an
//! attacker from choosing tuples that collide) cost the event loop 3% of its time per packet.

use std::cell::Cell;
use std::collections::HashMap;

use super::{ConnId, Quad};

#[derive(Default)]
pub(super) struct QuadTable {
    map: HashMap<Quad, ConnId>,
    last: Cell<Option<(Quad, ConnId)>>,
}

impl QuadTable {
    pub(super) fn get(&self, quad: &Quad) -> Option<ConnId> {
        if let Some((q, id)) = self.last.get() {
            if q == *quad {
                return Some(id);
            }
        }
        let id = self.map.get(quad).copied()?;
        self.last.set(Some((*quad, id)));
        Some(id)
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn contains_key(&self, quad: &Quad) -> bool {
        self.get(quad).is_some()
    }

    pub(super) fn insert(&mut self, quad: Quad, id: ConnId) {
        self.last.set(None);
        self.map.insert(quad, id);
    }

    pub(super) fn remove(&mut self, quad: &Quad) {
        self.last.set(None);
        self.map.remove(quad);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn quad(port: u16) -> Quad {
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 2), 80);
        Quad { local: a, remote: SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 1), port) }
    }

    #[test]
    fn the_remembered_lookup_never_outlives_a_change() {
        let mut t = QuadTable::default();
        t.insert(quad(1), 7);
        assert_eq!(t.get(&quad(1)), Some(7));
        assert_eq!(t.get(&quad(1)), Some(7), "from the remembered lookup");
        t.remove(&quad(1));
        assert_eq!(t.get(&quad(1)), None, "removal forgets it");
        t.insert(quad(1), 8);
        assert_eq!(t.get(&quad(1)), Some(8), "a reused four-tuple names the new connection");
        t.insert(quad(2), 9);
        assert_eq!(t.get(&quad(2)), Some(9));
        assert_eq!(t.get(&quad(1)), Some(8));
        assert!(!t.contains_key(&quad(3)));
    }
}

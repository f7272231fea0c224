//! What a connection tells the trace so that its numbers read as Wireshark shows them.

use crate::wire::SeqNum;

/// A connection's ISNs and window shifts: relative sequence numbers and scaled windows.
#[derive(Clone, Copy, Debug)]
pub struct SeqContext {
    pub iss: SeqNum,
    pub irs: SeqNum,
    /// Shift applied to windows the peer sends, and to windows we send.
    pub peer_shift: u8,
    pub our_shift: u8,
}

impl SeqContext {
    /// For a SYN arriving at a listener: its own sequence number is the peer's ISN.
    pub fn for_syn(seq: SeqNum) -> SeqContext {
        SeqContext { iss: SeqNum(0), irs: seq, peer_shift: 0, our_shift: 0 }
    }
}

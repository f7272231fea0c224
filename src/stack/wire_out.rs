//! Packets on their way out of the host: built from the connection's send buffer in one copy,
//! as a TSO super-packet (partial checksum, `gso_size`) when the device offloads and the
//! segment carries more than the MSS.

use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::time::Instant;

use super::Counters;
use crate::device::PacketMeta;
use crate::tcp::SeqContext;
use crate::trace::Tracer;
use crate::wire::tcp::PROTO_TCP;
use crate::wire::{ipv4, TcpFlags, TcpHeaderOut};

/// Packets on their way out, with buffers kept for reuse (no allocation per packet once
/// warm).
pub(super) struct Wire {
    pub(super) out: VecDeque<(Vec<u8>, PacketMeta)>,
    pub(super) spare: Vec<Vec<u8>>,
    pub(super) ids: super::ip_id::IpIds,
}

impl Wire {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit(
        &mut self,
        tracer: &mut Tracer,
        counters: &mut Counters,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        hdr: &TcpHeaderOut,
        payload_len: usize,
        fill: impl FnOnce(&mut Vec<u8>),
        ctx: Option<SeqContext>,
        tso_mss: Option<u32>,
    ) {
        let mut pkt = self.spare.pop().unwrap_or_default();
        let id = self.ids.next(*local.ip(), *remote.ip(), PROTO_TCP);
        // A segment carrying more than the MSS allows (RFC 6691: payload plus options) goes
        // to the device as a super-packet it cuts into segments of MSS less these options.
        let opt_len = hdr.options.encoded_len();
        let gso_size = match tso_mss {
            Some(mss) if payload_len + opt_len > mss as usize => mss.saturating_sub(opt_len as u32).max(1) as u16,
            _ => 0,
        };
        let meta = PacketMeta { gso_size, csum_partial: gso_size > 0, csum_trusted: false };
        ipv4::build_tcp_filled(local, remote, hdr, payload_len, id, gso_size > 0, &mut pkt, fill);
        tracer.segment_out(now, local, remote, hdr, payload_len, ctx, Some(&pkt));
        counters.super_segs_out += u64::from(gso_size > 0);
        counters.segs_out += 1;
        // Every segment leaves through here, so a RST from a connection (abort, a bad ACK in
        // SYN-RECEIVED) is counted with the stack's own answers to strays.
        counters.rst_sent += u64::from(hdr.flags.contains(TcpFlags::RST));
        self.out.push_back((pkt, meta));
    }
}

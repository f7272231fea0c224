//! The host's side of SYN cookies (the encoding is in `cookie.rs`): answering a SYN when the
//! listener's backlog, the connection table or the source's share of it is full, and making
//! the connection when a valid cookie comes back.

use std::time::Instant;

use super::{cookie, Host, Place, Quad};
use crate::tcp::Connection;
use crate::tcp::SeqContext;
use crate::wire::{DropReason, TcpFlags, TcpHeaderOut, TcpOptions, TcpSegment};

impl Host {
    /// No state for this SYN (a limit is reached): answer statelessly with a SYN cookie.
    pub(super) fn send_cookie(&mut self, now: Instant, syn: &TcpSegment<'_>) {
        let tcp = self.cfg.tcp;
        let (iss, mss) = self.cookies.make(now, syn.dst, syn.src, syn.seq, syn.options.mss.unwrap_or(536));
        let mut options = TcpOptions { mss: Some(mss.min(tcp.mss)), ..Default::default() };
        // The client's window scale and SACK-permitted survive only inside our timestamp;
        // without one, both are off for this connection.
        if let (true, Some((tsval, _))) = (tcp.timestamps, syn.options.timestamps) {
            let client_shift = syn.options.window_scale.filter(|_| tcp.window_scaling);
            let sack = syn.options.sack_permitted && tcp.sack;
            options.timestamps = Some((cookie::encode_ts(iss.0.rotate_left(13), client_shift, sack), tsval));
            options.window_scale = client_shift.map(|_| tcp.window_shift());
            options.sack_permitted = sack;
        }
        let hdr = TcpHeaderOut {
            seq: iss,
            ack: syn.seq + 1,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: tcp.recv_buf.min(65535) as u16,
            options,
        };
        self.counters.syn_cookies_sent += 1;
        self.tracer.note(
            now,
            format_args!("no room on port {} (backlog or table full): answering with a SYN cookie", syn.dst.port()),
        );
        self.emit(
            now,
            syn.dst,
            syn.src,
            &hdr,
            &[],
            Some(SeqContext { iss, irs: syn.seq, peer_shift: 0, our_shift: 0 }),
        );
    }

    /// An ACK for a listener with no connection: if it returns a valid SYN cookie, make the
    /// connection now.
    pub(super) fn accept_cookie(&mut self, now: Instant, seg: &TcpSegment<'_>) -> bool {
        let iss = seg.ack - 1;
        let Some(mss) = self.cookies.check(now, seg.dst, seg.src, seg.seq - 1, iss) else { return false };
        let port = seg.dst.port();
        let full = self.listeners.get(&port).is_none_or(|l| l.queue.len() >= l.accept_limit);
        // The peer has shown it receives what we send: it may take an idle connection's place.
        let refused = if full { Some(DropReason::AcceptQueueFull) } else { self.make_room(now, *seg.src.ip()) };
        if let Some(reason) = refused {
            // Dropped, not reset: the client retransmits and may fit later.
            self.count_drop(now, reason, None);
            return true;
        }
        let (client_shift, sack) = match seg.options.timestamps {
            Some((_, ecr)) => cookie::decode_ts(ecr),
            None => (None, false),
        };
        let mut conn = Connection::from_cookie(now, self.cfg.tcp, seg, iss, mss, client_shift, sack);
        conn.set_trace(self.tracer.wants_conn_events());
        let id = self.insert(now, conn, Place::Handshaking(port));
        self.counters.syn_cookies_accepted += 1;
        let quad = Quad { local: seg.dst, remote: seg.src };
        self.tracer.state(now, &quad, "LISTEN", "SYN-RECEIVED (from a SYN cookie)");
        if let Some(entry) = self.conns.get_mut(&id) {
            if let Err(reason) = entry.conn.on_segment(now, seg) {
                self.counters.count_drop(reason);
            }
            entry.arrivals.note(entry.conn.arrived_in_order(), &mut self.last_arrival);
        }
        self.dispatch(now, id);
        true
    }
}

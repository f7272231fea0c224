//! Record every packet both ways as it crosses the device: LINKTYPE_RAW (the TUN carries bare
//! IPv4), nanosecond timestamps. [`PcapTee`] writes the file; [`Pcap`] is the device wrapper
//! that feeds it.
//!
//! Capturing is on the data path of every packet, so a record costs one copy into memory: no
//! lock, no allocation, no system call per packet; [`CaptureFile`] writes the blocks from a
//! thread of its own. pcap-file writes the file header.
//!
//! The clock is read once per batch of packets (see [`Device::begin_batch`]) and again every
//! [`STAMP_EVERY`] records within one. A clock read per packet cost ~35 ns here, more than the
//! rest of a record's bookkeeping (1–2% of the loop's time when receiving); the packets of a
//! batch cross the device within a fraction of a millisecond of each other, and the stack
//! itself handles them all at one `now`.
//!
//! With offloads the capture shows super-packets as they cross the TUN (as tcpdump does on a
//! host with TSO/GRO): one IPv4 packet of up to 64 KiB with its true total length. A partial
//! checksum (the kernel's, or ours on a super-packet) is finished before it is recorded, so
//! Wireshark sees valid checksums; that costs one pass over the packet, only when capturing.

use std::io;
use std::os::fd::RawFd;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pcap_file::pcap::PcapHeader;
use pcap_file::{DataLink, Endianness, TsResolution};

use super::capture_file::CaptureFile;
use super::{vnet, Device, FaultCounts, OffloadCounts, PacketMeta};

/// The largest IPv4 packet; also what bounds a record in `CaptureFile`'s block.
const SNAPLEN: u32 = 65_535;
/// Records that share one clock reading at most (at ~1 µs a packet, ~30 µs apart).
const STAMP_EVERY: u32 = 32;

pub struct PcapTee {
    file: CaptureFile,
    packets: u64,
    /// The last clock reading (seconds, nanoseconds) and the records stamped with it; none
    /// at the start of a batch.
    stamp: Option<(u32, u32)>,
    stamped: u32,
}

impl PcapTee {
    pub fn create(path: &Path) -> io::Result<PcapTee> {
        let mut file = CaptureFile::create(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create capture {}: {e}", path.display())))?;
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::RAW,
            ts_resolution: TsResolution::NanoSecond,
            // Records below are written in native byte order, so the header says so too.
            endianness: Endianness::native(),
            ..Default::default()
        };
        let mut head = Vec::with_capacity(24);
        header.write_to(&mut head).map_err(|e| io::Error::other(e.to_string()))?;
        file.append(&[&head])?;
        Ok(PcapTee { file, packets: 0, stamp: None, stamped: 0 })
    }

    pub fn record(&mut self, packet: &[u8]) -> io::Result<()> {
        let (secs, nanos) = self.stamp();
        let caplen = packet.len().min(SNAPLEN as usize);
        // The classic pcap record header: seconds, nanoseconds, captured and original length.
        let mut rec = [0u8; 16];
        for (i, field) in [secs, nanos, caplen as u32, packet.len() as u32].iter().enumerate() {
            rec[i * 4..i * 4 + 4].copy_from_slice(&field.to_ne_bytes());
        }
        self.file.append(&[&rec, &packet[..caplen]])?;
        self.packets += 1;
        Ok(())
    }

    /// The time for the next record: the batch's clock reading, or a new one.
    fn stamp(&mut self) -> (u32, u32) {
        match self.stamp {
            Some(t) if self.stamped < STAMP_EVERY => {
                self.stamped += 1;
                t
            }
            _ => {
                let ts = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                let t = (ts.as_secs() as u32, ts.subsec_nanos());
                self.stamp = Some(t);
                self.stamped = 1;
                t
            }
        }
    }

    /// Records from here on read the clock afresh (see [`Device::begin_batch`]).
    pub fn begin_batch(&mut self) {
        self.stamp = None;
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }
}

/// A device wrapper that records every packet crossing it into a [`PcapTee`]: what it sends
/// to `D` and what it receives from `D`. Put it right above the TUN so the capture shows the
/// wire (outbound after any faults, inbound before them).
pub struct Pcap<D> {
    inner: D,
    tee: Option<PcapTee>,
    /// An outbound packet with a partial checksum, finished for the capture.
    scratch: Vec<u8>,
}

impl<D: Device> Pcap<D> {
    pub fn new(inner: D, tee: PcapTee) -> Pcap<D> {
        Pcap { inner, tee: Some(tee), scratch: Vec::new() }
    }

    /// Wrap `inner`, capturing to a new file at `path`.
    pub fn create(inner: D, path: &Path) -> io::Result<Pcap<D>> {
        Ok(Pcap::new(inner, PcapTee::create(path)?))
    }

    /// Packets recorded so far (0 once the capture has stopped on an error).
    pub fn packets(&self) -> u64 {
        self.tee.as_ref().map_or(0, PcapTee::packets)
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }

    fn record(&mut self, packet: &[u8]) {
        if let Some(tee) = &mut self.tee {
            if let Err(e) = tee.record(packet) {
                tracing::warn!("capture stopped: {e}");
                self.tee = None;
            }
        }
    }
}

impl<D: Device> Device for Pcap<D> {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.recv(buf)?;
        self.record(&buf[..n]);
        Ok(n)
    }

    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        self.record(packet);
        self.inner.send(packet)
    }

    fn recv_meta(&mut self, buf: &mut [u8]) -> io::Result<(usize, PacketMeta)> {
        let (n, mut meta) = self.inner.recv_meta(buf)?;
        if meta.csum_partial && self.tee.is_some() && vnet::complete_tcp_checksum(&mut buf[..n]) {
            // Finished in place: the stack's copy is then complete too (and still trusted).
            meta.csum_partial = false;
        }
        self.record(&buf[..n]);
        Ok((n, meta))
    }

    fn send_meta(&mut self, packet: &[u8], meta: PacketMeta) -> io::Result<()> {
        if meta.csum_partial && self.tee.is_some() {
            let mut copy = std::mem::take(&mut self.scratch);
            copy.clear();
            copy.extend_from_slice(packet);
            vnet::complete_tcp_checksum(&mut copy);
            self.record(&copy);
            self.scratch = copy;
        } else {
            self.record(packet);
        }
        self.inner.send_meta(packet, meta)
    }

    fn offloads(&self) -> bool {
        self.inner.offloads()
    }

    fn offload_counts(&self) -> Option<OffloadCounts> {
        self.inner.offload_counts()
    }

    fn fd(&self) -> RawFd {
        self.inner.fd()
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn poll_at(&self) -> Option<Instant> {
        self.inner.poll_at()
    }

    fn on_timer(&mut self, now: Instant) {
        self.inner.on_timer(now)
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(tee) = &mut self.tee {
            if let Err(e) = tee.flush() {
                // The file stops at the last good write; say so once and stop capturing.
                tracing::warn!("capture stopped: {e}");
                self.tee = None;
                return Err(e);
            }
        }
        self.inner.flush()
    }

    fn begin_batch(&mut self) {
        if let Some(tee) = &mut self.tee {
            tee.begin_batch();
        }
        self.inner.begin_batch()
    }

    fn fault_counts(&self) -> Option<FaultCounts> {
        self.inner.fault_counts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Pipe;

    #[test]
    fn records_both_directions_as_they_cross() {
        let path = std::env::temp_dir().join(format!("synack-pcap-unit-{}.pcap", std::process::id()));
        let (a, mut b) = Pipe::pair().unwrap();
        let mut dev = Pcap::create(a, &path).unwrap();
        dev.send(b"outbound packet").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(b.recv(&mut buf).unwrap(), 15);
        b.send(b"inbound").unwrap();
        assert_eq!(dev.recv(&mut buf).unwrap(), 7);
        assert_eq!(dev.recv(&mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert_eq!(dev.packets(), 2);
        dev.flush().unwrap();
        let data = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut reader = pcap_file::pcap::PcapReader::new(&data[..]).unwrap();
        assert_eq!(reader.header().datalink, DataLink::RAW);
        let first = reader.next_packet().unwrap().unwrap();
        assert_eq!(&first.data[..], b"outbound packet");
        let second = reader.next_packet().unwrap().unwrap();
        assert_eq!(&second.data[..], b"inbound");
        assert!(reader.next_packet().is_none());
    }

    #[test]
    fn a_batch_shares_one_clock_reading_and_the_next_batch_reads_it_again() {
        let path = std::env::temp_dir().join(format!("synack-pcap-stamps-{}.pcap", std::process::id()));
        let (a, _b) = Pipe::pair().unwrap();
        let mut dev = Pcap::create(a, &path).unwrap();
        let pause = || std::thread::sleep(std::time::Duration::from_millis(5));
        dev.begin_batch();
        dev.send(b"first").unwrap();
        pause();
        for _ in 1..STAMP_EVERY {
            dev.send(b"same batch").unwrap();
        }
        pause();
        dev.send(b"one past STAMP_EVERY").unwrap();
        pause();
        dev.begin_batch();
        dev.send(b"next batch").unwrap();
        dev.flush().unwrap();
        let data = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut reader = pcap_file::pcap::PcapReader::new(&data[..]).unwrap();
        let mut stamps = Vec::new();
        while let Some(p) = reader.next_packet() {
            stamps.push(p.unwrap().timestamp);
        }
        let n = STAMP_EVERY as usize;
        let ms = std::time::Duration::from_millis;
        assert_eq!(stamps.len(), n + 2);
        assert!(stamps[..n].iter().all(|&t| t == stamps[0]), "one reading for a batch's first records");
        assert!(stamps[n] >= stamps[0] + ms(10), "read again after STAMP_EVERY records");
        assert!(stamps[n + 1] >= stamps[n] + ms(5), "read again at the next batch");
    }
}

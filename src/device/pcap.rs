//! Record every packet both ways as it crosses the device: LINKTYPE_RAW (the TUN carries bare
//! IPv4), nanosecond timestamps, buffered so capturing does not halve throughput. [`PcapTee`]
//! writes the file; [`Pcap`] is the device wrapper that feeds it.
//!
//! With offloads the capture shows super-packets as they cross the TUN (as tcpdump does on a
//! host with TSO/GRO): one IPv4 packet of up to 64 KiB with its true total length. A partial
//! checksum (the kernel's, or ours on a super-packet) is finished before it is recorded, so
//! Wireshark sees valid checksums; that costs one pass over the packet, only when capturing.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use super::{vnet, Device, FaultCounts, OffloadCounts, PacketMeta};

const SNAPLEN: u32 = 262_144;

pub struct PcapTee {
    writer: PcapWriter<SharedFile>,
    file: SharedFile,
    packets: u64,
}

/// PcapWriter owns its writer and offers no way to flush it; sharing the BufWriter lets us
/// flush on demand (so a live capture can be opened while synack runs) and at exit.
#[derive(Clone)]
struct SharedFile(Arc<Mutex<BufWriter<File>>>);

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().map_err(|_| io::Error::other("capture writer poisoned"))?.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().map_err(|_| io::Error::other("capture writer poisoned"))?.flush()
    }
}

impl PcapTee {
    pub fn create(path: &Path) -> io::Result<PcapTee> {
        let file = File::create(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create capture {}: {e}", path.display())))?;
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::RAW,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::native(),
            ..Default::default()
        };
        let file = SharedFile(Arc::new(Mutex::new(BufWriter::with_capacity(1 << 20, file))));
        let writer = PcapWriter::with_header(file.clone(), header).map_err(to_io)?;
        Ok(PcapTee { writer, file, packets: 0 })
    }

    pub fn record(&mut self, packet: &[u8]) -> io::Result<()> {
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let caplen = packet.len().min(SNAPLEN as usize);
        let pkt = PcapPacket::new(ts, packet.len() as u32, &packet[..caplen]);
        self.writer.write_packet(&pkt).map_err(to_io)?;
        self.packets += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }
}

fn to_io(e: pcap_file::PcapError) -> io::Error {
    io::Error::other(e.to_string())
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
            tee.flush()?;
        }
        self.inner.flush()
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
}

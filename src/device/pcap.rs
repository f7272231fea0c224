//! Record every packet both ways as it crosses the device: LINKTYPE_RAW (the TUN carries bare
//! IPv4), nanosecond timestamps, buffered so capturing does not halve throughput.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

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

//! One Engine.IO session: its queue of outgoing packets, its heartbeat, the packets its
//! client sends (on either transport), and its end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use super::get_turn::GetSlot;
use super::packet::{decode_eio, encode_eio, EioType, Wire};
use super::watch::UpgradeWatch;
use super::{Config, DisconnectReason, EngineInner, MessageHandler, Payload, TRACE_TARGET};

/// The longest a request waits for an upgrade WebSocket's reader (the reference server's
/// upgrade timeout): only a reader stuck writing to a client that does not read takes it.
const UPGRADE_STUCK: Duration = Duration::from_secs(10);

pub(super) type CloseHandler = Box<dyn FnOnce(DisconnectReason) + Send>;

/// What the transports take from the queue.
pub(super) enum Outgoing {
    /// Packets that go out back to back.
    Packets(Vec<Wire>),
    /// End a waiting long-poll GET (with a NOOP if it has nothing else); a WebSocket
    /// ignores it.
    Flush,
    /// The session is over.
    Stop,
}

/// When the next ping is due, whether it was queued, and when it reached the client (a
/// waiting GET or the WebSocket took it). The session is over once a ping has been due for
/// `ping_timeout` with no pong since, or, if it reached the client later than due, that long
/// after it did: a pure function of the clock, so every thread that looks decides the same,
/// and a client that is not polling is not given more time than the protocol says.
pub(super) struct Heartbeat {
    pub next_ping: Instant,
    pub sent: bool,
    pub delivered: Option<Instant>,
}

impl Heartbeat {
    /// The ping is due and not queued yet: it is now.
    pub(super) fn take_due(&mut self, now: Instant) -> bool {
        let due = !self.sent && now >= self.next_ping;
        self.sent |= due;
        due
    }

    /// The ping went to the client at `now`.
    pub(super) fn delivered(&mut self, now: Instant) {
        if self.sent && self.delivered.is_none() {
            self.delivered = Some(now.max(self.next_ping));
        }
    }

    pub(super) fn deadline(&self, timeout: std::time::Duration) -> Instant {
        self.delivered.unwrap_or(self.next_ping) + timeout
    }
}

pub(crate) struct Session {
    pub sid: String,
    /// When the handshake made it: the heartbeat and the connect timeout count from here.
    pub opened: Instant,
    tx: SyncSender<Outgoing>,
    /// The queue's other end: taken by the WebSocket writer; long-poll GETs borrow it.
    pub queue: Mutex<Option<Receiver<Outgoing>>>,
    pub closed: AtomicBool,
    /// On the polling transport (not yet upgraded).
    pub polling: AtomicBool,
    /// A WebSocket has claimed this polling session's upgrade.
    pub upgrading: AtomicBool,
    /// The upgrade probe was answered: long-poll GETs end at once (with a NOOP).
    pub probed: AtomicBool,
    /// A long-poll GET is waiting (see `get_turn`).
    pub get_busy: AtomicBool,
    pub(super) get_slot: Mutex<GetSlot>,
    /// The queue overflowed; the writer closes with 1008.
    pub slow: AtomicBool,
    /// The client sent CLOSE: a waiting GET ends with a NOOP rather than a CLOSE.
    pub client_closed: AtomicBool,
    /// The server closed this polling session while no GET was waiting: see
    /// [`Session::close_by_server`].
    pub closing: AtomicBool,
    /// A GET during an upgrade waits on this for the WebSocket's reader.
    pub(super) watch: UpgradeWatch,
    pub hb: Mutex<Heartbeat>,
    pub reason: Mutex<Option<DisconnectReason>>,
    pub on_message: RwLock<Option<MessageHandler>>,
    pub on_close: Mutex<Vec<CloseHandler>>,
    pub label: String,
    pub trace: bool,
    pub config: Config,
    pub describe: fn(&str) -> String,
    engine: Weak<EngineInner>,
}

impl Session {
    pub(super) fn new(
        engine: Weak<EngineInner>,
        config: Config,
        label: String,
        polling: bool,
        describe: fn(&str) -> String,
    ) -> Arc<Session> {
        let (tx, queue) = mpsc::sync_channel(config.queue.max(1));
        let opened = Instant::now();
        Arc::new(Session {
            sid: new_sid(),
            opened,
            tx,
            queue: Mutex::new(Some(queue)),
            closed: AtomicBool::new(false),
            polling: AtomicBool::new(polling),
            upgrading: AtomicBool::new(false),
            probed: AtomicBool::new(false),
            get_busy: AtomicBool::new(false),
            get_slot: Mutex::new(GetSlot::default()),
            slow: AtomicBool::new(false),
            client_closed: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            watch: UpgradeWatch::default(),
            hb: Mutex::new(Heartbeat { next_ping: opened + config.ping_interval, sent: false, delivered: None }),
            reason: Mutex::new(None),
            on_message: RwLock::new(None),
            on_close: Mutex::new(Vec::new()),
            label,
            trace: tracing::enabled!(target: TRACE_TARGET, tracing::Level::INFO),
            config,
            describe,
            engine,
        })
    }

    /// Queues packets that go out together; never blocks. A full queue marks the client slow.
    pub(super) fn send(&self, packets: Vec<Wire>) {
        let close_packet = matches!(packets.as_slice(), [Wire::Text(t)] if t == "1");
        let over = self.closed.load(Ordering::Acquire) || self.closing.load(Ordering::Acquire);
        if over && !close_packet {
            return;
        }
        self.push(Outgoing::Packets(packets));
    }

    pub(super) fn flush(&self) {
        self.push(Outgoing::Flush);
    }

    fn push(&self, o: Outgoing) {
        match self.tx.try_send(o) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if !self.slow.swap(true, Ordering::AcqRel) {
                    tracing::info!(target: TRACE_TARGET, "sio {}: not reading; dropping it", self.label);
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Whether a ping has been due for `ping_timeout` with no pong since.
    pub(super) fn expired(&self, now: Instant) -> bool {
        self.hb.lock().is_ok_and(|hb| now >= hb.deadline(self.config.ping_timeout))
    }

    /// The server ends the session (`EioSocket::close`, a connect timeout). A polling
    /// client with no GET waiting cannot be told yet: as in the reference server, the
    /// session stays (its POSTs answered `ok`, their packets ignored, no more pings) until
    /// the client's next GET, which gets the CLOSE, or its ping deadline. The SeqCst pair
    /// with `poll`'s (`closing` here then `get_busy`, the reverse there) means a GET
    /// arriving meanwhile sees `closing`, or this sees the GET.
    pub(super) fn close_by_server(&self) {
        if self.polling.load(Ordering::SeqCst) {
            self.closing.store(true, Ordering::SeqCst);
            if !self.get_busy.load(Ordering::SeqCst) {
                tracing::debug!(target: TRACE_TARGET, "sio {}: closing at its next GET", self.label);
                return;
            }
        }
        self.end(DisconnectReason::ForcedClose);
    }

    /// A GET has answered the client's CLOSE with its NOOP: it was the GET in flight beside
    /// the CLOSE even if the CLOSE was handled first (see `EngineInner::closed_by_client`),
    /// so no later GET may take that answer again.
    pub(super) fn close_answered(&self) {
        if let Some(engine) = self.engine.upgrade() {
            engine.raced_close(&self.sid);
        }
    }

    /// During an upgrade: waits until the upgrade WebSocket's reader has handled all the
    /// client sent on it before now (see [`UpgradeWatch`]).
    pub(super) fn wait_for_upgrade_input(&self) {
        if self.upgrading.load(Ordering::Acquire) {
            self.watch.wait_caught_up(UPGRADE_STUCK, || {
                !self.polling.load(Ordering::Acquire) || self.closed.load(Ordering::Acquire)
            });
        }
    }

    /// One packet from the client. `Err` after a protocol error (the session is closed).
    pub(super) fn on_packet(&self, wire: Wire) -> Result<(), String> {
        if self.trace {
            tracing::info!(target: TRACE_TARGET, "sio {} → synack {}", self.label, self.trace_line(&wire));
        }
        // Closing: only the client's own CLOSE still counts.
        if self.closing.load(Ordering::Acquire) && !matches!(&wire, Wire::Text(t) if t.starts_with('1')) {
            return Ok(());
        }
        let result = match wire {
            Wire::Binary(b) => self.deliver(Payload::Binary(b)),
            Wire::Text(text) => match decode_eio(&text) {
                Ok((EioType::Pong, _)) => {
                    if let Ok(mut hb) = self.hb.lock() {
                        // A ping every interval, on a fixed beat: the round trip does not
                        // push the next one later (a late pong gets the next ping at once).
                        if hb.sent {
                            hb.next_ping = (hb.next_ping + self.config.ping_interval).max(Instant::now());
                            hb.sent = false;
                            hb.delivered = None;
                        }
                    }
                    Ok(())
                }
                Ok((EioType::Ping, data)) => {
                    self.send(vec![Wire::Text(encode_eio(EioType::Pong, data))]);
                    Ok(())
                }
                Ok((EioType::Message, body)) => self.deliver(Payload::Text(body.to_owned())),
                Ok((EioType::Close, _)) => {
                    self.client_closed.store(true, Ordering::Release);
                    if self.polling.load(Ordering::Acquire) && !self.get_busy.load(Ordering::Acquire) {
                        if let Some(engine) = self.engine.upgrade() {
                            engine.closed_by_client(&self.sid);
                        }
                    }
                    self.end(DisconnectReason::TransportClose);
                    Ok(())
                }
                Ok((EioType::Noop | EioType::Upgrade, _)) => Ok(()),
                Ok((EioType::Open, _)) => Err("OPEN from a client".to_owned()),
                Err(e) => Err(e.to_string()),
            },
        };
        if let Err(why) = &result {
            self.fail(&format!("parse error: {why}"));
        }
        result
    }

    fn deliver(&self, msg: Payload) -> Result<(), String> {
        let handler = self.on_message.read().ok().and_then(|h| h.clone());
        match handler {
            Some(h) => h(msg),
            None => Ok(()),
        }
    }

    /// The client broke the protocol: tell it with a CLOSE packet, then close.
    pub(super) fn fail(&self, why: &str) {
        tracing::info!(target: TRACE_TARGET, "sio {}: closing: {why}", self.label);
        self.send(vec![Wire::Text(encode_eio(EioType::Close, ""))]);
        self.end(DisconnectReason::ParseError);
    }

    /// Ends the session once (from whichever thread sees it first): the close handlers run
    /// with `reason`, and the transport is told to close.
    pub(super) fn end(&self, reason: DisconnectReason) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Ok(mut r) = self.reason.lock() {
            *r = Some(reason);
        }
        if let Some(engine) = self.engine.upgrade() {
            engine.forget(&self.sid);
        }
        if let Ok(mut h) = self.on_message.write() {
            // Handlers often hold a handle to this session: that would be a cycle.
            *h = None;
        }
        let handlers: Vec<CloseHandler> = self.on_close.lock().map(|mut h| std::mem::take(&mut *h)).unwrap_or_default();
        for h in handlers {
            h(reason);
        }
        // Wakes the writer (or a waiting GET); if the queue is full it sees `closed` later.
        let _ = self.tx.try_send(Outgoing::Stop);
        self.watch.notify();
    }

    /// `EVENT chat message ["hi"]  ‹42["chat message","hi"]›`: decoded, then as sent; both
    /// cut to a few hundred characters so a big payload cannot flood the log.
    pub(super) fn trace_line(&self, wire: &Wire) -> String {
        fn cut(s: &str) -> String {
            const MAX: usize = 300;
            match s.char_indices().nth(MAX) {
                Some((i, _)) => format!("{}…", &s[..i]),
                None => s.to_owned(),
            }
        }
        match wire {
            Wire::Text(text) => format!("{}  ‹{}›", cut(&(self.describe)(text)), cut(text)),
            Wire::Binary(b) => format!("binary MESSAGE, {} bytes", b.len()),
        }
    }
}

pub(crate) fn new_sid() -> String {
    let mut b = [0u8; 15];
    if getrandom::fill(&mut b).is_err() {
        // Not a secret (sids are identifiers, not credentials); unique is enough.
        static N: AtomicU64 = AtomicU64::new(1);
        b[..8].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

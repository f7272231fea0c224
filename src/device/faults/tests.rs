//! The fault spec parser, and `Faults` on the in-memory `Pipe` with a fake clock.

use std::sync::Mutex;

use super::*;
use crate::device::Pipe;

// ---- the spec parser ----

#[test]
fn parses_the_full_spec() {
    let c: FaultConfig = "loss=0.05,dup=0.01,reorder=0.05,delay=20ms,jitter=5ms,seed=7".parse().unwrap();
    assert_eq!(
        c,
        FaultConfig {
            loss: 0.05,
            dup: 0.01,
            reorder: 0.05,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
            seed: 7
        }
    );
}

#[test]
fn parses_any_subset_in_any_order() {
    let c: FaultConfig = "seed=3, delay=1s,loss=1".parse().unwrap();
    assert_eq!(c, FaultConfig { loss: 1.0, delay: Duration::from_secs(1), seed: 3, ..Default::default() });
    let c: FaultConfig = "reorder=0".parse().unwrap();
    assert_eq!(c, FaultConfig::default());
    let c: FaultConfig = "jitter=250us,delay=0.5ms".parse().unwrap();
    assert_eq!(c.jitter, Duration::from_micros(250));
    assert_eq!(c.delay, Duration::from_micros(500));
    let c: FaultConfig = "delay=0ms".parse().unwrap();
    assert_eq!(c.delay, Duration::ZERO);
}

#[test]
fn display_round_trips() {
    for spec in ["loss=0.05,dup=0.01,reorder=0.05,delay=20ms,jitter=5ms,seed=7", "delay=1s,jitter=250us", "seed=9"] {
        let c: FaultConfig = spec.parse().unwrap();
        let again: FaultConfig = c.to_string().parse().unwrap();
        assert_eq!(c, again, "{spec} → {c}");
    }
    assert_eq!(
        "loss=0.05,delay=20ms".parse::<FaultConfig>().unwrap().to_string(),
        "loss=0.05,dup=0,reorder=0,delay=20ms,jitter=0ms,seed=1"
    );
}

fn err(spec: &str) -> String {
    spec.parse::<FaultConfig>().unwrap_err().to_string()
}

#[test]
fn bad_specs_say_what_is_wrong_and_how_to_write_it() {
    let e = err("lose=0.1");
    assert!(e.contains("unknown fault \"lose\"") && e.contains("loss, dup and reorder"), "{e}");
    let e = err("loss=1.5");
    assert!(e.contains("loss=1.5") && e.contains("from 0 to 1"), "{e}");
    let e = err("dup=-0.1");
    assert!(e.contains("dup=-0.1") && e.contains("from 0 to 1"), "{e}");
    let e = err("reorder=lots");
    assert!(e.contains("reorder=lots"), "{e}");
    let e = err("loss=NaN");
    assert!(e.contains("from 0 to 1"), "{e}");
    let e = err("delay=20");
    assert!(e.contains("delay=20") && e.contains("no unit") && e.contains("ms, us or s"), "{e}");
    let e = err("delay=20min");
    assert!(e.contains("\"min\" is not a unit"), "{e}");
    let e = err("jitter=ms");
    assert!(e.contains("jitter=ms") && e.contains("not a number"), "{e}");
    let e = err("delay=-5ms");
    assert!(e.contains("delay=-5ms"), "{e}");
    let e = err("delay=100s");
    assert!(e.contains("at most 60s"), "{e}");
    let e = err("seed=-1");
    assert!(e.contains("seed=-1") && e.contains("whole number"), "{e}");
    let e = err("loss");
    assert!(e.contains("\"loss\" has no value") && e.contains("key=value"), "{e}");
    let e = err("loss=0.1,,dup=0.1");
    assert!(e.contains("empty item"), "{e}");
    let e = err("");
    assert!(e.contains("empty fault spec"), "{e}");
    let e = err("loss=0.1,loss=0.2");
    assert!(e.contains("loss is given twice"), "{e}");
}

// ---- Faults on a Pipe, with a fake clock ----

#[derive(Clone)]
struct FakeClock(Arc<Mutex<Instant>>);

impl FakeClock {
    fn new() -> FakeClock {
        FakeClock(Arc::new(Mutex::new(Instant::now())))
    }
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
    fn advance(&self, d: Duration) -> Instant {
        let mut t = self.0.lock().unwrap();
        *t += d;
        *t
    }
    fn clock(&self) -> Clock {
        let me = self.clone();
        Arc::new(move || me.now())
    }
}

/// A packet carrying its number.
fn numbered(i: u32) -> [u8; 4] {
    i.to_be_bytes()
}

fn number(p: &[u8]) -> u32 {
    u32::from_be_bytes(p[..4].try_into().unwrap())
}

/// Everything queued on `dev` now.
fn drain(dev: &mut impl Device) -> Vec<u32> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        match dev.recv(&mut buf) {
            Ok(n) => out.push(number(&buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return out,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Outbound faults: stack → `Faults` → pipe; the test reads the far end.
fn outbound(cfg: FaultConfig, clock: &FakeClock) -> (Faults<Pipe>, Pipe) {
    let (a, b) = Pipe::pair().unwrap();
    (Faults::with_clock(a, None, Some(cfg), clock.clock()), b)
}

/// Inbound faults: the test writes the far end; `Faults::recv` is what the stack reads.
fn inbound(cfg: FaultConfig, clock: &FakeClock) -> (Faults<Pipe>, Pipe) {
    let (a, b) = Pipe::pair().unwrap();
    (Faults::with_clock(a, Some(cfg), None, clock.clock()), b)
}

fn cfg(spec: &str) -> FaultConfig {
    spec.parse().unwrap()
}

/// Send packets 0..n outbound, one every `gap`, draining the far end as they come; then let
/// the clock run until everything held is out. Returns the arrival order.
fn run_outbound(dev: &mut Faults<Pipe>, far: &mut Pipe, clock: &FakeClock, n: u32, gap: Duration) -> Vec<u32> {
    let mut got = Vec::new();
    for i in 0..n {
        let now = clock.advance(gap);
        dev.on_timer(now);
        dev.send(&numbered(i)).unwrap();
        got.extend(drain(far));
    }
    for _ in 0..10_000 {
        let Some(at) = dev.poll_at() else { break };
        let now = clock.now().max(at);
        *clock.0.lock().unwrap() = now;
        dev.on_timer(now);
        got.extend(drain(far));
    }
    assert_eq!(dev.poll_at(), None, "everything released");
    got
}

#[test]
fn no_faults_pass_everything_in_order_at_once() {
    let clock = FakeClock::new();
    let (mut dev, mut far) = outbound(FaultConfig::default(), &clock);
    for i in 0..100 {
        dev.send(&numbered(i)).unwrap();
        assert_eq!(drain(&mut far), vec![i]);
    }
    assert_eq!(dev.poll_at(), None);
    let c = dev.counts().outbound.unwrap();
    assert_eq!((c.packets, c.dropped, c.duplicated, c.reordered, c.delayed), (100, 0, 0, 0, 0));
    assert_eq!(dev.counts().inbound, None);
}

#[test]
fn loss_rate_is_close_to_p_over_ten_thousand_packets() {
    let clock = FakeClock::new();
    let (mut dev, mut far) = outbound(cfg("loss=0.05,seed=7"), &clock);
    let got = run_outbound(&mut dev, &mut far, &clock, 10_000, Duration::from_micros(10));
    let c = dev.counts().outbound.unwrap();
    assert_eq!(c.packets, 10_000);
    assert_eq!(got.len() as u64, 10_000 - c.dropped);
    assert!((420..=580).contains(&c.dropped), "dropped {} of 10000 at p=0.05", c.dropped);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "loss alone keeps the order");
}

#[test]
fn inbound_loss_too() {
    let clock = FakeClock::new();
    let (mut dev, mut far) = inbound(cfg("loss=0.2,seed=3"), &clock);
    let mut got = Vec::new();
    for i in 0..10_000 {
        far.send(&numbered(i)).unwrap();
        got.extend(drain(&mut dev));
    }
    let c = dev.counts().inbound.unwrap();
    assert_eq!(c.packets, 10_000);
    assert_eq!(got.len() as u64, 10_000 - c.dropped);
    assert!((1850..=2150).contains(&c.dropped), "dropped {} of 10000 at p=0.2", c.dropped);
}

#[test]
fn dup_delivers_twice() {
    let clock = FakeClock::new();
    let (mut dev, mut far) = outbound(cfg("dup=1"), &clock);
    for i in 0..50 {
        dev.send(&numbered(i)).unwrap();
        assert_eq!(drain(&mut far), vec![i, i]);
    }
    assert_eq!(dev.counts().outbound.unwrap().duplicated, 50);

    let (mut dev, mut far) = inbound(cfg("dup=0.1,seed=5"), &clock);
    let mut got = Vec::new();
    for i in 0..5_000 {
        far.send(&numbered(i)).unwrap();
        got.extend(drain(&mut dev));
    }
    let dups = dev.counts().inbound.unwrap().duplicated;
    assert!((400..=600).contains(&dups), "{dups} duplicated of 5000 at p=0.1");
    assert_eq!(got.len(), 5_000 + dups as usize);
    let mut seen = vec![0u8; 5_000];
    for n in got {
        seen[n as usize] += 1;
    }
    assert!(seen.iter().all(|&s| s == 1 || s == 2));
    assert_eq!(seen.iter().filter(|&&s| s == 2).count() as u64, dups);
}

#[test]
fn delay_holds_until_due() {
    let clock = FakeClock::new();
    let (mut dev, mut far) = outbound(cfg("delay=20ms"), &clock);
    let t0 = clock.now();
    dev.send(&numbered(1)).unwrap();
    assert_eq!(drain(&mut far), Vec::<u32>::new());
    assert_eq!(dev.poll_at(), Some(t0 + Duration::from_millis(20)));
    clock.advance(Duration::from_millis(5));
    dev.send(&numbered(2)).unwrap();
    dev.on_timer(t0 + Duration::from_millis(19));
    assert_eq!(drain(&mut far), Vec::<u32>::new());
    dev.on_timer(t0 + Duration::from_millis(20));
    assert_eq!(drain(&mut far), vec![1]);
    assert_eq!(dev.poll_at(), Some(t0 + Duration::from_millis(25)));
    dev.on_timer(t0 + Duration::from_millis(30));
    assert_eq!(drain(&mut far), vec![2]);
    assert_eq!(dev.poll_at(), None);
    assert_eq!(dev.counts().outbound.unwrap().delayed, 2);
}

#[test]
fn inbound_delay_becomes_readable_on_the_timer_without_new_traffic() {
    let clock = FakeClock::new();
    let (mut dev, mut far) = inbound(cfg("delay=10ms"), &clock);
    let t0 = clock.now();
    far.send(&numbered(7)).unwrap();
    assert_eq!(drain(&mut dev), Vec::<u32>::new(), "read from the pipe and held");
    assert_eq!(dev.poll_at(), Some(t0 + Duration::from_millis(10)));
    clock.advance(Duration::from_millis(10));
    dev.on_timer(clock.now());
    // The pipe is empty: the packet comes from the fault layer's own queue.
    assert_eq!(drain(&mut dev), vec![7]);
    assert_eq!(dev.poll_at(), None);
}

#[test]
fn jitter_spreads_delays_uniformly_around_delay() {
    let clock = FakeClock::new();
    let (mut dev, _far) = outbound(cfg("delay=10ms,jitter=4ms,seed=11"), &clock);
    let t0 = clock.now();
    for i in 0..2_000 {
        dev.send(&numbered(i)).unwrap();
    }
    let lane = dev.outbound.as_ref().unwrap();
    let delays: Vec<Duration> = lane.delay_line.iter().map(|Reverse(t)| t.at - t0).collect();
    assert_eq!(delays.len(), 2_000);
    assert!(delays.iter().all(|d| (Duration::from_millis(6)..=Duration::from_millis(14)).contains(d)));
    let early = delays.iter().filter(|d| **d < Duration::from_millis(8)).count();
    let late = delays.iter().filter(|d| **d > Duration::from_millis(12)).count();
    assert!((350..=650).contains(&early) && (350..=650).contains(&late), "{early} early, {late} late");
    // Jitter larger than the delay is floored at zero: nothing is released before it arrived.
    let (mut dev, mut far) = outbound(cfg("delay=1ms,jitter=5ms,seed=2"), &clock);
    let got = run_outbound(&mut dev, &mut far, &clock, 1_000, Duration::from_micros(100));
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1_000).collect::<Vec<_>>());
    assert_ne!(got, sorted, "jitter wider than the gap reorders");
}

#[test]
fn reorder_releases_a_held_packet_after_one_to_three_later_packets() {
    let clock = FakeClock::new();
    let mut seen_k = [false; 4];
    for seed in 0..40 {
        let (mut dev, mut far) = outbound(FaultConfig { reorder: 1.0, seed, ..Default::default() }, &clock);
        dev.send(&numbered(0)).unwrap();
        assert_eq!(drain(&mut far), Vec::<u32>::new(), "held");
        dev.outbound.as_mut().unwrap().cfg.reorder = 0.0;
        let mut order = Vec::new();
        for i in 1..=5 {
            dev.send(&numbered(i)).unwrap();
            order.extend(drain(&mut far));
        }
        let k = order.iter().position(|&n| n == 0).expect("released");
        assert!((1..=3).contains(&k), "seed {seed}: released after {k} packets: {order:?}");
        assert_eq!(order.len(), 6);
        seen_k[k] = true;
        assert_eq!(dev.counts().outbound.unwrap().reordered, 1);
    }
    assert_eq!(seen_k, [false, true, true, true], "k takes each value 1, 2, 3");
}

#[test]
fn a_held_packet_goes_after_the_wait_when_traffic_stops() {
    let clock = FakeClock::new();
    let (mut dev, mut far) = outbound(cfg("reorder=1"), &clock);
    let t0 = clock.now();
    dev.send(&numbered(1)).unwrap();
    assert_eq!(dev.poll_at(), Some(t0 + REORDER_WAIT_WITHOUT_DELAY));
    dev.on_timer(t0 + Duration::from_millis(9));
    assert_eq!(drain(&mut far), Vec::<u32>::new());
    dev.on_timer(t0 + Duration::from_millis(10));
    assert_eq!(drain(&mut far), vec![1]);
    // With a delay, the packet first waits its delay, then up to another `delay` held back.
    let (mut dev, mut far) = outbound(cfg("reorder=1,delay=30ms"), &clock);
    dev.send(&numbered(2)).unwrap();
    dev.on_timer(t0 + Duration::from_millis(30));
    assert_eq!(drain(&mut far), Vec::<u32>::new());
    assert_eq!(dev.poll_at(), Some(t0 + Duration::from_millis(60)));
    dev.on_timer(t0 + Duration::from_millis(60));
    assert_eq!(drain(&mut far), vec![2]);
}

#[test]
fn reorder_displaces_about_p_of_the_packets_by_a_few_places() {
    let clock = FakeClock::new();
    let (mut dev, mut far) = outbound(cfg("reorder=0.05,seed=7"), &clock);
    let got = run_outbound(&mut dev, &mut far, &clock, 10_000, Duration::from_micros(10));
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..10_000).collect::<Vec<_>>(), "nothing lost or duplicated");
    let held = dev.counts().outbound.unwrap().reordered;
    assert!((420..=580).contains(&held), "{held} held of 10000 at p=0.05");
    // How many later packets overtook each packet: 0 for most, 1..=3 for the held ones (a
    // little more when two held packets sit next to each other).
    let mut overtaken_by = vec![0usize; 10_000];
    for (pos, &n) in got.iter().enumerate() {
        overtaken_by[n as usize] = got[..pos].iter().filter(|&&m| m > n).count();
    }
    let displaced = overtaken_by.iter().filter(|&&k| k > 0).count();
    assert_eq!(displaced as u64, held);
    assert!(overtaken_by.iter().all(|&k| k <= 6), "max {}", overtaken_by.iter().max().unwrap());
    assert!(overtaken_by.iter().filter(|&&k| k > 3).count() < 20);
}

#[test]
fn the_same_seed_gives_the_same_faults() {
    let spec = "loss=0.05,dup=0.05,reorder=0.1,delay=2ms,jitter=1ms";
    let run = |seed: u64| {
        let clock = FakeClock::new();
        let mut c = cfg(spec);
        c.seed = seed;
        let (mut dev, mut far) = outbound(c, &clock);
        let got = run_outbound(&mut dev, &mut far, &clock, 3_000, Duration::from_micros(200));
        (got, dev.counts())
    };
    let (a, ca) = run(42);
    let (b, cb) = run(42);
    assert_eq!(a, b);
    assert_eq!(ca, cb);
    let (c, _) = run(43);
    assert_ne!(a, c, "another seed, other faults");
}

#[test]
fn the_two_directions_draw_independently() {
    let clock = FakeClock::new();
    let (a, mut b) = Pipe::pair().unwrap();
    let c = cfg("loss=0.5,seed=1");
    let mut dev = Faults::with_clock(a, Some(c.clone()), Some(c), clock.clock());
    let (mut sent, mut received) = (Vec::new(), Vec::new());
    for i in 0..200 {
        dev.send(&numbered(i)).unwrap();
        sent.extend(drain(&mut b));
        b.send(&numbered(i)).unwrap();
        received.extend(drain(&mut dev));
    }
    assert_ne!(sent, received, "inbound and outbound use different streams");
}

#[test]
fn held_packets_are_capped() {
    let clock = FakeClock::new();
    let (mut dev, _far) = outbound(cfg("delay=1s"), &clock);
    for i in 0..(MAX_HELD as u32 + 500) {
        dev.send(&numbered(i)).unwrap();
    }
    let c = dev.counts().outbound.unwrap();
    assert_eq!(c.overflow, 500);
    assert_eq!(dev.outbound.as_ref().unwrap().queued(), MAX_HELD);
    let text = dev.counts().to_string();
    assert!(text.contains("500 dropped over the 10000-packet cap"), "{text}");
}

#[test]
fn many_ready_inbound_packets_are_read_over_several_turns() {
    let clock = FakeClock::new();
    let (mut dev, mut far) = inbound(cfg("delay=1ms"), &clock);
    let mut total = 0;
    for round in 0..20u32 {
        // Fewer than one `recv` reads from the pipe at a time, so the pipe is empty after each.
        for i in 0..50 {
            far.send(&numbered(round * 50 + i)).unwrap();
        }
        total += drain(&mut dev).len();
    }
    assert_eq!(total, 0);
    clock.advance(Duration::from_millis(1));
    assert!(dev.poll_at().is_some());
    dev.on_timer(clock.now());
    let got = drain(&mut dev);
    assert_eq!(got, (0..1_000).collect::<Vec<_>>());
    assert_eq!(dev.poll_at(), None);
}

#[test]
fn counts_read_as_a_summary() {
    let counts = FaultCounts {
        inbound: Some(DirectionCounts {
            packets: 10,
            dropped: 1,
            duplicated: 2,
            reordered: 3,
            delayed: 4,
            ..Default::default()
        }),
        outbound: None,
    };
    assert_eq!(counts.to_string(), "faults: in 10 packets, 1 dropped, 2 duplicated, 3 reordered, 4 delayed; out none");
}

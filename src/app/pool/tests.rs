//! The pool with a channel standing in for the listener: a job is a "connection", and a job
//! may hold its thread until the test opens its gate.

use std::io;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{Pool, PoolConfig};

/// A latch the test opens; jobs given one block on it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

/// The pool's `accept` on a channel: `None` on timeout, an error once the sender is gone.
fn recv<T>(rx: &Mutex<Receiver<T>>, timeout: Duration) -> io::Result<Option<T>> {
    match rx.lock().unwrap().recv_timeout(timeout) {
        Ok(v) => Ok(Some(v)),
        Err(RecvTimeoutError::Timeout) => Ok(None),
        Err(RecvTimeoutError::Disconnected) => Err(io::Error::other("closed")),
    }
}

struct Job {
    id: usize,
    gate: Option<Arc<Gate>>,
}

struct Rig {
    pool: Pool<Job>,
    jobs: Option<Sender<Job>>,
    /// Ids of the jobs started and finished, in order.
    started: Arc<Mutex<Vec<usize>>>,
    done: Receiver<usize>,
}

fn rig(max_threads: usize, idle_timeout: Duration) -> Rig {
    let (tx, rx) = channel::<Job>();
    let rx = Mutex::new(rx);
    let (done_tx, done) = channel();
    let done_tx = Mutex::new(done_tx);
    let started = Arc::new(Mutex::new(Vec::new()));
    let s = started.clone();
    let cfg = PoolConfig { name: "test".into(), max_threads, idle_timeout };
    let pool = Pool::start(
        cfg,
        move |timeout| recv(&rx, timeout),
        move |job: Job| {
            s.lock().unwrap().push(job.id);
            if let Some(g) = &job.gate {
                g.wait();
            }
            let _ = done_tx.lock().unwrap().send(job.id);
        },
    )
    .unwrap();
    Rig { pool, jobs: Some(tx), started, done }
}

impl Rig {
    fn send(&self, id: usize, gate: Option<&Arc<Gate>>) {
        self.jobs.as_ref().unwrap().send(Job { id, gate: gate.cloned() }).unwrap();
    }
    fn done(&self) -> usize {
        self.done.recv_timeout(Duration::from_secs(10)).expect("a job finished")
    }
}

/// Waits for a condition the pool reaches by itself; the bound only keeps a broken pool from
/// hanging the test run.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < until, "never: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn one_at_a_time_reuses_two_threads() {
    let r = rig(64, Duration::from_secs(60));
    for id in 0..50 {
        r.send(id, None);
        assert_eq!(r.done(), id);
        // The thread that served it is back before the next arrives.
        eventually("all threads idle", || r.pool.idle() == r.pool.threads());
    }
    // The first thread serves and starts a second to wait for the next; the two suffice.
    assert_eq!(r.pool.spawned(), 2);
    assert_eq!(r.pool.threads(), 2);
}

#[test]
fn grows_when_all_are_busy_and_serves_the_next_connection() {
    let r = rig(64, Duration::from_secs(60));
    let gate = Arc::new(Gate::default());
    r.send(0, Some(&gate));
    r.send(1, Some(&gate));
    eventually("both held jobs started", || r.started.lock().unwrap().len() == 2);
    r.send(2, None);
    assert_eq!(r.done(), 2, "served while the others hold their threads");
    assert!(r.pool.threads() >= 3);
    gate.open();
    let mut rest = [r.done(), r.done()];
    rest.sort();
    assert_eq!(rest, [0, 1]);
}

#[test]
fn bounded_and_a_waiting_connection_is_served_when_a_thread_frees() {
    let r = rig(3, Duration::from_secs(60));
    let gates: Vec<Arc<Gate>> = (0..3).map(|_| Arc::new(Gate::default())).collect();
    for (id, g) in gates.iter().enumerate() {
        r.send(id, Some(g));
    }
    eventually("three held jobs started", || r.started.lock().unwrap().len() == 3);
    r.send(3, None);
    r.send(4, None);
    // Give a (broken) pool the chance to start a fourth thread; a correct one must not.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(r.pool.threads(), 3);
    assert_eq!(r.pool.spawned(), 3);
    assert_eq!(r.started.lock().unwrap().len(), 3, "no thread free for jobs 3 and 4 yet");
    gates[1].open();
    let mut got = vec![r.done(), r.done(), r.done()];
    got.sort();
    assert_eq!(got, vec![1, 3, 4]);
    gates[0].open();
    gates[2].open();
    let mut got = vec![r.done(), r.done()];
    got.sort();
    assert_eq!(got, vec![0, 2]);
    assert_eq!(r.pool.spawned(), 3);
}

#[test]
fn idle_threads_exit_down_to_one() {
    let r = rig(64, Duration::from_millis(20));
    let gate = Arc::new(Gate::default());
    for id in 0..5 {
        r.send(id, Some(&gate));
    }
    eventually("five held jobs started", || r.started.lock().unwrap().len() == 5);
    assert!(r.pool.threads() >= 5);
    gate.open();
    for _ in 0..5 {
        r.done();
    }
    eventually("idle threads gone", || r.pool.threads() == 1);
    // The one left still serves.
    r.send(9, None);
    assert_eq!(r.done(), 9);
}

#[test]
fn accept_error_stops_every_thread() {
    let mut r = rig(64, Duration::from_secs(60));
    let gate = Arc::new(Gate::default());
    r.send(0, Some(&gate));
    r.send(1, Some(&gate));
    eventually("two held jobs started", || r.started.lock().unwrap().len() == 2);
    r.jobs = None;
    gate.open();
    r.done();
    r.done();
    eventually("all threads gone", || r.pool.threads() == 0);
}

#[test]
fn a_panicking_handler_is_replaced() {
    let (tx, rx) = channel::<usize>();
    let rx = Mutex::new(rx);
    let (done_tx, done) = channel();
    let done_tx = Mutex::new(done_tx);
    let cfg = PoolConfig { name: "test".into(), max_threads: 1, idle_timeout: Duration::from_secs(60) };
    let pool = Pool::start(
        cfg,
        move |timeout| recv(&rx, timeout),
        move |id: usize| {
            assert!(id != 0, "job 0 panics (expected in this test)");
            let _ = done_tx.lock().unwrap().send(id);
        },
    )
    .unwrap();
    tx.send(0).unwrap();
    tx.send(1).unwrap();
    assert_eq!(done.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
    assert_eq!(pool.threads(), 1);
    assert_eq!(pool.spawned(), 2);
}

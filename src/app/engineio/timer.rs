//! One thread for every delayed action of the Engine.IO and Socket.IO servers (a client's
//! connect timeout): a thread per connection just to wait would cost far more.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

type Job = Box<dyn FnOnce() + Send>;

struct Entry {
    at: Instant,
    seq: u64,
    job: Job,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

#[derive(Default)]
struct Timer {
    jobs: Mutex<(BinaryHeap<Reverse<Entry>>, u64)>,
    wake: Condvar,
}

fn timer() -> &'static Timer {
    static T: OnceLock<&'static Timer> = OnceLock::new();
    T.get_or_init(|| {
        let t: &'static Timer = Box::leak(Box::default());
        let spawned = std::thread::Builder::new().name("eio-timer".into()).spawn(move || run(t));
        if let Err(e) = spawned {
            tracing::error!("cannot start the Engine.IO timer thread: {e}; timed closes will not happen");
        }
        t
    })
}

/// Runs `job` on the timer thread at `when` (at once if that has passed). Jobs must be
/// quick (they hold up the ones after them): check a flag, queue a packet, end a session.
pub(crate) fn at(when: Instant, job: impl FnOnce() + Send + 'static) {
    let t = timer();
    if let Ok(mut g) = t.jobs.lock() {
        g.1 += 1;
        let seq = g.1;
        g.0.push(Reverse(Entry { at: when, seq, job: Box::new(job) }));
        t.wake.notify_one();
    }
}

fn run(t: &Timer) {
    let Ok(mut g) = t.jobs.lock() else { return };
    loop {
        let now = Instant::now();
        match g.0.peek().map(|Reverse(e)| e.at) {
            Some(at) if at <= now => {
                if let Some(Reverse(e)) = g.0.pop() {
                    drop(g);
                    (e.job)();
                    let Ok(again) = t.jobs.lock() else { return };
                    g = again;
                }
            }
            Some(at) => match t.wake.wait_timeout(g, at - now) {
                Ok((again, _)) => g = again,
                Err(_) => return,
            },
            None => match t.wake.wait(g) {
                Ok(again) => g = again,
                Err(_) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn jobs_run_in_deadline_order() {
        let (tx, rx) = std::sync::mpsc::channel();
        for (ms, n) in [(60u64, 3), (20, 1), (40, 2)] {
            let tx = tx.clone();
            at(Instant::now() + Duration::from_millis(ms), move || tx.send(n).unwrap_or(()));
        }
        let got: Vec<i32> = (0..3).filter_map(|_| rx.recv_timeout(Duration::from_secs(5)).ok()).collect();
        assert_eq!(got, vec![1, 2, 3]);
    }
}

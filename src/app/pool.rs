//! A pool of reusable service threads (leader/followers): one idle thread at a time waits in
//! `accept`; when it gets a connection it hands the turn to another idle thread (or starts one,
//! up to a bound) and serves the connection itself. Compared with a thread per connection
//! this saves a thread start and exit per connection, and compared with an accept thread
//! feeding workers it saves one cross-thread wake-up on the way from SYN to service.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Thread name prefix.
    pub name: String,
    /// At most this many threads; beyond it a new connection waits in the accept queue until
    /// a thread is free.
    pub max_threads: usize,
    /// An idle thread that is not the one accepting exits after this long.
    pub idle_timeout: Duration,
}

struct State {
    /// Threads not serving a connection (waiting for the turn or accepting).
    idle: usize,
    total: usize,
    /// A thread is in `accept`.
    leader: bool,
    /// `accept` failed (the listener or the stack is gone): every thread exits.
    closed: bool,
}

struct Shared<S> {
    cfg: PoolConfig,
    state: Mutex<State>,
    turn: Condvar,
    spawned: AtomicU64,
    #[allow(clippy::type_complexity)]
    accept: Box<dyn Fn() -> io::Result<S> + Send + Sync>,
    handler: Box<dyn Fn(S) + Send + Sync>,
}

/// A handle to a running pool; the threads keep running when it is dropped.
pub struct Pool<S> {
    shared: Arc<Shared<S>>,
}

impl<S: Send + 'static> Pool<S> {
    /// Start one thread, which calls `accept` and runs `handler` on what it returns. An error
    /// from `accept` stops the pool.
    pub fn start(
        cfg: PoolConfig,
        accept: impl Fn() -> io::Result<S> + Send + Sync + 'static,
        handler: impl Fn(S) + Send + Sync + 'static,
    ) -> io::Result<Pool<S>> {
        let shared = Arc::new(Shared {
            cfg: PoolConfig { max_threads: cfg.max_threads.max(1), ..cfg },
            state: Mutex::new(State { idle: 1, total: 1, leader: false, closed: false }),
            turn: Condvar::new(),
            spawned: AtomicU64::new(0),
            accept: Box::new(accept),
            handler: Box::new(handler),
        });
        if let Err(e) = spawn(&shared) {
            if let Ok(mut st) = shared.state.lock() {
                st.idle = 0;
                st.total = 0;
            }
            return Err(e);
        }
        Ok(Pool { shared })
    }

    /// Threads alive now.
    pub fn threads(&self) -> usize {
        self.shared.state.lock().map(|st| st.total).unwrap_or(0)
    }

    /// Threads alive and not serving a connection.
    pub fn idle(&self) -> usize {
        self.shared.state.lock().map(|st| st.idle).unwrap_or(0)
    }

    /// Threads started since the pool began.
    pub fn spawned(&self) -> u64 {
        self.shared.spawned.load(Ordering::Relaxed)
    }
}

fn spawn<S: Send + 'static>(shared: &Arc<Shared<S>>) -> io::Result<()> {
    let s = shared.clone();
    std::thread::Builder::new().name(format!("{}-conn", shared.cfg.name)).spawn(move || worker(&s))?;
    shared.spawned.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Leave the pool (the caller counted itself idle).
fn leave<S>(shared: &Shared<S>, mut st: MutexGuard<'_, State>) {
    st.idle -= 1;
    st.total -= 1;
    if st.closed {
        shared.turn.notify_all();
    }
}

fn worker<S: Send + 'static>(shared: &Arc<Shared<S>>) {
    let Ok(mut st) = shared.state.lock() else { return };
    loop {
        // Wait for the turn to accept; an idle follower beyond the first thread exits.
        let mut idle_until = Instant::now() + shared.cfg.idle_timeout;
        while st.leader && !st.closed {
            let now = Instant::now();
            if now >= idle_until {
                if st.total > 1 {
                    return leave(shared, st);
                }
                idle_until = now + shared.cfg.idle_timeout;
            }
            st = match shared.turn.wait_timeout(st, idle_until - now) {
                Ok((g, _)) => g,
                Err(_) => return,
            };
        }
        if st.closed {
            return leave(shared, st);
        }
        st.leader = true;
        drop(st);
        let got = (shared.accept)();
        st = match shared.state.lock() {
            Ok(g) => g,
            Err(_) => return,
        };
        st.leader = false;
        let conn = match got {
            Ok(conn) => conn,
            Err(e) => {
                tracing::debug!("{}: accept stopped: {e}", shared.cfg.name);
                st.closed = true;
                return leave(shared, st);
            }
        };
        st.idle -= 1;
        if st.idle > 0 {
            shared.turn.notify_one();
        } else if st.total < shared.cfg.max_threads {
            st.idle += 1;
            st.total += 1;
            if let Err(e) = spawn(shared) {
                st.idle -= 1;
                st.total -= 1;
                tracing::warn!("{}: cannot start a thread: {e}", shared.cfg.name);
            }
        }
        drop(st);
        let guard = PanicGuard(shared);
        (shared.handler)(conn);
        std::mem::forget(guard);
        st = match shared.state.lock() {
            Ok(g) => g,
            Err(_) => return,
        };
        st.idle += 1;
    }
}

/// A handler that panics ends its thread: take it out of the count, and start a replacement
/// when no thread would accept otherwise.
struct PanicGuard<'a, S: Send + 'static>(&'a Arc<Shared<S>>);

impl<S: Send + 'static> Drop for PanicGuard<'_, S> {
    fn drop(&mut self) {
        let shared = self.0;
        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.total -= 1;
        if !st.leader && st.idle == 0 && !st.closed {
            st.idle += 1;
            st.total += 1;
            if spawn(shared).is_err() {
                st.idle -= 1;
                st.total -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;

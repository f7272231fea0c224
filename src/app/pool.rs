//! A pool of reusable service threads. Every idle thread waits in `accept`; the one that gets
//! a connection serves it and, if no other thread is left idle, starts one more (up to a
//! bound), so that the next connection finds a thread already waiting. Compared with a thread
//! per connection this saves a thread start and exit per connection, and compared with an
//! accept thread feeding workers it saves one cross-thread wake-up on the way from SYN to
//! service. The counts are atomics, so serving takes no lock of the pool's own.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Thread name prefix.
    pub name: String,
    /// At most this many threads; beyond it a new connection waits in the accept queue until
    /// a thread is free.
    pub max_threads: usize,
    /// An idle thread exits after this long without a connection, unless it is the last idle
    /// one.
    pub idle_timeout: Duration,
}

/// `accept(timeout)`: the next connection, `Ok(None)` when `timeout` passed without one (an
/// acceptor that cannot time out may simply block), `Err` when no more will come.
pub type AcceptFn<S> = dyn Fn(Duration) -> io::Result<Option<S>> + Send + Sync;

struct Shared<S> {
    cfg: PoolConfig,
    /// Threads alive and not serving a connection (they are in, or on their way to, `accept`).
    idle: AtomicUsize,
    total: AtomicUsize,
    /// `accept` failed (the listener or the stack is gone): every thread exits.
    closed: AtomicBool,
    spawned: AtomicU64,
    accept: Box<AcceptFn<S>>,
    handler: Box<dyn Fn(S) + Send + Sync>,
}

/// A handle to a running pool; the threads keep running when it is dropped.
pub struct Pool<S> {
    shared: Arc<Shared<S>>,
}

impl<S: Send + 'static> Pool<S> {
    /// Start one thread, which calls `accept` and runs `handler` on what it returns.
    pub fn start(
        cfg: PoolConfig,
        accept: impl Fn(Duration) -> io::Result<Option<S>> + Send + Sync + 'static,
        handler: impl Fn(S) + Send + Sync + 'static,
    ) -> io::Result<Pool<S>> {
        let shared = Arc::new(Shared {
            cfg: PoolConfig { max_threads: cfg.max_threads.max(1), ..cfg },
            idle: AtomicUsize::new(1),
            total: AtomicUsize::new(1),
            closed: AtomicBool::new(false),
            spawned: AtomicU64::new(0),
            accept: Box::new(accept),
            handler: Box::new(handler),
        });
        if let Err(e) = spawn(&shared) {
            shared.idle.store(0, Ordering::Relaxed);
            shared.total.store(0, Ordering::Relaxed);
            return Err(e);
        }
        Ok(Pool { shared })
    }

    /// Threads alive now.
    pub fn threads(&self) -> usize {
        self.shared.total.load(Ordering::Acquire)
    }

    /// Threads alive and not serving a connection.
    pub fn idle(&self) -> usize {
        self.shared.idle.load(Ordering::Acquire)
    }

    /// Threads started since the pool began.
    pub fn spawned(&self) -> u64 {
        self.shared.spawned.load(Ordering::Relaxed)
    }
}

fn spawn<S: Send + 'static>(shared: &Arc<Shared<S>>) -> io::Result<()> {
    let s = shared.clone();
    // Counted first: the new thread may serve (and a test look) before `spawn` returns.
    shared.spawned.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = std::thread::Builder::new().name(format!("{}-conn", shared.cfg.name)).spawn(move || worker(&s)) {
        shared.spawned.fetch_sub(1, Ordering::Relaxed);
        return Err(e);
    }
    Ok(())
}

/// One more idle thread, unless the pool is at its bound.
fn grow<S: Send + 'static>(shared: &Arc<Shared<S>>) {
    let claimed = shared
        .total
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| (t < shared.cfg.max_threads).then_some(t + 1));
    if claimed.is_err() {
        return;
    }
    shared.idle.fetch_add(1, Ordering::AcqRel);
    if let Err(e) = spawn(shared) {
        shared.idle.fetch_sub(1, Ordering::AcqRel);
        shared.total.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!("{}: cannot start a thread: {e}", shared.cfg.name);
    }
}

/// Leave the pool (the caller counted itself idle).
fn leave<S>(shared: &Shared<S>) {
    shared.idle.fetch_sub(1, Ordering::AcqRel);
    shared.total.fetch_sub(1, Ordering::AcqRel);
}

fn worker<S: Send + 'static>(shared: &Arc<Shared<S>>) {
    loop {
        if shared.closed.load(Ordering::Acquire) {
            return leave(shared);
        }
        let conn = match (shared.accept)(shared.cfg.idle_timeout) {
            Ok(Some(conn)) => conn,
            Ok(None) => {
                // Idle too long: exit, but leave at least one idle thread accepting.
                let exit = shared.idle.fetch_update(Ordering::AcqRel, Ordering::Acquire, |i| (i > 1).then(|| i - 1));
                if exit.is_ok() {
                    shared.total.fetch_sub(1, Ordering::AcqRel);
                    return;
                }
                continue;
            }
            Err(e) => {
                tracing::debug!("{}: accept stopped: {e}", shared.cfg.name);
                shared.closed.store(true, Ordering::Release);
                return leave(shared);
            }
        };
        if shared.idle.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Nobody else is waiting for the next connection.
            grow(shared);
        }
        let guard = PanicGuard(shared);
        (shared.handler)(conn);
        std::mem::forget(guard);
        shared.idle.fetch_add(1, Ordering::AcqRel);
    }
}

/// A handler that panics ends its thread: take it out of the count, and start a replacement
/// when no thread would accept otherwise.
struct PanicGuard<'a, S: Send + 'static>(&'a Arc<Shared<S>>);

impl<S: Send + 'static> Drop for PanicGuard<'_, S> {
    fn drop(&mut self) {
        let shared = self.0;
        shared.total.fetch_sub(1, Ordering::AcqRel);
        if shared.idle.load(Ordering::Acquire) == 0 && !shared.closed.load(Ordering::Acquire) {
            grow(shared);
        }
    }
}

#[cfg(test)]
mod tests;

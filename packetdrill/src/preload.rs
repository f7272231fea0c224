//! packetdrill fills a Python block's `tcpi_*` variables with a plain `getsockopt(fd,
//! SOL_TCP, TCP_INFO)` on the socket's live descriptor, not through the shared object's
//! interface. So the runner also preloads this object (LD_PRELOAD), and this `getsockopt`
//! answers for the descriptors synack handed out (all from `FD_BASE` up) and passes every
//! other call on to the C library's. Likewise `close`: at the end of a script packetdrill
//! closes the sockets the script left open with a plain `close` on their live descriptors.

use std::ffi::{c_int, c_void, CStr};
use std::sync::{Arc, Mutex, Weak};

use libc::socklen_t;

use crate::world::{Shared, FD_BASE};

static INSTANCE: Mutex<Option<Weak<Shared>>> = Mutex::new(None);

pub fn register(shared: &Arc<Shared>) {
    *INSTANCE.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::downgrade(shared));
}

pub fn unregister() {
    *INSTANCE.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Our instance, when `fd` is one of its descriptors.
fn ours(fd: c_int) -> Option<Arc<Shared>> {
    if fd < FD_BASE {
        return None;
    }
    let shared = INSTANCE.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(Weak::upgrade)?;
    let known = shared.lock().socks.contains_key(&fd);
    known.then_some(shared)
}

/// The C library's definition of `name` (NUL-terminated), found past this object.
unsafe fn next_symbol(name: &[u8]) -> *mut c_void {
    let sym = CStr::from_bytes_with_nul_unchecked(name);
    libc::dlsym(libc::RTLD_NEXT, sym.as_ptr())
}

type CloseFn = unsafe extern "C" fn(c_int) -> c_int;

/// # Safety
/// As `close(2)`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if let Some(shared) = ours(fd) {
        return crate::ffi::pd_close(Arc::as_ptr(&shared) as *mut c_void, fd);
    }
    let next = next_symbol(b"close\0");
    if next.is_null() {
        *libc::__errno_location() = libc::ENOSYS;
        return -1;
    }
    let real: CloseFn = std::mem::transmute(next);
    real(fd)
}

type GetsockoptFn = unsafe extern "C" fn(c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int;

/// # Safety
/// As `getsockopt(2)`.
#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    if let Some(shared) = ours(fd) {
        return crate::ffi::pd_getsockopt(Arc::as_ptr(&shared) as *mut c_void, fd, level, name, val, len);
    }
    let next = next_symbol(b"getsockopt\0");
    if next.is_null() {
        *libc::__errno_location() = libc::ENOSYS;
        return -1;
    }
    let real: GetsockoptFn = std::mem::transmute(next);
    real(fd, level, name, val, len)
}

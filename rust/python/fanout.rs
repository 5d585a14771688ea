//! One frame written to many sockets in one call: the broadcast fast path.
//!
//! `broadcast()` to N connections used to cost N trips through Python
//! (`transport.write`, its checks, then `socket.send`), about half of the
//! server's time per delivery. For connections whose transport has nothing
//! buffered, writing straight to the socket is what `transport.write` would
//! do anyway; this does it for all of them in one crossing, without the GIL.
//! Whatever a socket does not take at once (a full send buffer, an error) is
//! reported back, and the caller hands the rest to that connection's
//! transport, which buffers it or reports the error as usual.
//!
//! This is the bindings' only I/O: the core stays Sans-I/O.

use pyo3::prelude::*;

/// Writes `data` to each socket of `fds` without blocking.
///
/// Returns, for each socket that did not take all of `data`, its index in
/// `fds` and the bytes it took (0 when it took none, including on an error:
/// the transport's own write will meet the error again and report it).
#[pyfunction]
pub fn send_to_all(py: Python<'_>, fds: Vec<i32>, data: &[u8]) -> Vec<(usize, usize)> {
    if data.is_empty() {
        return Vec::new();
    }
    let many = fds.len() >= 16;
    let write = move || {
        let mut short = Vec::new();
        for (index, fd) in fds.into_iter().enumerate() {
            let sent = send_once(fd, data);
            if sent < data.len() {
                short.push((index, sent));
            }
        }
        short
    };
    // The GIL is released only when the calls are many enough to be worth it.
    if many {
        py.detach(write)
    } else {
        write()
    }
}

/// One non-blocking `send()`, retried on EINTR; the bytes taken (0 on error).
#[cfg(unix)]
fn send_once(fd: i32, data: &[u8]) -> usize {
    // MSG_NOSIGNAL: a peer that reset gives EPIPE, not SIGPIPE.
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let flags = libc::MSG_DONTWAIT;
    loop {
        // SAFETY: `data` is a live slice of `data.len()` bytes for the whole
        // call (the caller holds the Python object that owns it), and send()
        // only reads it. An invalid or closed `fd` makes send() fail with
        // EBADF or ENOTSOCK, which is reported as 0 bytes taken.
        let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), flags) };
        if n >= 0 {
            return n.unsigned_abs();
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return 0;
        }
    }
}

/// Without `send()`, nothing is written here: the transports write it all.
#[cfg(not(unix))]
fn send_once(_fd: i32, _data: &[u8]) -> usize {
    0
}

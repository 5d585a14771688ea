//! PyO3 bindings: the `ferrows._core` extension module.
//!
//! A thin layer: it converts arguments and results and maps core errors to
//! `ferrows.exceptions` (in `errors`). Calls cross once per network read and
//! once per frame sent; large payloads are processed with the GIL released.

mod connection;
mod errors;
mod events;
mod fanout;
mod fifo;
mod handshake;
mod sink;

use pyo3::prelude::*;

/// Payload size above which the binding releases the GIL around core work,
/// so that other threads run while a large frame is masked, inflated or
/// validated. Below it, releasing and reacquiring costs more than it saves.
pub(crate) const DETACH_THRESHOLD: usize = 64 * 1024;

/// Returns freed heap memory to the operating system (glibc's
/// `malloc_trim`). Freed compression state is scattered between live objects
/// in the heap, so without this a server that compacted its idle
/// connections kept their memory resident. The server calls it after a
/// sweep that freed state, at most once per sweep.
#[pyfunction]
fn release_memory(py: Python<'_>) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim has no preconditions; it only walks the heap.
        py.detach(|| unsafe { libc::malloc_trim(0) } != 0)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = py;
        false
    }
}

/// The `ferrows._core` module.
#[pymodule(gil_used = false)]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<connection::Connection>()?;
    connection::record_mask_source(m.py())?;
    m.add_class::<handshake::HttpParser>()?;
    m.add_class::<fifo::Fifo>()?;
    m.add_function(wrap_pyfunction!(handshake::accept_key, m)?)?;
    m.add_function(wrap_pyfunction!(handshake::generate_key, m)?)?;
    m.add_function(wrap_pyfunction!(handshake::is_valid_key, m)?)?;
    m.add_function(wrap_pyfunction!(handshake::upgrade_response, m)?)?;
    m.add_function(wrap_pyfunction!(handshake::scope_headers, m)?)?;
    m.add_function(wrap_pyfunction!(connection::apply_mask, m)?)?;
    m.add_function(wrap_pyfunction!(connection::encode_frame, m)?)?;
    m.add_function(wrap_pyfunction!(connection::deflate_message, m)?)?;
    m.add_function(wrap_pyfunction!(release_memory, m)?)?;
    m.add_function(wrap_pyfunction!(fanout::send_to_all, m)?)?;
    m.add_class::<events::PingReceived>()?;
    m.add_class::<events::PongReceived>()?;
    m.add_class::<events::CloseReceived>()?;
    m.add_class::<events::ProtocolViolation>()?;
    m.add_class::<events::Fragment>()?;
    Ok(())
}

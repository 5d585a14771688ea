//! The one place where core errors become Python exceptions.
//!
//! Exception classes live in `ferrows.exceptions` (Python), so that users can
//! subclass and catch them like websockets' own; this module looks them up
//! by name. These paths only run on errors, never on the hot path.

use pyo3::exceptions::{PyEOFError, PyUnicodeDecodeError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::{HttpError, SendError, Violation};

fn exception<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("ferrows.exceptions")?.getattr(name)
}

fn make<'py, A>(py: Python<'py>, name: &str, args: A) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    match exception(py, name).and_then(|cls| cls.call1(args)) {
        Ok(value) => PyErr::from_value(value),
        Err(err) => err,
    }
}

/// The exception that explains why the connection failed, as websockets
/// reports it in `Protocol.parser_exc` and `ConnectionClosed.__cause__`.
pub fn violation(py: Python<'_>, v: &Violation) -> PyErr {
    match v {
        Violation::MessageTooBig { size, max_size } => make(py, "PayloadTooBig", (*size, *max_size)),
        Violation::TooManyFragments { max_fragments } => make(py, "TooManyFragments", (*max_fragments,)),
        Violation::UnexpectedEof => PyEOFError::new_err("unexpected EOF"),
        Violation::InvalidUtf8 { position } => {
            let pos = (*position).max(0) as usize;
            let placeholder = PyBytes::new(py, &vec![0u8; pos + 1]);
            match PyUnicodeDecodeError::new(py, c"utf-8", placeholder.as_bytes(), pos..pos + 1, c"invalid UTF-8") {
                Ok(e) => PyErr::from_value(e.into_any()),
                Err(e) => e,
            }
        }
        other => make(py, "ProtocolError", (other.to_string(),)),
    }
}

/// Misuse of the sending API: `InvalidState` or `ProtocolError`.
pub fn send_error(py: Python<'_>, e: SendError) -> PyErr {
    match e {
        SendError::InvalidState(_) => make(py, "InvalidState", (e.to_string(),)),
        SendError::Protocol(msg) => make(py, "ProtocolError", (msg,)),
    }
}

/// A handshake message that cannot be accepted. The exception carries the
/// HTTP status a server answers with in its `status` attribute.
pub fn http_error(py: Python<'_>, e: &HttpError) -> PyErr {
    let msg = e.to_string();
    let err = match e {
        HttpError::RequestLineTooLong { .. } => make(py, "RequestLineTooLong", (msg,)),
        HttpError::StatusLineTooLong { .. } => make(py, "StatusLineTooLong", (msg,)),
        HttpError::HeaderLineTooLong { .. } => make(py, "HeaderLineTooLong", (msg,)),
        HttpError::TooManyHeaders { .. } => make(py, "TooManyHeaders", (msg,)),
        HttpError::BodyTooLarge { .. } => make(py, "SecurityError", (msg,)),
        HttpError::UnsupportedProtocol(p) => make(py, "InvalidProtocol", (p.clone(),)),
        HttpError::Eof(_) => PyEOFError::new_err(msg),
        _ => make(py, "InvalidMessage", (msg,)),
    };
    // Garbage (not HTTP at all) gets the connection closed without an
    // answer; a well-formed request over a limit gets its status.
    let garbage = matches!(
        e,
        HttpError::InvalidLine(_)
            | HttpError::InvalidRequestLine(_)
            | HttpError::InvalidStatusLine(_)
            | HttpError::Eof(_)
    );
    let status = if garbage { None } else { Some(e.status()) };
    let _ = err.value(py).setattr("status", status);
    err
}

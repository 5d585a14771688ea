//! The one place where core errors become Python exceptions.
//!
//! Exception classes live in `ferrows.exceptions` (Python), so that users can
//! subclass and catch them like websockets' own. Each class is imported once,
//! on its first use, and kept in a [`PyOnceLock`]: a connection failing with
//! a protocol error does not look up a module and an attribute by name.

use pyo3::exceptions::{PyEOFError, PyUnicodeDecodeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

use crate::error::{utf8_error_span, HttpError, SendError, Violation};

/// A class of `ferrows.exceptions`, imported on first use.
struct Class {
    name: &'static str,
    cell: PyOnceLock<Py<PyType>>,
}

impl Class {
    const fn new(name: &'static str) -> Self {
        Class {
            name,
            cell: PyOnceLock::new(),
        }
    }

    /// An instance built with positional `args` and, if given, the HTTP
    /// `status` keyword of the handshake exceptions that take it.
    fn make<'py, A>(&self, py: Python<'py>, args: A, status: Option<Option<u16>>) -> PyErr
    where
        A: pyo3::call::PyCallArgs<'py>,
    {
        let result = self.cell.import(py, "ferrows.exceptions", self.name).and_then(|cls| {
            let kwargs = match status {
                Some(status) => {
                    let kwargs = PyDict::new(py);
                    kwargs.set_item("status", status)?;
                    Some(kwargs)
                }
                None => None,
            };
            cls.call(args, kwargs.as_ref())
        });
        match result {
            Ok(value) => PyErr::from_value(value),
            Err(err) => err,
        }
    }
}

static PROTOCOL_ERROR: Class = Class::new("ProtocolError");
static PAYLOAD_TOO_BIG: Class = Class::new("PayloadTooBig");
static TOO_MANY_FRAGMENTS: Class = Class::new("TooManyFragments");
static INVALID_STATE: Class = Class::new("InvalidState");
static REQUEST_LINE_TOO_LONG: Class = Class::new("RequestLineTooLong");
static STATUS_LINE_TOO_LONG: Class = Class::new("StatusLineTooLong");
static HEADER_LINE_TOO_LONG: Class = Class::new("HeaderLineTooLong");
static TOO_MANY_HEADERS: Class = Class::new("TooManyHeaders");
static SECURITY_ERROR: Class = Class::new("SecurityError");
static INVALID_MESSAGE: Class = Class::new("InvalidMessage");

/// The exception that explains why the connection failed, as websockets
/// reports it in `Protocol.parser_exc` and `ConnectionClosed.__cause__`.
pub fn violation(py: Python<'_>, v: &Violation) -> PyErr {
    match v {
        Violation::MessageTooBig { size, max_size } => PAYLOAD_TOO_BIG.make(py, (*size, *max_size), None),
        // PayloadTooBig(size, limit left for the frame, current_size) adds
        // current_size back to its max_size, as websockets' does.
        Violation::FrameTooBig {
            size,
            current,
            max_size,
        } => {
            let left = *max_size as u64 - current.unwrap_or(0).min(*max_size as u64);
            PAYLOAD_TOO_BIG.make(py, (*size, left, *current), None)
        }
        Violation::TooManyFragments { max_fragments } => TOO_MANY_FRAGMENTS.make(py, (*max_fragments,), None),
        Violation::UnexpectedEof | Violation::TruncatedFrame { .. } => PyEOFError::new_err(v.to_string()),
        Violation::InvalidUtf8 { data, position } => unicode_decode_error(py, data, *position),
        other => PROTOCOL_ERROR.make(py, (other.to_string(),), None),
    }
}

/// The `UnicodeDecodeError` that `data.decode()` raises in Python: the
/// bytes that failed, the span of the invalid sequence and CPython's reason
/// for it, so that `exc.object[exc.start:exc.end]` is the offending bytes.
fn unicode_decode_error(py: Python<'_>, data: &[u8], position: usize) -> PyErr {
    let start = position.min(data.len());
    let (end, reason) = utf8_error_span(data, position);
    let reason = match std::ffi::CString::new(reason) {
        Ok(reason) => reason,
        Err(e) => return PyValueError::new_err(e.to_string()),
    };
    match PyUnicodeDecodeError::new(py, c"utf-8", data, start..end, &reason) {
        Ok(e) => PyErr::from_value(e.into_any()),
        Err(e) => e,
    }
}

/// Misuse of the sending API: `InvalidState` or `ProtocolError`.
pub fn send_error(py: Python<'_>, e: SendError) -> PyErr {
    match e {
        SendError::InvalidState(_) => INVALID_STATE.make(py, (e.to_string(),), None),
        SendError::Protocol(msg) => PROTOCOL_ERROR.make(py, (msg,), None),
    }
}

/// A handshake message that cannot be accepted. The exception's `status`
/// attribute (declared by `InvalidHandshake`) is the HTTP status a server
/// answers with: the limit classes declare theirs, the others receive it
/// from here. Garbage (not HTTP at all) is a `ValueError`, as websockets'
/// parser raises it, without `status`: the connection is closed without an
/// answer.
pub fn http_error(py: Python<'_>, e: &HttpError) -> PyErr {
    match e {
        HttpError::RequestLineTooLong { limit, read } => REQUEST_LINE_TOO_LONG.make(py, (*limit, *read), None),
        HttpError::StatusLineTooLong { limit, read } => STATUS_LINE_TOO_LONG.make(py, (*limit, *read), None),
        HttpError::HeaderLineTooLong { limit, read } => HEADER_LINE_TOO_LONG.make(py, (*limit, *read), None),
        HttpError::TooManyHeaders { limit } => TOO_MANY_HEADERS.make(py, (*limit,), None),
        HttpError::BodyTooLarge { .. } => SECURITY_ERROR.make(py, (e.to_string(),), Some(Some(e.status()))),
        HttpError::Eof(_) => PyEOFError::new_err(e.to_string()),
        // Not HTTP: the ValueError of websockets' parser, which the
        // protocols chain to their InvalidMessage.
        HttpError::InvalidLine(_)
        | HttpError::InvalidRequestLine(_)
        | HttpError::InvalidStatusLine(_)
        | HttpError::UnsupportedProtocol(_) => PyValueError::new_err(e.to_string()),
        HttpError::InvalidHeader(_)
        | HttpError::RequestBody
        | HttpError::TransferEncoding
        | HttpError::InvalidContentLength(_) => INVALID_MESSAGE.make(py, (e.to_string(),), Some(Some(e.status()))),
    }
}

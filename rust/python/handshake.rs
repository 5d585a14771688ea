//! `_core.HttpParser` and the handshake key functions.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors;
use crate::handshake::{self as core, Kind, Limits, Message};

/// Incremental parser of an HTTP/1.1 request (server side) or response
/// (client side), with hard limits.
///
/// `feed` returns None until the message is complete, then
/// `(method, path, protocol, headers)` for a request or
/// `(protocol, status, reason, headers, body)` for a response, where headers
/// is a list of `(name, value)` pairs.
#[pyclass(module = "ferrows._core", name = "HttpParser")]
pub struct HttpParser {
    inner: core::Parser,
}

fn convert<'py>(py: Python<'py>, m: Option<Message>) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(match m {
        None => None,
        Some(Message::Request(r)) => Some((r.method, r.path, r.protocol, r.headers).into_pyobject(py)?.into_any()),
        Some(Message::Response(r)) => Some(
            (r.protocol, r.status, r.reason, r.headers, PyBytes::new(py, &r.body))
                .into_pyobject(py)?
                .into_any(),
        ),
    })
}

#[pymethods]
impl HttpParser {
    #[new]
    #[pyo3(signature = (response, *, max_line = 8192, max_headers = 128, max_body = 1 << 20))]
    fn new(response: bool, max_line: usize, max_headers: usize, max_body: usize) -> Self {
        let kind = if response { Kind::Response } else { Kind::Request };
        HttpParser {
            inner: core::Parser::new(
                kind,
                Limits {
                    max_line,
                    max_headers,
                    max_body,
                },
            ),
        }
    }

    /// Feeds bytes; returns the parsed message once complete.
    fn feed<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Option<Bound<'py, PyAny>>> {
        let m = self.inner.feed(data).map_err(|e| errors::http_error(py, &e))?;
        convert(py, m)
    }

    /// Records EOF: completes a body read until EOF, or raises.
    fn feed_eof<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let m = self.inner.feed_eof().map_err(|e| errors::http_error(py, &e))?;
        convert(py, m)
    }

    /// Bytes received after the message.
    fn take_remaining<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.take_remaining())
    }
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 section 4.2.2).
#[pyfunction]
pub fn accept_key(key: &str) -> String {
    core::accept_key(key)
}

/// A random `Sec-WebSocket-Key`.
#[pyfunction]
pub fn generate_key() -> String {
    core::generate_key()
}

/// Whether `key` is base64 for 16 bytes.
#[pyfunction]
pub fn is_valid_key(key: &str) -> bool {
    core::is_valid_key(key)
}

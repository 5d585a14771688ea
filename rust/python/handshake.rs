//! `_core.HttpParser` and the handshake key functions.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

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

    /// Feeds bytes of a request; once it is complete, returns
    /// `(method, path, protocol, headers, remaining, upgrade)` where
    /// `headers` is every header in one string (`name NUL value NUL ...`,
    /// the packed form of `Headers`), `remaining` the bytes received after
    /// the request, and `upgrade` `(accept, origin, extensions,
    /// subprotocols)` when the request is a plain valid WebSocket upgrade
    /// (see `check_upgrade` in the core), None otherwise. One call parses
    /// and checks the request and computes the accept value, without a
    /// Python object per header.
    fn feed_upgrade<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let m = self.inner.feed(data).map_err(|e| errors::http_error(py, &e))?;
        let Some(Message::Request(r)) = m else {
            return Ok(None);
        };
        let remaining = PyBytes::new(py, &self.inner.take_remaining());
        let upgrade = match core::check_upgrade(&r) {
            None => py.None().into_bound(py),
            Some(u) => (
                u.accept,
                u.origin,
                PyTuple::new(py, u.extensions)?,
                PyList::new(py, u.subprotocols)?,
            )
                .into_pyobject(py)?
                .into_any(),
        };
        let packed = core::pack_headers(&r.headers);
        Ok(Some(
            (r.method, r.path, r.protocol, packed, remaining, upgrade).into_pyobject(py)?,
        ))
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

/// The 101 accepting an upgrade: `(head, headers)`, the head as sent and
/// its headers packed (`name NUL value NUL ...`); None when a value or a
/// name of `extra` is not one HTTP allows.
#[pyfunction]
#[pyo3(signature = (accept, date, extensions, subprotocol, extra = Vec::new()))]
// PyO3 extracts a sequence argument into an owned Vec only.
#[allow(clippy::needless_pass_by_value)]
pub fn upgrade_response<'py>(
    py: Python<'py>,
    accept: &str,
    date: Option<&str>,
    extensions: Option<&str>,
    subprotocol: Option<&str>,
    extra: Vec<(String, String)>,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let Some((head, packed)) = core::upgrade_response(accept, date, extensions, subprotocol, &extra) else {
        return Ok(None);
    };
    Ok(Some((PyBytes::new(py, &head), packed).into_pyobject(py)?))
}

/// An ASGI scope's `headers` from packed headers: `(name, value)` pairs of
/// bytes, names in lower case, values encoded as ISO-8859-1.
#[pyfunction]
pub fn scope_headers<'py>(py: Python<'py>, packed: &str) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    if packed.is_empty() {
        return Ok(list);
    }
    let mut parts = packed.split('\0');
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        let name = PyBytes::new(py, name.to_ascii_lowercase().as_bytes());
        let value: Vec<u8> = value.chars().map(|c| c as u8).collect();
        list.append((name, PyBytes::new(py, &value)))?;
    }
    Ok(list)
}

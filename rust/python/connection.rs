//! `_core.Connection`: the frame-level connection for the Python layers.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyEOFError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::events::{CloseReceived, Fragment, PingReceived, PongReceived, ProtocolViolation};
use super::sink::{BytesSink, BytesSinkFactory};
use super::{errors, DETACH_THRESHOLD};
use crate::close::CloseFrame;
use crate::connection::{self as core, Config, Event, Role};
use crate::deflate::{compress_message, DeflateParams, PerMessageDeflate};
use crate::error::close_code;
use crate::frame::{write_header, FrameHeader, OpCode};
use crate::mask;

/// Runs `f` over the bytes of a bytes-like or str argument. `bytes` and `str`
/// are used in place; other buffers (bytearray, memoryview) are copied first,
/// because their contents could change while the GIL is released.
fn with_bytes<R>(data: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    if let Ok(s) = data.cast::<PyString>() {
        return Ok(f(s.to_str()?.as_bytes()));
    }
    match PyBuffer::<u8>::get(data) {
        Ok(buf) => Ok(f(&buf.to_vec(data.py())?)),
        Err(_) => Err(PyTypeError::new_err(format!(
            "data must be str or a bytes-like object, not {}",
            data.get_type().name()?
        ))),
    }
}

/// A WebSocket connection after the handshake, over the Rust core.
///
/// `receive_data` returns the events found in the bytes: `str` and `bytes`
/// for whole messages when `assemble` is true (with `fragments` too, a
/// `Fragment` for each frame of a fragmented message), otherwise tuples
/// `(opcode, payload, fin, rsv)` for data frames; `PingReceived`,
/// `PongReceived`, `CloseReceived` for control frames, and
/// `ProtocolViolation` when the peer violated the protocol (see
/// `parser_exc`). `send_*` methods return the bytes to write.
#[pyclass(module = "ferrows._core", name = "Connection")]
pub struct Connection {
    inner: core::Connection,
}

fn close_tuple(c: Option<&CloseFrame>) -> Option<(u16, String)> {
    c.map(|c| (c.code, c.reason.clone()))
}

/// Where clients' masking keys come from when the application replaced
/// `secrets.token_bytes` (see [`replaced_mask`]).
struct MaskSource {
    /// The namespace of Python's `secrets` module.
    namespace: Py<PyDict>,
    /// `"token_bytes"`, its hash computed once.
    name: Py<PyString>,
    /// `secrets.token_bytes` as it was when `ferrows._core` was imported.
    original: Py<PyAny>,
}

static TOKEN_BYTES: PyOnceLock<MaskSource> = PyOnceLock::new();

/// Records `secrets.token_bytes` at import, so that a replacement can be
/// told from it later (see [`replaced_mask`]).
pub fn record_mask_source(py: Python<'_>) -> PyResult<()> {
    TOKEN_BYTES.get_or_try_init(py, || {
        let secrets = py.import("secrets")?;
        let name = PyString::intern(py, "token_bytes");
        name.hash()?;
        let original = secrets.getattr(&name)?;
        Ok::<_, PyErr>(MaskSource {
            namespace: secrets.dict().unbind(),
            name: name.unbind(),
            original: original.unbind(),
        })
    })?;
    Ok(())
}

/// The masking key `secrets.token_bytes(4)` gives when the application
/// replaced that function (websockets draws its masks from it, so tests
/// and users patch it for deterministic frames); `None` while it is the
/// original, whose keys the core draws faster from the same OS source.
/// One dictionary lookup (in the module's namespace, where `patch()` and
/// assignments put the replacement) and a pointer comparison per call:
/// clients pay it once per send or read, servers never.
fn replaced_mask(py: Python<'_>) -> PyResult<Option<[u8; 4]>> {
    let Some(source) = TOKEN_BYTES.get(py) else {
        return Ok(None);
    };
    // SAFETY: the namespace and the name are live objects, kept by the
    // static, and the GIL is held. PyDict_GetItemWithError returns a
    // borrowed reference, or NULL with or without an exception set; with a
    // str key whose hash is cached, in a dict of str keys, it runs no Python
    // code, so the entry cannot go away before the comparison below, which
    // is all the borrowed pointer is used for. (PyDict_GetItem would save
    // and restore the error state on every call.)
    let current = unsafe { pyo3::ffi::PyDict_GetItemWithError(source.namespace.as_ptr(), source.name.as_ptr()) };
    if current.is_null() {
        // Deleted: the core's own keys; or a lookup error, raised.
        return PyErr::take(py).map_or(Ok(None), Err);
    }
    if current == source.original.as_ptr() {
        return Ok(None);
    }
    let current = source.namespace.bind(py).get_item(source.name.bind(py))?;
    let Some(current) = current else {
        return Ok(None);
    };
    let key = current.call1((4,))?;
    let key = key
        .cast::<PyBytes>()
        .ok()
        .and_then(|b| <[u8; 4]>::try_from(b.as_bytes()).ok());
    key.map(Some)
        .ok_or_else(|| PyValueError::new_err("secrets.token_bytes(4) must return 4 bytes"))
}

impl Connection {
    /// Runs `f`, which may write frames, with the masking key of a replaced
    /// `secrets.token_bytes` (see [`replaced_mask`]) for a client.
    fn masking<R>(&mut self, py: Python<'_>, f: impl FnOnce(&mut Self) -> PyResult<R>) -> PyResult<R> {
        if self.inner.config().role == Role::Server {
            return f(self);
        }
        let Some(key) = replaced_mask(py)? else {
            return f(self);
        };
        self.inner.set_mask_override(Some(key));
        let result = f(self);
        self.inner.set_mask_override(None);
        result
    }

    /// A ping or a pong, with the RSV bits extensions above the core set.
    fn send_control<'py>(
        &mut self,
        py: Python<'py>,
        opcode: OpCode,
        data: &Bound<'py, PyAny>,
        rsv: u8,
    ) -> PyResult<Bound<'py, PyBytes>> {
        with_bytes(data, |b| self.inner.send_control_frame(opcode, b, rsv))?.map_err(|e| errors::send_error(py, e))?;
        Ok(self.drain(py))
    }

    /// Frames a data frame: straight into the returned bytes when possible
    /// (one copy of the payload, masked in place), through the core's
    /// output buffer otherwise.
    fn send_data<'py>(
        &mut self,
        py: Python<'py>,
        opcode: OpCode,
        data: &Bound<'py, PyAny>,
        fin: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &mut self.inner;
        let direct = with_bytes(data, |payload| match inner.begin_frame(opcode, payload.len(), fin) {
            Ok(Some(start)) => {
                let head = start.header_len;
                Some(PyBytes::new_with(py, head + payload.len(), |out| {
                    out[..head].copy_from_slice(&start.header[..head]);
                    let body = &mut out[head..];
                    detach_if_large(py, payload.len(), || match start.mask {
                        Some(key) => mask::copy_masked(body, payload, key, 0),
                        None => body.copy_from_slice(payload),
                    });
                    Ok(())
                }))
            }
            Ok(None) => None,
            Err(e) => Some(Err(errors::send_error(py, e))),
        })?;
        if let Some(frame) = direct {
            return frame;
        }
        let inner = &mut self.inner;
        with_bytes(data, |b| {
            detach_if_large(py, b.len(), || inner.send_frame(opcode, b, fin, 0))
        })?
        .map_err(|e| errors::send_error(py, e))?;
        Ok(self.drain(py))
    }

    fn drain<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let out = PyBytes::new(py, self.inner.pending_output());
        self.inner.clear_output();
        out
    }

    fn events<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let events = self.inner.take_events();
        // The sinks of this batch's BinarySink events, taken together so
        // that an error below drops both rather than misaligning them.
        let mut sinks = std::iter::from_fn(|| self.inner.take_sink()).collect::<std::collections::VecDeque<_>>();
        let list = PyList::empty(py);
        for event in events {
            let item: Bound<'py, PyAny> = match event {
                Event::Text(s) => PyString::new(py, &s).into_any(),
                Event::Binary(b) => PyBytes::new(py, &b).into_any(),
                Event::TextFragment { data, fin } => Bound::new(
                    py,
                    Fragment {
                        data: PyString::new(py, &data).into_any().unbind(),
                        fin,
                    },
                )?
                .into_any(),
                Event::BinaryFragment { data, fin } => Bound::new(
                    py,
                    Fragment {
                        data: PyBytes::new(py, &data).into_any().unbind(),
                        fin,
                    },
                )?
                .into_any(),
                Event::BinarySink => {
                    let sink = sinks.pop_front().expect("a sink per BinarySink event");
                    let sink = sink
                        .into_any()
                        .downcast::<BytesSink>()
                        .expect("the binding's own sinks");
                    sink.into_bytes().into_bound(py).into_any()
                }
                Event::Frame {
                    opcode,
                    fin,
                    rsv,
                    payload,
                } => (opcode as i32, PyBytes::new(py, &payload), fin, rsv)
                    .into_pyobject(py)?
                    .into_any(),
                Event::Ping(p) => PingReceived::create(py, &p)?.into_any(),
                Event::Pong(p) => PongReceived::create(py, &p)?.into_any(),
                Event::Close(p) => CloseReceived::create(py, &p)?.into_any(),
                Event::Failed => {
                    let code = self
                        .inner
                        .failure()
                        .map_or(close_code::PROTOCOL_ERROR, |v| v.close_code());
                    Bound::new(py, ProtocolViolation { code })?.into_any()
                }
            };
            list.append(item)?;
        }
        Ok(list)
    }
}

#[pymethods]
impl Connection {
    #[new]
    #[pyo3(signature = (client, *, max_size = Some(1 << 20), max_fragments = Some(4096), max_frame = None, assemble = false, fragments = false, extra_rsv = 0, check_text = true, defer_failure = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        client: bool,
        max_size: Option<usize>,
        max_fragments: Option<usize>,
        max_frame: Option<usize>,
        assemble: bool,
        fragments: bool,
        extra_rsv: u8,
        check_text: bool,
        defer_failure: bool,
    ) -> Self {
        let role = if client { Role::Client } else { Role::Server };
        let config = Config {
            role,
            max_size,
            max_fragments,
            max_frame,
            assemble,
            fragments,
            extra_rsv,
            check_text,
            defer_failure,
        };
        let mut inner = core::Connection::new(config);
        inner.set_sink_factory(Box::new(BytesSinkFactory));
        Connection { inner }
    }

    /// Feeds bytes read from the network; returns the events they complete.
    fn receive_data<'py>(&mut self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        // The replies it queues (pongs, close frames) are masked too.
        self.masking(py, |this| {
            let inner = &mut this.inner;
            let result = with_bytes(data, |bytes| {
                if bytes.len() >= DETACH_THRESHOLD {
                    py.detach(|| inner.receive_data(bytes))
                } else {
                    inner.receive_data(bytes)
                }
            })?;
            result.map_err(PyEOFError::new_err)
        })?;
        self.events(py)
    }

    /// Records the peer's EOF; returns the resulting events.
    fn receive_eof<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.inner.receive_eof();
        self.events(py)
    }

    /// Sends a text frame; `data` is a str or UTF-8 bytes.
    #[pyo3(signature = (data, fin = true))]
    fn send_text<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        fin: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.masking(py, |this| this.send_data(py, OpCode::Text, data, fin))
    }

    /// Sends a binary frame.
    #[pyo3(signature = (data, fin = true))]
    fn send_binary<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        fin: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.masking(py, |this| this.send_data(py, OpCode::Binary, data, fin))
    }

    /// Sends a continuation frame.
    #[pyo3(signature = (data, fin))]
    fn send_continuation<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        fin: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.masking(py, |this| this.send_data(py, OpCode::Continuation, data, fin))
    }

    /// Frames any frame but a close frame: data frames (text, binary,
    /// continuation) and pings and pongs, by opcode. The one entry point
    /// `ferrows.protocol.Protocol.send_data` forwards to.
    #[pyo3(signature = (opcode, data, fin = true))]
    fn send_data_frame<'py>(
        &mut self,
        py: Python<'py>,
        opcode: u8,
        data: &Bound<'py, PyAny>,
        fin: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        match OpCode::from_u8(opcode) {
            Ok(op @ (OpCode::Ping | OpCode::Pong)) => self.masking(py, |this| this.send_control(py, op, data, 0)),
            Ok(OpCode::Close) | Err(_) => Err(PyValueError::new_err(format!(
                "cannot send opcode {opcode} with send_data"
            ))),
            Ok(op) => self.masking(py, |this| this.send_data(py, op, data, fin)),
        }
    }

    /// Starts a data frame whose payload the caller writes itself,
    /// unchanged, right after the returned header: a server sending a large
    /// message then copies nothing. `None` when the payload must go through
    /// `send_*` instead (clients mask it, extensions transform it, earlier
    /// output must go first); the frame is then not started.
    fn send_header<'py>(
        &mut self,
        py: Python<'py>,
        opcode: u8,
        length: usize,
        fin: bool,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let opcode = OpCode::from_u8(opcode).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let start = self
            .inner
            .begin_plain_frame(opcode, length, fin)
            .map_err(|e| errors::send_error(py, e))?;
        Ok(start.map(|s| PyBytes::new(py, &s.header[..s.header_len])))
    }

    /// Sends a frame that Python extensions encoded, with its RSV bits: a
    /// data frame, a ping or a pong.
    fn send_frame<'py>(
        &mut self,
        py: Python<'py>,
        opcode: u8,
        data: &Bound<'py, PyAny>,
        fin: bool,
        rsv: u8,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let opcode = match OpCode::from_u8(opcode) {
            // Close frames go through send_close, which checks them.
            Ok(OpCode::Close) | Err(_) => {
                return Err(PyValueError::new_err(format!(
                    "cannot send opcode {opcode} with send_frame"
                )))
            }
            Ok(op) => op,
        };
        self.masking(py, |this| {
            if matches!(opcode, OpCode::Ping | OpCode::Pong) {
                return this.send_control(py, opcode, data, rsv);
            }
            let inner = &mut this.inner;
            with_bytes(data, |b| inner.send_frame(opcode, b, fin, rsv))?.map_err(|e| errors::send_error(py, e))?;
            Ok(this.drain(py))
        })
    }

    /// Sends a ping.
    fn send_ping<'py>(&mut self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        self.masking(py, |this| this.send_control(py, OpCode::Ping, data, 0))
    }

    /// Sends a pong.
    fn send_pong<'py>(&mut self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        self.masking(py, |this| this.send_control(py, OpCode::Pong, data, 0))
    }

    /// Sends a close frame; `code=None` sends one without a status code.
    #[pyo3(signature = (code = None, reason = ""))]
    fn send_close<'py>(&mut self, py: Python<'py>, code: Option<u16>, reason: &str) -> PyResult<Bound<'py, PyBytes>> {
        self.masking(py, |this| {
            this.inner
                .send_close(code, reason)
                .map_err(|e| errors::send_error(py, e))?;
            Ok(this.drain(py))
        })
    }

    /// Whether a violation waits for `fail_pending`.
    #[getter]
    fn defer_failure(&self) -> bool {
        self.inner.config().defer_failure
    }

    #[setter]
    fn set_defer_failure(&mut self, value: bool) {
        self.inner.set_defer_failure(value);
    }

    /// Fails the connection with `code` (RFC 6455 section 7.1.7).
    #[pyo3(signature = (code, reason = ""))]
    fn fail(&mut self, py: Python<'_>, code: u16, reason: &str) -> PyResult<()> {
        self.masking(py, |this| {
            this.inner.fail(code, reason);
            Ok(())
        })
    }

    /// With `defer_failure=True`, applies the peer's violation reported by
    /// the last `ProtocolViolation` event: queues the close frame with `failure_code`
    /// (and EOF for a server) in `data_to_send()`. Returns whether it did:
    /// False without a pending failure, once applied, after `fail()`, or
    /// once the connection is closed.
    fn fail_pending(&mut self, py: Python<'_>) -> PyResult<bool> {
        self.masking(py, |this| Ok(this.inner.fail_pending()))
    }

    /// Adds permessage-deflate with negotiated parameters (RFC 7692).
    #[pyo3(signature = (
        remote_no_context_takeover,
        local_no_context_takeover,
        remote_max_window_bits,
        local_max_window_bits,
        level = 6,
        mem_level = 8,
    ))]
    fn enable_deflate(
        &mut self,
        remote_no_context_takeover: bool,
        local_no_context_takeover: bool,
        remote_max_window_bits: u8,
        local_max_window_bits: u8,
        level: i32,
        mem_level: i32,
    ) -> PyResult<()> {
        check_deflate_settings(&[remote_max_window_bits, local_max_window_bits], level, mem_level)?;
        self.inner.add_extension(Box::new(PerMessageDeflate::new(DeflateParams {
            remote_no_context_takeover,
            local_no_context_takeover,
            remote_max_window_bits,
            local_max_window_bits,
            level,
            mem_level,
        })));
        Ok(())
    }

    /// Bytes to write, then `b""` when the transport must be half-closed.
    fn data_to_send<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        if !self.inner.pending_output().is_empty() {
            list.append(self.drain(py))?;
        }
        if self.inner.take_eof() {
            list.append(PyBytes::new(py, b""))?;
        }
        Ok(list)
    }

    /// Frees extension state (compression contexts) if no data frame went
    /// through the extensions since the previous call; returns whether it
    /// did. The I/O layer calls it periodically.
    fn compact_if_idle(&mut self) -> bool {
        self.inner.compact_if_idle()
    }

    /// Holds back pongs while `hold` is true; releasing queues one pong for
    /// the latest ping (RFC 6455 section 5.5.3). Returns whether bytes are
    /// now waiting in `data_to_send()`.
    fn hold_pongs(&mut self, py: Python<'_>, hold: bool) -> PyResult<bool> {
        self.masking(py, |this| {
            this.inner.hold_pongs(hold);
            Ok(this.inner.has_output())
        })
    }

    /// Whether the TCP connection is expected to close soon.
    fn close_expected(&self) -> bool {
        self.inner.close_expected()
    }

    /// Uses a fixed masking key (tests only: real clients need random keys).
    fn set_fixed_mask(&mut self, key: [u8; 4]) {
        self.inner.set_fixed_mask(key);
    }

    /// State as an int: 1 OPEN, 2 CLOSING, 3 CLOSED.
    #[getter]
    fn state(&self) -> u8 {
        self.inner.state() as u8
    }

    /// `(code, reason)` of the close frame received, or None.
    #[getter]
    fn close_rcvd(&self) -> Option<(u16, String)> {
        close_tuple(self.inner.close_rcvd())
    }

    /// `(code, reason)` of the close frame sent, or None.
    #[getter]
    fn close_sent(&self) -> Option<(u16, String)> {
        close_tuple(self.inner.close_sent())
    }

    /// Whether the close frame was received before ours was sent.
    #[getter]
    fn close_rcvd_then_sent(&self) -> Option<bool> {
        self.inner.close_rcvd_then_sent()
    }

    /// True once EOF was queued for sending.
    #[getter]
    fn eof_sent(&self) -> bool {
        self.inner.eof_sent()
    }

    /// True when the outgoing side is in the middle of a fragmented message.
    #[getter]
    fn sending_fragments(&self) -> bool {
        self.inner.sending_fragments()
    }

    /// The exception describing the peer's violation, or None.
    #[getter]
    fn parser_exc(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.inner
            .failure()
            .map(|v| errors::violation(py, v).into_value(py).into_any())
    }

    /// Close code matching `parser_exc`, or None.
    #[getter]
    fn failure_code(&self) -> Option<u16> {
        self.inner.failure().map(|v| v.close_code())
    }

    /// Message size limit in bytes, None for no limit.
    #[getter]
    fn max_size(&self) -> Option<usize> {
        self.inner.config().max_size
    }

    #[setter]
    fn set_max_size(&mut self, value: Option<usize>) {
        self.inner.set_max_size(value);
    }

    /// Whether messages are delivered whole (see the class docstring).
    #[getter]
    fn assemble(&self) -> bool {
        self.inner.config().assemble
    }

    #[setter]
    fn set_assemble(&mut self, value: bool) {
        self.inner.set_assemble(value);
    }

    /// Whether, when assembling, the frames of a fragmented message come
    /// as `Fragment` events as they arrive rather than as one message.
    #[getter]
    fn fragments(&self) -> bool {
        self.inner.config().fragments
    }

    #[setter]
    fn set_fragments(&mut self, value: bool) {
        self.inner.set_fragments(value);
    }
}

fn detach_if_large<R: Send>(py: Python<'_>, len: usize, f: impl FnOnce() -> R + Send) -> R {
    if len >= DETACH_THRESHOLD {
        py.detach(f)
    } else {
        f()
    }
}

/// Builds one unmasked frame, as a server sends it: `broadcast` encodes a
/// message once with this and writes the same bytes to every connection.
#[pyfunction]
#[pyo3(signature = (opcode, data, fin = true, rsv = 0))]
pub fn encode_frame<'py>(
    py: Python<'py>,
    opcode: u8,
    data: &Bound<'py, PyAny>,
    fin: bool,
    rsv: u8,
) -> PyResult<Bound<'py, PyBytes>> {
    let opcode = OpCode::from_u8(opcode).map_err(|e| PyValueError::new_err(e.to_string()))?;
    with_bytes(data, |payload| {
        let header = FrameHeader::encoded_len(payload.len(), false);
        PyBytes::new_with(py, header + payload.len(), |out| {
            let mut head = Vec::with_capacity(header);
            write_header(&mut head, fin, rsv, opcode, payload.len(), None);
            out[..header].copy_from_slice(&head);
            out[header..].copy_from_slice(payload);
            Ok(())
        })
    })?
}

/// Window bits 8-15 (RFC 7692 section 7.1.2): the core sends uncompressed
/// with an 8-bit window of its own, which zlib cannot compress with, and
/// inflates an 8-bit peer's output with 9 bits.
fn check_deflate_settings(window_bits: &[u8], level: i32, mem_level: i32) -> PyResult<()> {
    if window_bits.iter().any(|b| !(8..=15).contains(b)) {
        return Err(PyValueError::new_err("max_window_bits must be between 8 and 15"));
    }
    if !(0..=9).contains(&level) || !(1..=9).contains(&mem_level) {
        return Err(PyValueError::new_err("level must be 0-9 and memLevel 1-9"));
    }
    Ok(())
}

/// Compresses a whole message without context, as a connection that
/// negotiated no context takeover for its sending side would: `broadcast`
/// compresses once with this and shares the frame.
#[pyfunction]
#[pyo3(signature = (data, window_bits, level = 6, mem_level = 8))]
pub fn deflate_message<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    window_bits: u8,
    level: i32,
    mem_level: i32,
) -> PyResult<Bound<'py, PyBytes>> {
    check_deflate_settings(&[window_bits], level, mem_level)?;
    let out = with_bytes(data, |payload| {
        detach_if_large(py, payload.len(), || {
            compress_message(payload, window_bits, level, mem_level)
        })
    })?;
    Ok(PyBytes::new(py, &out))
}

/// XORs `data` with a 4-byte `mask`, returning new bytes (RFC 6455 section 5.3).
#[pyfunction]
pub fn apply_mask<'py>(py: Python<'py>, data: &Bound<'py, PyAny>, mask: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let key: [u8; 4] = mask
        .try_into()
        .map_err(|_| PyValueError::new_err("mask must contain 4 bytes"))?;
    with_bytes(data, |bytes| {
        PyBytes::new_with(py, bytes.len(), |out| {
            mask::copy_masked(out, bytes, key, 0);
            Ok(())
        })
    })?
}

//! The events `_core.Connection` reports besides messages: small typed
//! objects, one class per kind (as wsproto's events are), rather than
//! tuples whose first item has to be compared with opcodes.
//!
//! Messages themselves stay plain `str` and `bytes`: they are what the I/O
//! layers queue for `recv()`, and one object per message is the least a
//! read can cost. Control events are rare, so a class instance is cheap.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

/// Defines an event class carrying the payload of a control frame.
macro_rules! frame_event {
    ($name:ident, $pyname:literal, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(module = "ferrows._core", name = $pyname, frozen)]
        pub struct $name {
            /// Payload of the frame, as received.
            #[pyo3(get)]
            pub data: Py<PyBytes>,
        }

        impl $name {
            /// An event for a frame with this payload.
            pub fn create<'py>(py: Python<'py>, payload: &[u8]) -> PyResult<Bound<'py, $name>> {
                Bound::new(
                    py,
                    $name {
                        data: PyBytes::new(py, payload).unbind(),
                    },
                )
            }
        }

        #[pymethods]
        impl $name {
            #[new]
            #[pyo3(signature = (data = b"".as_slice()))]
            fn py_new(py: Python<'_>, data: &[u8]) -> Self {
                $name {
                    data: PyBytes::new(py, data).unbind(),
                }
            }

            fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> bool {
                match other.cast::<$name>() {
                    Ok(other) => self.data.bind(py).as_bytes() == other.get().data.bind(py).as_bytes(),
                    Err(_) => false,
                }
            }

            fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
                self.data.bind(py).hash()
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                Ok(format!("{}(data={})", $pyname, self.data.bind(py).repr()?))
            }
        }
    };
}

frame_event!(
    PingReceived,
    "PingReceived",
    "A ping from the peer. While the connection is open, the core has already queued the pong (RFC 6455 section 5.5.2)."
);
frame_event!(PongReceived, "PongReceived", "A pong from the peer.");
frame_event!(
    CloseReceived,
    "CloseReceived",
    "A close frame from the peer, with its raw payload; the core has queued the reply (RFC 6455 section 5.5.1)."
);

/// A frame of a fragmented message, handed over as it arrives (a
/// connection created with `fragments=True`): `data` is the `str` it
/// completes for a text message (a character split across frames comes out
/// in the fragment that finishes it) or the `bytes` of a binary one; `fin`
/// marks the last fragment. A message in one frame stays a plain `str` or
/// `bytes`.
#[pyclass(module = "ferrows._core", name = "Fragment", frozen)]
pub struct Fragment {
    /// Text or bytes of this fragment.
    #[pyo3(get)]
    pub data: Py<PyAny>,
    /// Last fragment of the message.
    #[pyo3(get)]
    pub fin: bool,
}

#[pymethods]
impl Fragment {
    #[new]
    #[pyo3(signature = (data, fin = false))]
    fn py_new(data: &Bound<'_, PyAny>, fin: bool) -> PyResult<Self> {
        if !data.is_instance_of::<PyString>() && !data.is_instance_of::<PyBytes>() {
            return Err(PyTypeError::new_err("data must be str or bytes"));
        }
        Ok(Fragment {
            data: data.clone().unbind(),
            fin,
        })
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        match other.cast::<Fragment>() {
            Ok(other) => Ok(self.fin == other.get().fin && self.data.bind(py).eq(other.get().data.bind(py))?),
            Err(_) => Ok(false),
        }
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        Ok(self.data.bind(py).hash()? ^ isize::from(self.fin))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Fragment(data={}, fin={})",
            self.data.bind(py).repr()?,
            if self.fin { "True" } else { "False" }
        ))
    }
}

/// The peer violated the protocol. Parsing stopped at the offending frame;
/// every message before it was reported first. `code` is the close code the
/// violation calls for (1002, 1007, 1009...).
#[pyclass(module = "ferrows._core", name = "ProtocolViolation", frozen, eq)]
#[derive(PartialEq, Eq)]
pub struct ProtocolViolation {
    /// Close code to fail the connection with.
    #[pyo3(get)]
    pub code: u16,
}

#[pymethods]
impl ProtocolViolation {
    #[new]
    fn py_new(code: u16) -> Self {
        ProtocolViolation { code }
    }

    fn __hash__(&self) -> isize {
        self.code as isize
    }

    fn __repr__(&self) -> String {
        format!("ProtocolViolation(code={})", self.code)
    }
}

//! New `bytes` objects as payload sinks: a large binary message is unmasked
//! straight into the `bytes` object the application receives, instead of
//! into the core's buffer and then copied (see [`crate::sink`]).

use std::any::Any;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::sink::{PayloadSink, SinkFactory};

/// Payloads from this size get their `bytes` object up front. Below it, the
/// copy out of the core's buffer costs less than taking the GIL back while
/// a large read is processed without it.
pub const SINK_MIN: usize = 64 * 1024;

/// A `bytes` object that no Python code can see yet, being filled.
pub struct BytesSink {
    obj: Py<PyBytes>,
    data: *mut u8,
    len: usize,
}

// SAFETY: `obj` is referenced only by this sink until the message is
// complete and handed to Python with the GIL held; until then its storage is
// reached only through `bytes_mut`, which takes `&mut self`, by whichever
// thread owns the sink; `&self` gives access to nothing.
unsafe impl Send for BytesSink {}
// SAFETY: as above.
unsafe impl Sync for BytesSink {}

impl BytesSink {
    /// The filled object.
    pub fn into_bytes(self) -> Py<PyBytes> {
        self.obj
    }
}

impl PayloadSink for BytesSink {
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `data` points to the `len` bytes of `obj`, kept alive by
        // this sink, and nothing else reads or writes them meanwhile.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// Makes a [`BytesSink`] for payloads of [`SINK_MIN`] bytes or more.
pub struct BytesSinkFactory;

impl SinkFactory for BytesSinkFactory {
    fn make(&mut self, len: usize) -> Option<Box<dyn PayloadSink>> {
        if len < SINK_MIN {
            return None;
        }
        let size = isize::try_from(len).ok()?;
        // The core may run without the GIL while it reads a large chunk.
        Python::attach(|py| {
            // SAFETY: with a NULL source, CPython allocates a bytes object
            // whose contents are left uninitialised (NULL if out of memory);
            // the core fills all of it before the object is exposed.
            let ptr = unsafe { ffi::PyBytes_FromStringAndSize(std::ptr::null(), size) };
            if ptr.is_null() {
                // Out of memory: let the core try its own buffer.
                drop(PyErr::take(py));
                return None;
            }
            // SAFETY: `ptr` is a new, owned reference to a bytes object.
            let data = unsafe { ffi::PyBytes_AsString(ptr) }.cast::<u8>();
            // SAFETY: `ptr` is that owned, non-NULL reference, and the
            // object is a bytes object: the cast checks nothing it needs.
            let obj = unsafe { Bound::from_owned_ptr(py, ptr).cast_into_unchecked::<PyBytes>() }.unbind();
            Some(Box::new(BytesSink { obj, data, len }) as Box<dyn PayloadSink>)
        })
    }
}

//! Storage provided by the I/O layer for large incoming messages.
//!
//! The core normally collects a payload in its own buffer, which the I/O
//! layer then copies into its own message object: for a megabyte message,
//! a second pass over every byte. A [`SinkFactory`] lets the I/O layer hand
//! out the final object's storage instead (the Python binding gives the
//! inside of a new `bytes` object), and the payload is unmasked straight
//! into it as it arrives.

use std::any::Any;

/// Storage for one payload, exactly as long as the payload.
pub trait PayloadSink: Send + Sync {
    /// The storage; the core fills all of it before reporting the message.
    fn bytes_mut(&mut self) -> &mut [u8];
    /// The sink as `Any`, for the I/O layer to recover its own type.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// Makes sinks for large single-frame binary messages.
pub trait SinkFactory: Send + Sync {
    /// Storage for a payload of `len` bytes, or `None` to let the core use
    /// its own buffer.
    fn make(&mut self, len: usize) -> Option<Box<dyn PayloadSink>>;
}

/// A sink over a `Vec`, for tests and for Rust users of the core.
#[derive(Debug, Default)]
pub struct VecSink(pub Vec<u8>);

impl PayloadSink for VecSink {
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// A factory of [`VecSink`]s, zero-filled, for payloads of `min` to `max`
/// bytes.
#[derive(Debug)]
pub struct VecSinkFactory {
    /// Smallest payload that gets a sink.
    pub min: usize,
    /// Largest payload that gets a sink.
    pub max: usize,
}

impl SinkFactory for VecSinkFactory {
    fn make(&mut self, len: usize) -> Option<Box<dyn PayloadSink>> {
        (self.min..=self.max)
            .contains(&len)
            .then(|| Box::new(VecSink(vec![0; len])) as Box<dyn PayloadSink>)
    }
}

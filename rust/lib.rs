//! Sans-I/O WebSocket core of ferrows (RFC 6455, RFC 7692).
//!
//! Bytes go in, events come out; messages go in, bytes come out. Nothing here
//! touches a socket, a clock or an event loop: the Python I/O layers own those.
//! Only the `python` module (behind the `python` cargo feature) uses PyO3, so
//! `cargo test` needs no interpreter.
#![deny(missing_docs)]

pub mod close;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod extension;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod message;
pub mod sink;
pub mod utf8;

#[cfg(feature = "python")]
mod python;

pub use connection::{Config, Connection, Event, Role, State};
pub use error::{HttpError, Violation};
pub use frame::OpCode;

//! The incremental HTTP/1.1 parser reading a response: see `http.rs` for the
//! input layout and the outcomes it allows.
#![no_main]

use ferrows::handshake::Kind;
use libfuzzer_sys::fuzz_target;

#[path = "http.rs"]
mod http;

fuzz_target!(|data: &[u8]| http::run(Kind::Response, data));

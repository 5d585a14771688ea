//! `Connection::receive_data` as a server, on arbitrary chunks, with and
//! without permessage-deflate: see `receive.rs` for the input layout and
//! the outcomes it allows.
#![no_main]

use ferrows::connection::Role;
use libfuzzer_sys::fuzz_target;

#[path = "receive.rs"]
mod receive;

fuzz_target!(|data: &[u8]| receive::run(Role::Server, data));

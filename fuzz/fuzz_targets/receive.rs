//! Shared body of the `receive_data_server` and `receive_data_client` targets.
//!
//! Input layout: a flags byte (deflate, assembling, limits, window, EOF), a
//! chunking byte, then the byte stream the peer sends. The stream is fed in
//! chunks whose sizes come from the low 6 bits of the chunking byte (0: all
//! at once); its bit 0x40 turns `check_text` off (whole text messages must
//! still be UTF-8) and its bit 0x80 turns `defer_failure` on.
//!
//! Documented outcomes only: `receive_data` never fails before EOF; a
//! violation shows as one `Failed` event, after which nothing else comes,
//! with a close code in {1002, 1007, 1009}; text is UTF-8; whole messages
//! respect `max_size`; and the events and output are the same as when the
//! stream arrives in one piece. A deferred failure writes nothing and keeps
//! the connection open until `fail_pending`, which then writes the close
//! frame with the failure's code. The chunked connection also puts large
//! binary messages into payload sinks: they must hold exactly the bytes the
//! other connection returns as `Binary`.

use ferrows::connection::{Config, Connection, Event, Role, State};
use ferrows::deflate::{DeflateParams, PerMessageDeflate};
use ferrows::frame::{FrameHeader, OpCode};
use ferrows::mask::apply_mask;
use ferrows::sink::{VecSink, VecSinkFactory};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

struct Setup {
    deflate: Option<DeflateParams>,
    config: Config,
    eof: bool,
}

fn setup(role: Role, flags: u8, chunking: u8) -> Setup {
    let mut config = Config::new(role);
    config.assemble = flags & 0x02 != 0;
    config.check_text = chunking & 0x40 == 0;
    config.defer_failure = chunking & 0x80 != 0;
    config.max_size = match (flags >> 3) & 0x3 {
        0 => None,
        1 => Some(16),
        2 => Some(1024),
        _ => Some(1 << 20),
    };
    if flags & 0x20 != 0 {
        config.max_fragments = Some(4);
    }
    let deflate = (flags & 0x01 != 0).then(|| DeflateParams {
        remote_no_context_takeover: flags & 0x04 != 0,
        remote_max_window_bits: if flags & 0x40 != 0 { 9 } else { 15 },
        ..DeflateParams::default()
    });
    Setup {
        deflate,
        config,
        eof: flags & 0x80 != 0,
    }
}

fn connection(role: Role, s: &Setup) -> Connection {
    connection_deferring(role, s, s.config.defer_failure)
}

fn connection_deferring(role: Role, s: &Setup, defer_failure: bool) -> Connection {
    let mut c = Connection::new(Config {
        defer_failure,
        ..s.config.clone()
    });
    if let Some(params) = s.deflate {
        c.add_extension(Box::new(PerMessageDeflate::new(params)));
    }
    if role == Role::Client {
        c.set_fixed_mask(KEY);
    }
    c
}

/// Chunk sizes in 1..=seed from a small LCG; seed 0 means one chunk.
fn chunks(stream: &[u8], seed: u8) -> Vec<&[u8]> {
    if seed == 0 {
        return vec![stream];
    }
    let mut out = Vec::new();
    let mut state = u32::from(seed) | 1;
    let mut rest = stream;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((state >> 16) as usize % usize::from(seed)) + 1;
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

fn check_events(c: &Connection, events: &[Event], config: &Config, failed: &mut bool) {
    for event in events {
        assert!(!*failed, "event after failure: {event:?}");
        match event {
            Event::Text(s) => {
                assert!(config.assemble);
                assert!(std::str::from_utf8(s.as_bytes()).is_ok());
                if let Some(max) = config.max_size {
                    assert!(s.len() <= max, "text of {} bytes over max_size {max}", s.len());
                }
            }
            Event::Binary(b) => {
                assert!(config.assemble);
                if let Some(max) = config.max_size {
                    assert!(b.len() <= max);
                }
            }
            // A control frame with RSV bits for extensions above the core.
            Event::Frame {
                opcode, payload, rsv, ..
            } if opcode.is_control() => {
                assert!(!config.assemble);
                assert!(*rsv != 0 && rsv & !config.extra_rsv == 0);
                assert!(payload.len() <= 125);
            }
            Event::Frame { payload, .. } => {
                assert!(!config.assemble);
                if let Some(max) = config.max_size {
                    assert!(payload.len() <= max);
                }
            }
            Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
            Event::Close(p) => assert!(p.len() <= 125 && p.len() != 1),
            Event::BinarySink => unreachable!("sinks are read back before checking"),
            Event::Failed => {
                *failed = true;
                let code = c.failure().expect("Failed event without a failure").close_code();
                assert!(matches!(code, 1002 | 1007 | 1009), "close code {code}");
            }
        }
    }
}

/// The close code at the start of `out`, a close frame.
fn close_code_in(out: &[u8]) -> u16 {
    let (h, n) = FrameHeader::parse(out).expect("a valid frame").expect("a whole frame");
    assert_eq!(h.opcode, OpCode::Close);
    let mut payload = out[n..n + h.payload_len as usize].to_vec();
    if let Some(key) = h.mask {
        apply_mask(&mut payload, key, 0);
    }
    u16::from_be_bytes([payload[0], payload[1]])
}

/// Takes the events, each `BinarySink` replaced by the `Binary` it stands for.
fn with_sinks_read(c: &mut Connection) -> Vec<Event> {
    let events = c.take_events();
    let out = events
        .into_iter()
        .map(|event| match event {
            Event::BinarySink => {
                let sink = c.take_sink().expect("a sink per BinarySink event");
                Event::Binary(sink.into_any().downcast::<VecSink>().expect("a VecSink").0)
            }
            other => other,
        })
        .collect();
    assert!(c.take_sink().is_none(), "a sink without its event");
    out
}

pub fn run(role: Role, data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let s = setup(role, data[0], data[1]);
    let defer = s.config.defer_failure;
    let stream = &data[2..];

    let mut c = connection(role, &s);
    c.set_sink_factory(Box::new(VecSinkFactory { min: 8, max: 1 << 16 }));
    let mut events = Vec::new();
    let mut output = Vec::new();
    let mut failed = false;
    let mut closing = false;
    for chunk in chunks(stream, data[1] & 0x3f) {
        let failed_before = failed;
        c.receive_data(chunk).expect("receive_data failed before EOF");
        let new = with_sinks_read(&mut c);
        check_events(&c, &new, &s.config, &mut failed);
        if new.iter().any(|e| matches!(e, Event::Close(_))) || (failed && !defer) {
            closing = true;
        }
        // States only move forward: once closing, never open again. A
        // deferred failure leaves the connection open.
        if closing {
            assert_eq!(c.state(), State::Closing);
        } else {
            assert_eq!(c.state(), State::Open);
        }
        assert_eq!(c.failure_pending(), failed && defer);
        let out = c.take_output().0;
        if failed_before {
            assert!(out.is_empty(), "output after the failure");
        }
        events.extend(new);
        output.extend(out);
    }

    // The same stream in one piece gives the same events and output.
    let mut whole = connection(role, &s);
    whole.receive_data(stream).expect("receive_data failed before EOF");
    assert_eq!(whole.take_events(), events);
    assert_eq!(whole.take_output().0, output);

    if defer {
        // Deferring changes when the close frame goes out, nothing else:
        // the same events, and the same bytes once fail_pending ran.
        let mut eager = connection_deferring(role, &s, false);
        eager.receive_data(stream).expect("receive_data failed before EOF");
        assert_eq!(eager.take_events(), events);
        let eager_out = eager.take_output();
        if failed {
            let code = c.failure().expect("a failure").close_code();
            for conn in [&mut c, &mut whole] {
                assert!(conn.fail_pending());
                assert!(!conn.fail_pending(), "applied once");
                assert_eq!(conn.state(), State::Closing);
            }
            let (out, eof) = c.take_output();
            assert_eq!(close_code_in(&out), code);
            assert_eq!(whole.take_output(), (out.clone(), eof));
            assert_eq!(([output, out].concat(), eof), eager_out);
            closing = true;
        } else {
            assert_eq!(output, eager_out.0);
        }
    }
    if !failed || !defer {
        assert!(!c.fail_pending());
    }

    if s.eof {
        c.receive_eof();
        let tail = c.take_events();
        assert_eq!(c.state(), State::Closed);
        assert!(c.receive_data(b"x").is_err(), "data after EOF is the caller's bug");
        if closing {
            assert!(tail.is_empty());
        } else {
            // EOF without a closing handshake: 1006, no close frame sent.
            assert_eq!(tail, vec![Event::Failed]);
            assert_eq!(c.failure().map(|v| v.close_code()), Some(1006));
        }
    }
}

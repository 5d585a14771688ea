use super::*;
use crate::connection::{Config, Connection, Event, Role};
use crate::frame::{write_frame, FrameHeader};
use crate::mask::apply_mask;

fn params() -> DeflateParams {
    DeflateParams::default()
}

fn decode_frames(ext: &mut PerMessageDeflate, frames: &[(OpCode, bool, u8, &[u8])]) -> Result<Vec<u8>, Violation> {
    let mut message = Vec::new();
    for &(opcode, fin, rsv, payload) in frames {
        let mut frame = DataFrame {
            opcode,
            fin,
            rsv,
            payload: payload.to_vec(),
        };
        ext.decode(&mut frame, None)?;
        assert_eq!(frame.rsv & RSV1, 0);
        message.extend(frame.payload);
    }
    Ok(message)
}

// RFC 7692 section 7.2.3 examples.
#[test]
fn rfc7692_hello_compressed() {
    let mut ext = PerMessageDeflate::new(params());
    let got = decode_frames(
        &mut ext,
        &[(OpCode::Text, true, RSV1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])],
    );
    assert_eq!(got.unwrap(), b"Hello");
}

#[test]
fn rfc7692_fragmented_compressed() {
    let mut ext = PerMessageDeflate::new(params());
    let frames: &[(OpCode, bool, u8, &[u8])] = &[
        (OpCode::Text, false, RSV1, &[0xf2, 0x48, 0xcd]),
        (OpCode::Continuation, true, 0, &[0xc9, 0xc9, 0x07, 0x00]),
    ];
    assert_eq!(decode_frames(&mut ext, frames).unwrap(), b"Hello");
}

#[test]
fn rfc7692_sharing_the_window() {
    let mut ext = PerMessageDeflate::new(params());
    let first = decode_frames(
        &mut ext,
        &[(OpCode::Text, true, RSV1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])],
    );
    assert_eq!(first.unwrap(), b"Hello");
    let second = decode_frames(&mut ext, &[(OpCode::Text, true, RSV1, &[0xf2, 0x00, 0x11, 0x00, 0x00])]);
    assert_eq!(second.unwrap(), b"Hello");
}

#[test]
fn rfc7692_stored_block_bfinal_and_two_blocks() {
    let mut ext = PerMessageDeflate::new(params());
    let stored = [0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00];
    assert_eq!(
        decode_frames(&mut ext, &[(OpCode::Text, true, RSV1, &stored)]).unwrap(),
        b"Hello"
    );
    let mut ext = PerMessageDeflate::new(params());
    let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    assert_eq!(
        decode_frames(&mut ext, &[(OpCode::Text, true, RSV1, &bfinal)]).unwrap(),
        b"Hello"
    );
    let mut ext = PerMessageDeflate::new(params());
    let two = [
        0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ];
    assert_eq!(
        decode_frames(&mut ext, &[(OpCode::Text, true, RSV1, &two)]).unwrap(),
        b"Hello"
    );
}

#[test]
fn rfc7692_encoding_hello() {
    let mut ext = PerMessageDeflate::new(params());
    let mut frame = DataFrame {
        opcode: OpCode::Text,
        fin: true,
        rsv: 0,
        payload: b"Hello".to_vec(),
    };
    ext.encode(&mut frame);
    assert_eq!(frame.rsv, RSV1);
    assert_eq!(frame.payload, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    // With context takeover the second message refers to the first.
    let mut frame = DataFrame {
        opcode: OpCode::Text,
        fin: true,
        rsv: 0,
        payload: b"Hello".to_vec(),
    };
    ext.encode(&mut frame);
    assert_eq!(frame.payload, [0xf2, 0x00, 0x11, 0x00, 0x00]);
}

#[test]
fn empty_message_after_a_message_with_takeover() {
    let mut sender = PerMessageDeflate::new(params());
    let mut receiver = PerMessageDeflate::new(params());
    for message in [&b"a"[..], b"", b"b", b""] {
        let mut frame = DataFrame {
            opcode: OpCode::Text,
            fin: true,
            rsv: 0,
            payload: message.to_vec(),
        };
        sender.encode(&mut frame);
        assert!(
            !frame.payload.is_empty(),
            "an empty payload does not inflate with the tail"
        );
        assert_eq!(
            decode_frames(&mut receiver, &[(OpCode::Text, true, RSV1, &frame.payload)]).unwrap(),
            message
        );
    }
}

#[test]
fn uncompressed_messages_pass_through() {
    let mut ext = PerMessageDeflate::new(params());
    assert_eq!(
        decode_frames(&mut ext, &[(OpCode::Binary, true, 0, b"raw")]).unwrap(),
        b"raw"
    );
    assert_eq!(ext.is_allocated(), (false, false), "nothing allocated until needed");
}

#[test]
fn rsv1_on_a_continuation_frame_is_an_error() {
    let mut ext = PerMessageDeflate::new(params());
    let frames: &[(OpCode, bool, u8, &[u8])] = &[
        (OpCode::Text, false, RSV1, &[0xf2, 0x48, 0xcd]),
        (OpCode::Continuation, true, RSV1, &[0xc9]),
    ];
    assert_eq!(decode_frames(&mut ext, frames), Err(Violation::ReservedBits(RSV1)));
}

#[test]
fn invalid_deflate_data_fails_with_1002() {
    let mut ext = PerMessageDeflate::new(params());
    let err = decode_frames(&mut ext, &[(OpCode::Binary, true, RSV1, &[0xff, 0xff, 0xff, 0xff])]).unwrap_err();
    assert_eq!(err.close_code(), 1002);
}

#[test]
fn a_bomb_stops_at_the_limit() {
    // 64 MiB of zeros compress to about 64 KiB.
    let bomb = compress_message(&vec![0u8; 64 << 20], 15, 9, 9);
    assert!(bomb.len() < 128 << 10, "{}", bomb.len());
    let mut ext = PerMessageDeflate::new(params());
    let mut frame = DataFrame {
        opcode: OpCode::Binary,
        fin: true,
        rsv: RSV1,
        payload: bomb,
    };
    let err = ext.decode(&mut frame, Some(1 << 20)).unwrap_err();
    assert_eq!(
        err,
        Violation::MessageTooBig {
            size: (1 << 20) + 1,
            max_size: 1 << 20
        }
    );
    assert_eq!(err.close_code(), 1009);
}

#[test]
fn context_is_dropped_after_each_message_without_takeover() {
    let p = DeflateParams {
        local_no_context_takeover: true,
        remote_no_context_takeover: true,
        ..params()
    };
    let mut ext = PerMessageDeflate::new(p);
    let mut frame = DataFrame {
        opcode: OpCode::Text,
        fin: true,
        rsv: 0,
        payload: b"Hello".to_vec(),
    };
    ext.encode(&mut frame);
    assert_eq!(ext.is_allocated(), (false, false));
    let payload = frame.payload.clone();
    let mut frame2 = DataFrame {
        opcode: OpCode::Text,
        fin: true,
        rsv: 0,
        payload: b"Hello".to_vec(),
    };
    ext.encode(&mut frame2);
    assert_eq!(frame2.payload, payload, "no takeover: every message compresses alike");
    assert_eq!(compress_message(b"Hello", 15, 6, 8), payload);
    let mut rx = DataFrame {
        opcode: OpCode::Text,
        fin: true,
        rsv: RSV1,
        payload,
    };
    ext.decode(&mut rx, None).unwrap();
    assert_eq!(rx.payload, b"Hello");
    assert_eq!(ext.is_allocated(), (false, false));
}

fn pair(client: DeflateParams, server: DeflateParams) -> (Connection, Connection) {
    let mut c = Connection::new(Config {
        assemble: true,
        ..Config::new(Role::Client)
    });
    c.add_extension(Box::new(PerMessageDeflate::new(client)));
    let mut s = Connection::new(Config {
        assemble: true,
        max_size: None,
        ..Config::new(Role::Server)
    });
    s.add_extension(Box::new(PerMessageDeflate::new(server)));
    (c, s)
}

fn transfer(from: &mut Connection, to: &mut Connection) -> Vec<Event> {
    let (out, _) = from.take_output();
    to.receive_data(&out).unwrap();
    let events = to.take_events();
    assert!(to.failure().is_none(), "{:?}", to.failure());
    events
}

#[test]
fn every_parameter_combination_round_trips() {
    let messages: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"Hello".to_vec(),
        (0..5000u32).map(|i| (i % 7) as u8 + b'a').collect(),
        (0..70000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect(),
    ];
    for server_nct in [false, true] {
        for client_nct in [false, true] {
            for server_bits in 9..=15u8 {
                for client_bits in [9u8, 12, 15] {
                    let server_side = DeflateParams {
                        local_no_context_takeover: server_nct,
                        remote_no_context_takeover: client_nct,
                        local_max_window_bits: server_bits,
                        remote_max_window_bits: client_bits,
                        level: 6,
                        mem_level: 5,
                    };
                    let client_side = DeflateParams {
                        local_no_context_takeover: client_nct,
                        remote_no_context_takeover: server_nct,
                        local_max_window_bits: client_bits,
                        remote_max_window_bits: server_bits,
                        level: 6,
                        mem_level: 5,
                    };
                    let (mut c, mut s) = pair(client_side, server_side);
                    for m in &messages {
                        c.send_binary(m, true).unwrap();
                        assert_eq!(transfer(&mut c, &mut s), vec![Event::Binary(m.clone())]);
                        s.send_binary(m, true).unwrap();
                        assert_eq!(transfer(&mut s, &mut c), vec![Event::Binary(m.clone())]);
                    }
                }
            }
        }
    }
}

#[test]
fn fragmented_compressed_message_with_interleaved_ping() {
    let (mut c, mut s) = pair(params(), params());
    c.send_text("héllo ".as_bytes(), false).unwrap();
    c.send_ping(b"ping").unwrap();
    c.send_continuation("wörld".as_bytes(), true).unwrap();
    let events = transfer(&mut c, &mut s);
    assert_eq!(
        events,
        vec![Event::Ping(b"ping".to_vec()), Event::Text("héllo wörld".into())]
    );
}

#[test]
fn compressed_frames_carry_rsv1_only_on_the_first_frame() {
    let (mut c, _) = pair(params(), params());
    c.send_binary(b"abc", false).unwrap();
    c.send_continuation(b"def", true).unwrap();
    let (out, _) = c.take_output();
    let (h1, n1) = FrameHeader::parse(&out).unwrap().unwrap();
    assert_eq!(h1.rsv, RSV1);
    let rest = &out[n1 + h1.payload_len as usize..];
    let (h2, _) = FrameHeader::parse(rest).unwrap().unwrap();
    assert_eq!(h2.rsv, 0);
}

#[test]
fn bomb_through_the_connection_fails_with_1009() {
    let bomb = compress_message(&vec![0u8; 16 << 20], 15, 9, 9);
    let mut s = Connection::new(Config {
        assemble: true,
        ..Config::new(Role::Server)
    });
    s.add_extension(Box::new(PerMessageDeflate::new(params())));
    let mut data = Vec::new();
    write_frame(&mut data, true, RSV1, OpCode::Binary, &bomb, Some([1, 2, 3, 4]));
    s.receive_data(&data).unwrap();
    assert_eq!(s.take_events(), vec![Event::Failed]);
    assert_eq!(s.failure().unwrap().close_code(), 1009);
    let (out, _) = s.take_output();
    let (h, n) = FrameHeader::parse(&out).unwrap().unwrap();
    assert_eq!(h.opcode, OpCode::Close);
    let mut payload = out[n..].to_vec();
    if let Some(k) = h.mask {
        apply_mask(&mut payload, k, 0);
    }
    assert_eq!(&payload[..2], &1009u16.to_be_bytes());
}

#[test]
fn compressed_message_after_a_message_at_the_limit() {
    // The header check of a compressed frame must not count the size of
    // the message before it: with max_size 10000, a 10000-byte message then
    // an incompressible one used to fail with 1009.
    let mut c = Connection::new(Config {
        assemble: true,
        ..Config::new(Role::Client)
    });
    c.add_extension(Box::new(PerMessageDeflate::new(params())));
    let mut s = Connection::new(Config {
        assemble: true,
        max_size: Some(10_000),
        ..Config::new(Role::Server)
    });
    s.add_extension(Box::new(PerMessageDeflate::new(params())));
    let noise: Vec<u8> = (0u32..10_000)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for message in [&[7u8; 10_000][..], &noise, &[7u8; 10_000][..], &noise] {
        c.send_binary(message, true).unwrap();
        assert_eq!(transfer(&mut c, &mut s), vec![Event::Binary(message.to_vec())]);
    }
}

#[test]
fn window_keeps_the_last_bytes_whatever_the_chunking() {
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
    for chunk in [1usize, 7, 100, 511, 512, 513, 4999] {
        let mut window = Window::new(9);
        let mut fed = 0;
        for piece in data.chunks(chunk) {
            window.push(piece);
            fed += piece.len();
            let expected = &data[fed.saturating_sub(512)..fed];
            assert_eq!(window.linear(), expected, "chunk={chunk} fed={fed}");
        }
    }
}

#[test]
fn compaction_frees_state_and_resumes_with_the_same_history() {
    let (mut c, mut s) = pair(params(), params());
    let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog; ".repeat(40);
    c.send_binary(&text, true).unwrap();
    assert_eq!(transfer(&mut c, &mut s), vec![Event::Binary(text.clone())]);
    // First call sees activity, the second finds the connection idle and
    // frees its streams, the third has nothing left to free.
    assert!(!c.compact_if_idle());
    assert!(!s.compact_if_idle());
    assert!(c.compact_if_idle());
    assert!(s.compact_if_idle());
    assert!(!c.compact_if_idle());
    assert!(!s.compact_if_idle());
    // The same message again compresses against the history restored from
    // the window: a handful of bytes, and the server still decodes it.
    c.send_binary(&text, true).unwrap();
    let (out, _) = c.take_output();
    assert!(out.len() < 40, "{} bytes: history was lost", out.len());
    s.receive_data(&out).unwrap();
    assert_eq!(s.take_events(), vec![Event::Binary(text.clone())]);
    // And the other direction, after compaction of both ends.
    c.compact_if_idle();
    s.compact_if_idle();
    s.send_text(&text, true).unwrap();
    s.compact_if_idle();
    s.compact_if_idle();
    s.send_text(&text, true).unwrap();
    let events = transfer(&mut s, &mut c);
    let expected = Event::Text(String::from_utf8(text).unwrap());
    assert_eq!(events, vec![expected.clone(), expected]);
}

#[test]
fn compaction_round_trips_random_traffic_for_every_window() {
    for bits in 9..=15u8 {
        let p = DeflateParams {
            local_max_window_bits: bits,
            remote_max_window_bits: bits,
            ..params()
        };
        let (mut c, mut s) = pair(p, p);
        let mut seed = 12345u32;
        for round in 0..40 {
            seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
            let len = (seed >> 8) as usize % 3000;
            let message: Vec<u8> = (0..len).map(|i| b"abcdefgh"[((i * seed as usize) >> 3) % 8]).collect();
            c.send_binary(&message, true).unwrap();
            assert_eq!(
                transfer(&mut c, &mut s),
                vec![Event::Binary(message)],
                "bits={bits} round={round}"
            );
            if seed % 3 == 0 {
                c.compact_if_idle();
                c.compact_if_idle();
            }
            if seed % 5 == 0 {
                s.compact_if_idle();
                s.compact_if_idle();
            }
        }
    }
}

/// Inflates raw deflate with exactly `window_bits`, as a peer whose
/// decompressor has that window would (zlib-rs accepts 8 when inflating).
fn inflate_with_window(data: &[u8], window_bits: u8) -> Vec<u8> {
    let mut decoder = Inflate::new(false, window_bits);
    let mut input = data.to_vec();
    input.extend_from_slice(&TAIL);
    let mut out = vec![0u8; data.len() * 4 + 1024];
    decoder.decompress(&input, &mut out, InflateFlush::SyncFlush).unwrap();
    out.truncate(decoder.total_out() as usize);
    out
}

#[test]
fn an_8_bit_local_window_sends_uncompressed_and_still_inflates() {
    // RFC 7692 section 7.1.2.2: the server may answer client_max_window_bits=8.
    let client_side = DeflateParams {
        local_max_window_bits: 8,
        ..params()
    };
    let server_side = DeflateParams {
        remote_max_window_bits: 8,
        ..params()
    };
    let (mut c, mut s) = pair(client_side, server_side);
    let message = b"repeat after me, repeat after me, repeat after me".to_vec();
    for _ in 0..2 {
        c.send_text(&message, false).unwrap();
        c.send_continuation(b"!", true).unwrap();
        let (out, _) = c.take_output();
        let (h1, n1) = FrameHeader::parse(&out).unwrap().unwrap();
        assert_eq!(h1.rsv, 0, "no RSV1: sent uncompressed");
        assert_eq!(h1.payload_len as usize, message.len());
        let rest = &out[n1 + h1.payload_len as usize..];
        assert_eq!(FrameHeader::parse(rest).unwrap().unwrap().0.rsv, 0);
        s.receive_data(&out).unwrap();
        let mut expected = message.clone();
        expected.push(b'!');
        assert_eq!(s.take_events(), vec![Event::Text(String::from_utf8(expected).unwrap())]);
        // The other way, compressed as usual.
        s.send_text(&message, true).unwrap();
        let (out, _) = s.take_output();
        let (h, _) = FrameHeader::parse(&out).unwrap().unwrap();
        assert_eq!(h.rsv, RSV1);
        c.receive_data(&out).unwrap();
        assert_eq!(
            c.take_events(),
            vec![Event::Text(String::from_utf8(message.clone()).unwrap())]
        );
    }
    let client_ext = PerMessageDeflate::new(client_side);
    assert!(
        client_ext.sent.is_none(),
        "no history to keep for a compressor never used"
    );
}

#[test]
fn compress_message_with_an_8_bit_window_stores() {
    // Repeats 300 bytes apart, which a compressor with a wider window
    // could refer back to: stored blocks refer to nothing.
    let block: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    let payload = [block.as_slice(), block.as_slice()].concat();
    let compressed = compress_message(&payload, 8, 6, 8);
    assert!(compressed.windows(payload.len()).any(|w| w == payload), "stored as is");
    assert_eq!(inflate_with_window(&compressed, 8), payload);
    assert!(
        compress_message(&payload, 9, 6, 8).len() < payload.len(),
        "9 bits compress"
    );
}

// ------------------------------------------------ inflating as frames arrive

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A connection of `role` that inflates what its peer compressed with
/// `peer` (seen from the peer).
fn inflating(role: Role, peer: DeflateParams, assemble: bool, max_size: Option<usize>) -> Connection {
    let mut c = Connection::new(Config {
        assemble,
        max_size,
        ..Config::new(role)
    });
    c.add_extension(Box::new(PerMessageDeflate::new(DeflateParams {
        remote_no_context_takeover: peer.local_no_context_takeover,
        local_no_context_takeover: peer.remote_no_context_takeover,
        remote_max_window_bits: peer.local_max_window_bits,
        local_max_window_bits: peer.remote_max_window_bits,
        ..peer
    })));
    c.set_fixed_mask(KEY);
    c
}

/// The bytes that the peer of a `role` connection sends for `script`,
/// compressing with `peer`.
fn sent_by_peer(role: Role, peer: DeflateParams, script: impl FnOnce(&mut Connection)) -> Vec<u8> {
    let other = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut c = Connection::new(Config::new(other));
    c.set_fixed_mask(KEY);
    c.add_extension(Box::new(PerMessageDeflate::new(peer)));
    script(&mut c);
    c.take_output().0
}

/// What a connection reports after `pieces`: its events, output, and
/// failure, as the peer sees it (its close code and reason: the bytes that
/// come with invalid text are those decoded so far, which depend on the
/// reads, as without compression).
type Outcome = (Vec<Event>, (Vec<u8>, bool), Option<(u16, String)>);

fn receive_in(mut c: Connection, pieces: &[&[u8]]) -> Outcome {
    let mut events = Vec::new();
    for piece in pieces {
        c.receive_data(piece).unwrap();
        events.extend(c.take_events());
    }
    let failure = c.failure().map(|v| (v.close_code(), v.to_string()));
    (events, c.take_output(), failure)
}

/// Feeds `data` whole, split in two at every byte, and byte by byte, to
/// fresh connections from `make`; asserts that all give the same outcome,
/// and returns it.
fn same_whatever_the_chunking(make: impl Fn() -> Connection, data: &[u8]) -> Outcome {
    let whole = receive_in(make(), &[data]);
    for cut in 0..=data.len() {
        assert_eq!(receive_in(make(), &[&data[..cut], &data[cut..]]), whole, "cut={cut}");
    }
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(receive_in(make(), &bytes), whole, "byte by byte");
    whole
}

fn takeover_params(no_takeover: bool) -> DeflateParams {
    DeflateParams {
        local_no_context_takeover: no_takeover,
        remote_no_context_takeover: no_takeover,
        local_max_window_bits: 10,
        ..params()
    }
}

#[test]
fn compressed_messages_give_the_same_events_in_any_chunking() {
    let euro = "€".as_bytes();
    for role in [Role::Server, Role::Client] {
        for no_takeover in [false, true] {
            let peer = takeover_params(no_takeover);
            let data = sent_by_peer(role, peer, |c| {
                c.send_text("héllo wörld".as_bytes(), true).unwrap();
                // The same again: with takeover, it refers to the first.
                c.send_text("héllo wörld".as_bytes(), true).unwrap();
                // A character split between compressed fragments, and a
                // ping between them.
                c.send_text(&euro[..1], false).unwrap();
                c.send_ping(b"p").unwrap();
                c.send_continuation(&euro[1..], false).unwrap();
                c.send_continuation(b"", true).unwrap();
                c.send_binary(&[0u8; 300], true).unwrap();
                c.send_text(b"", true).unwrap();
            });
            for assemble in [true, false] {
                let (events, _, failure) =
                    same_whatever_the_chunking(|| inflating(role, peer, assemble, Some(1000)), &data);
                assert_eq!(failure, None);
                let texts: Vec<Event> = if assemble {
                    vec![
                        Event::Text("héllo wörld".into()),
                        Event::Text("héllo wörld".into()),
                        Event::Ping(b"p".to_vec()),
                        Event::Text("€".into()),
                        Event::Binary(vec![0u8; 300]),
                        Event::Text(String::new()),
                    ]
                } else {
                    let f = |opcode, fin, payload: &[u8]| Event::Frame {
                        opcode,
                        fin,
                        rsv: 0,
                        payload: payload.to_vec(),
                    };
                    vec![
                        f(OpCode::Text, true, "héllo wörld".as_bytes()),
                        f(OpCode::Text, true, "héllo wörld".as_bytes()),
                        f(OpCode::Text, false, &euro[..1]),
                        Event::Ping(b"p".to_vec()),
                        f(OpCode::Continuation, false, &euro[1..]),
                        f(OpCode::Continuation, true, b""),
                        f(OpCode::Binary, true, &[0u8; 300]),
                        f(OpCode::Text, true, b""),
                    ]
                };
                assert_eq!(
                    events, texts,
                    "role={role:?} no_takeover={no_takeover} assemble={assemble}"
                );
            }
        }
    }
}

#[test]
fn compressed_violations_are_the_same_in_any_chunking() {
    let zeros = [0u8; 5000];
    let mut bad_then_zeros = b"\xff".to_vec();
    bad_then_zeros.extend_from_slice(&zeros);
    for role in [Role::Server, Role::Client] {
        let peer = takeover_params(false);
        let cases: Vec<(Vec<u8>, Violation)> = vec![
            (
                sent_by_peer(role, peer, |c| c.send_text(b"ok \xff rest", true).unwrap()),
                Violation::InvalidUtf8 {
                    data: b"ok \xff rest".to_vec(),
                    position: 3,
                },
            ),
            (
                // Begun in the first frame, broken in the second.
                sent_by_peer(role, peer, |c| {
                    c.send_text(b"ok \xe2\x82", false).unwrap();
                    c.send_continuation(b"(", true).unwrap();
                }),
                Violation::InvalidUtf8 {
                    data: b"\xe2\x82(".to_vec(),
                    position: 0,
                },
            ),
            (
                // Unfinished at the end of the message.
                sent_by_peer(role, peer, |c| c.send_text(b"trunc\xe2\x82", true).unwrap()),
                Violation::InvalidUtf8 {
                    data: b"trunc\xe2\x82".to_vec(),
                    position: 5,
                },
            ),
            (
                sent_by_peer(role, peer, |c| c.send_binary(&zeros, true).unwrap()),
                // Inflating stops at the limit: the frame's size is unknown,
                // as websockets' permessage-deflate reports it.
                Violation::FrameTooBig {
                    size: None,
                    current: None,
                    max_size: 1000,
                },
            ),
            (
                // Over the limit in the second frame of the message.
                sent_by_peer(role, peer, |c| {
                    c.send_binary(&zeros[..600], false).unwrap();
                    c.send_continuation(&zeros[..600], true).unwrap();
                }),
                Violation::FrameTooBig {
                    size: None,
                    current: Some(600),
                    max_size: 1000,
                },
            ),
            (
                // Invalid before the limit: invalid, whatever the chunking.
                sent_by_peer(role, peer, |c| c.send_text(&bad_then_zeros, true).unwrap()),
                Violation::InvalidUtf8 {
                    data: bad_then_zeros[..1001].to_vec(),
                    position: 0,
                },
            ),
        ];
        for (data, violation) in cases {
            for assemble in [true, false] {
                let make = || inflating(role, peer, assemble, Some(1000));
                let (events, _, failure) = same_whatever_the_chunking(make, &data);
                assert_eq!(events.last(), Some(&Event::Failed));
                let expected = (violation.close_code(), violation.to_string());
                assert_eq!(failure, Some(expected), "role={role:?} assemble={assemble}");
                // In one read, the violation carries the bytes as whole
                // frames would; the close frame says what it says.
                let mut c = make();
                c.receive_data(&data).unwrap();
                assert_eq!(c.failure(), Some(&violation));
                assert_eq!(close_code_sent(&mut c), violation.close_code());
            }
        }
    }
}

#[test]
fn invalid_deflate_data_and_rsv1_on_a_continuation_fail_in_any_chunking() {
    let mut data = Vec::new();
    write_frame(
        &mut data,
        true,
        RSV1,
        OpCode::Binary,
        &[0x00, 0x01, 0x00, 0xfe, 0xff, b'a', 0x06, 0xff, 0xff],
        Some(KEY),
    );
    let (_, _, failure) = same_whatever_the_chunking(|| inflating(Role::Server, params(), true, None), &data);
    assert_eq!(failure.map(|f| f.0), Some(1002));
    // RFC 7692 section 6.1: RSV1 on the first frame only. Refused from the
    // header, before the payload comes.
    let mut data = Vec::new();
    write_frame(
        &mut data,
        false,
        RSV1,
        OpCode::Text,
        &compress_message(b"a", 15, 6, 8),
        Some(KEY),
    );
    let payload = vec![b'x'; 200];
    write_frame(&mut data, true, RSV1, OpCode::Continuation, &payload, Some(KEY));
    let (_, _, failure) = same_whatever_the_chunking(|| inflating(Role::Server, params(), true, None), &data);
    let rsv1 = Violation::ReservedBits(RSV1);
    assert_eq!(failure, Some((rsv1.close_code(), rsv1.to_string())));
    let mut s = inflating(Role::Server, params(), true, None);
    s.receive_data(&data[..data.len() - payload.len()]).unwrap();
    assert_eq!(s.take_events(), vec![Event::Failed]);
}

/// Raw deflate of `before`, flushed, then of `after`, without the tail:
/// and the length of the part that inflates to `before`.
fn flushed_in_two(before: &[u8], after: &[u8]) -> (Vec<u8>, usize) {
    let mut encoder = new_compressor(15, 6, 8);
    let mut payload = Vec::new();
    compress_into(&mut encoder, before, &mut payload);
    let first = payload.len();
    compress_into(&mut encoder, after, &mut payload);
    payload.truncate(payload.len() - TAIL.len());
    (payload, first)
}

#[test]
fn compressed_text_invalid_early_in_a_long_frame_fails_before_the_end() {
    let mut seed = 7u32;
    let rest: Vec<u8> = (0..300_000)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            b"abcdefghijklmnopqrstuvwxyz ,."[(seed >> 16) as usize % 29]
        })
        .collect();
    let (payload, first) = flushed_in_two(b"ok \xff", &rest);
    assert!(first * 100 < payload.len(), "{first} of {}", payload.len());
    for role in [Role::Server, Role::Client] {
        let mask = (role == Role::Server).then_some(KEY);
        let mut data = Vec::new();
        write_frame(&mut data, true, RSV1, OpCode::Text, &payload, mask);
        let bad_by = data.len() - payload.len() + first;
        // Whatever the reads before, the one that brings the compressed bad
        // byte fails: the rest of the frame never matters.
        for cut in 0..=bad_by {
            let mut c = inflating(role, params(), true, Some(1 << 20));
            let mut events = Vec::new();
            for piece in [&data[..cut], &data[cut..bad_by]] {
                c.receive_data(piece).unwrap();
                events.extend(c.take_events());
            }
            assert_eq!(events, vec![Event::Failed], "cut={cut}");
            assert!(
                matches!(c.failure(), Some(Violation::InvalidUtf8 { position: 3, .. })),
                "{:?}",
                c.failure()
            );
            c.receive_data(&data[bad_by..]).unwrap();
            assert!(c.take_events().is_empty());
            assert_eq!(close_code_sent(&mut c), 1007);
        }
        // And valid text in the same shape arrives whole.
        let (payload, _) = flushed_in_two(b"ok !", &rest);
        let mut data = Vec::new();
        write_frame(&mut data, true, RSV1, OpCode::Text, &payload, mask);
        let mut c = inflating(role, params(), true, Some(1 << 20));
        for piece in data.chunks(4096) {
            c.receive_data(piece).unwrap();
        }
        let mut expected = b"ok !".to_vec();
        expected.extend_from_slice(&rest);
        assert_eq!(c.take_events(), vec![Event::Text(String::from_utf8(expected).unwrap())]);
    }
}

fn close_code_sent(c: &mut Connection) -> u16 {
    let (out, _) = c.take_output();
    let (h, n) = FrameHeader::parse(&out).unwrap().unwrap();
    assert_eq!(h.opcode, OpCode::Close);
    let mut payload = out[n..n + 2].to_vec();
    if let Some(k) = h.mask {
        apply_mask(&mut payload, k, 0);
    }
    u16::from_be_bytes([payload[0], payload[1]])
}

#[test]
fn a_bomb_arriving_in_pieces_stops_at_the_limit() {
    let bomb = compress_message(&vec![0u8; 64 << 20], 15, 9, 9);
    let limit = 1 << 20;
    // The extension alone: at most limit + 1 bytes out, and no more room.
    for piece in [1usize, 100, 4096, bomb.len()] {
        let mut ext = PerMessageDeflate::new(params());
        let decoding = ext.begin_decode(OpCode::Binary, true, RSV1, bomb.len() as u64);
        assert_eq!(decoding, Ok(FrameDecoding::Streamed { rsv: 0 }));
        let mut out = Vec::new();
        let mut fed = 0;
        let err = loop {
            let chunk = &bomb[fed..(fed + piece).min(bomb.len())];
            fed += chunk.len();
            let left = limit - out.len();
            if let Err(e) = ext.decode_chunk(chunk, &mut DecodeBuf::new(&mut out), Some(left)) {
                break e;
            }
            assert!(fed < bomb.len(), "piece={piece}: the whole bomb inflated");
        };
        assert!(matches!(err, Violation::MessageTooBig { .. }), "{err:?}");
        assert_eq!(out.len(), limit + 1, "piece={piece}");
        assert!(
            out.capacity() <= limit + 1,
            "piece={piece}: {} reserved",
            out.capacity()
        );
        if piece < bomb.len() {
            assert!(fed * 8 < bomb.len(), "piece={piece}: {fed} of {} read", bomb.len());
        }
        assert!(!ext.is_allocated().1, "the stream is dropped");
    }
    // Through the connection, in network-sized reads: 1009 with the size of
    // the whole message, before the rest of the frame arrives.
    let mut data = Vec::new();
    write_frame(&mut data, true, RSV1, OpCode::Binary, &bomb, Some(KEY));
    for read in [1000usize, 4096] {
        let mut s = inflating(Role::Server, params(), true, Some(limit));
        let mut fed = 0;
        while s.failure().is_none() {
            let piece = &data[fed..(fed + read).min(data.len())];
            s.receive_data(piece).unwrap();
            fed += piece.len();
        }
        assert!(fed * 8 < data.len(), "read={read}: {fed} of {} read", data.len());
        assert_eq!(
            s.failure(),
            Some(&Violation::FrameTooBig {
                size: None,
                current: None,
                max_size: limit
            })
        );
        assert_eq!(s.take_events(), vec![Event::Failed]);
        assert_eq!(close_code_sent(&mut s), 1009);
    }
}

#[test]
fn context_takeover_across_messages_arriving_in_pieces() {
    // Each message refers to the previous ones; the receiver's history is
    // the same whatever the reads, compaction between messages included.
    let text = b"the quick brown fox jumps over the lazy dog; ".repeat(50);
    for no_takeover in [false, true] {
        let peer = takeover_params(no_takeover);
        let data = sent_by_peer(Role::Server, peer, |c| {
            for i in 0..5u8 {
                let mut m = text.clone();
                m.push(b'0' + i);
                c.send_text(&m, true).unwrap();
            }
        });
        let per_message = data.len() / 5;
        if no_takeover {
            assert!(per_message > 100, "{per_message}");
        } else {
            assert!(
                per_message < 100,
                "{per_message}: messages do not refer to earlier ones"
            );
        }
        for read in [1usize, 3, 17, 64, 1000] {
            let mut s = inflating(Role::Server, peer, true, None);
            let mut events = Vec::new();
            for (i, piece) in data.chunks(read).enumerate() {
                s.receive_data(piece).unwrap();
                events.extend(s.take_events());
                if i % 5 == 0 {
                    // Mid-frame, compaction keeps the stream; between
                    // messages it restores it from the window.
                    s.compact_if_idle();
                    s.compact_if_idle();
                }
            }
            assert_eq!(s.failure(), None, "read={read}");
            assert_eq!(events.len(), 5);
            for (i, e) in events.iter().enumerate() {
                let mut m = text.clone();
                m.push(b'0' + i as u8);
                assert_eq!(e, &Event::Text(String::from_utf8(m).unwrap()), "read={read}");
            }
        }
    }
}

#[test]
fn uncompressed_text_under_deflate_is_validated_as_it_arrives() {
    let mut payload = b"ok \xff".to_vec();
    payload.resize(1000, b'a');
    let mut data = Vec::new();
    write_frame(&mut data, true, 0, OpCode::Text, &payload, Some(KEY));
    let mut s = inflating(Role::Server, params(), true, None);
    s.receive_data(&data[..data.len() - 900]).unwrap();
    assert_eq!(s.take_events(), vec![Event::Failed]);
    assert!(matches!(s.failure(), Some(Violation::InvalidUtf8 { position: 3, .. })));
}

#[test]
fn a_frame_over_its_allowance_because_of_the_tail_reports_the_allowance() {
    // A stored block of 4 bytes with 3 in the payload: the tail's first
    // byte is the fourth (found by fuzzing the streamed path against this one).
    let mut ext = PerMessageDeflate::new(params());
    let mut frame = DataFrame {
        opcode: OpCode::Binary,
        fin: true,
        rsv: RSV1,
        payload: vec![0x00, 0x04, 0x00, 0xfb, 0xff, b'a', b'b', b'c'],
    };
    assert_eq!(
        ext.decode(&mut frame, Some(3)),
        Err(Violation::MessageTooBig { size: 4, max_size: 3 })
    );
}

#[test]
fn compressed_fragments_come_out_as_they_are_inflated() {
    let params = DeflateParams {
        local_no_context_takeover: false,
        remote_no_context_takeover: false,
        local_max_window_bits: 15,
        remote_max_window_bits: 15,
        level: 6,
        mem_level: 8,
    };
    let (mut c, mut s) = pair(params, params);
    s.set_fragments(true);
    let text = "😀 fragments ".repeat(100);
    let (head, tail) = text.as_bytes().split_at(601); // inside a smiley
    c.send_text(head, false).unwrap();
    let first = transfer(&mut c, &mut s);
    let Event::TextFragment {
        data: first,
        fin: false,
    } = &first[0]
    else {
        panic!("{first:?}");
    };
    c.send_continuation(tail, false).unwrap();
    c.send_continuation(b"", true).unwrap();
    let rest = transfer(&mut c, &mut s);
    let mut got = first.clone();
    for event in &rest {
        let Event::TextFragment { data, .. } = event else {
            panic!("{event:?}");
        };
        got.push_str(data);
    }
    assert_eq!(got, text);
    assert!(matches!(rest.last(), Some(Event::TextFragment { fin: true, .. })));
    // A compressed message in one frame is still one message.
    c.send_text(b"one frame", true).unwrap();
    assert_eq!(transfer(&mut c, &mut s), vec![Event::Text("one frame".into())]);
}

use super::*;
use crate::frame::{write_frame, RSV1, RSV2};
use crate::mask::apply_mask;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn server() -> Connection {
    Connection::new(Config::new(Role::Server))
}

fn client() -> Connection {
    let mut c = Connection::new(Config::new(Role::Client));
    c.set_fixed_mask(KEY);
    c
}

/// A frame as a client sends it.
fn masked(fin: bool, rsv: u8, op: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame(&mut out, fin, rsv, op, payload, Some(KEY));
    out
}

fn unmasked(fin: bool, rsv: u8, op: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame(&mut out, fin, rsv, op, payload, None);
    out
}

fn feed(c: &mut Connection, data: &[u8]) -> Vec<Event> {
    c.receive_data(data).unwrap();
    c.take_events()
}

/// Asserts that the connection failed with `code` and sent that close frame.
fn assert_failed(c: &mut Connection, code: u16) {
    assert!(c.failure().is_some(), "expected a failure");
    assert_eq!(c.failure().unwrap().close_code(), code, "{}", c.failure().unwrap());
    let (out, eof) = c.take_output();
    if code != 1006 {
        let (h, n) = FrameHeader::parse(&out).unwrap().unwrap();
        assert_eq!(h.opcode, OpCode::Close);
        let mut payload = out[n..].to_vec();
        if let Some(k) = h.mask {
            apply_mask(&mut payload, k, 0);
        }
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code);
    }
    assert_eq!(eof, c.config().role == Role::Server);
}

fn frame(op: OpCode, fin: bool, payload: &[u8]) -> Event {
    Event::Frame {
        opcode: op,
        fin,
        rsv: 0,
        payload: payload.to_vec(),
    }
}

#[test]
fn server_receives_rfc_masked_text() {
    let mut s = server();
    let events = feed(
        &mut s,
        &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
    );
    assert_eq!(events, vec![frame(OpCode::Text, true, b"Hello")]);
    assert!(!s.has_output());
}

#[test]
fn client_receives_rfc_fragments_and_assembles() {
    let mut c = Connection::new(Config {
        assemble: true,
        ..Config::new(Role::Client)
    });
    let events = feed(
        &mut c,
        &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x89, 0x00, 0x80, 0x02, 0x6c, 0x6f],
    );
    assert_eq!(events, vec![Event::Ping(vec![]), Event::Text("Hello".into())]);
    // The ping in the middle of the message was answered.
    let (out, _) = c.take_output();
    let (h, _) = FrameHeader::parse(&out).unwrap().unwrap();
    assert_eq!(h.opcode, OpCode::Pong);
}

fn stream() -> Vec<u8> {
    let mut data = Vec::new();
    data.extend(masked(true, 0, OpCode::Text, "héllo wörld".as_bytes()));
    data.extend(masked(false, 0, OpCode::Binary, &[1, 2, 3]));
    data.extend(masked(true, 0, OpCode::Ping, b"p"));
    data.extend(masked(false, 0, OpCode::Continuation, &vec![7u8; 300]));
    data.extend(masked(true, 0, OpCode::Continuation, &vec![9u8; 70000]));
    data.extend(masked(false, 0, OpCode::Text, "𝄞".as_bytes().get(..2).unwrap()));
    data.extend(masked(true, 0, OpCode::Continuation, "𝄞".as_bytes().get(2..).unwrap()));
    data.extend(masked(true, 0, OpCode::Pong, b""));
    data.extend(masked(true, 0, OpCode::Close, b"\x03\xe8bye"));
    data
}

#[test]
fn any_chunking_yields_the_same_events() {
    for assemble in [false, true] {
        let config = Config {
            assemble,
            ..Config::new(Role::Server)
        };
        let data = stream();
        let mut whole = Connection::new(config.clone());
        let expected = feed(&mut whole, &data);
        assert_eq!(expected.len(), if assemble { 6 } else { 9 });
        assert!(whole.failure().is_none());
        let (expected_out, _) = whole.take_output();
        // Every split in two, and a sweep of chunk sizes.
        let mut splits: Vec<Vec<usize>> = (0..data.len()).step_by(7).map(|i| vec![i]).collect();
        for step in [1usize, 2, 3, 5, 13, 64, 1000, 4096] {
            splits.push((1..data.len() / step + 1).map(|k| k * step).collect());
        }
        for cuts in splits {
            let mut c = Connection::new(config.clone());
            let mut events = Vec::new();
            let mut prev = 0;
            for &cut in cuts.iter().chain(std::iter::once(&data.len())) {
                let cut = cut.min(data.len());
                if cut < prev {
                    continue;
                }
                events.extend(feed(&mut c, &data[prev..cut]));
                prev = cut;
            }
            assert_eq!(events, expected, "cuts={:?}", &cuts[..cuts.len().min(3)]);
            assert_eq!(c.take_output().0, expected_out);
        }
    }
}

#[test]
fn close_handshake_initiated_by_client() {
    let mut s = server();
    let events = feed(&mut s, &masked(true, 0, OpCode::Close, b"\x03\xe8bye"));
    assert_eq!(events, vec![Event::Close(b"\x03\xe8bye".to_vec())]);
    assert_eq!(s.state(), State::Closing);
    assert_eq!(
        s.close_rcvd(),
        Some(&CloseFrame {
            code: 1000,
            reason: "bye".into()
        })
    );
    assert_eq!(s.close_rcvd_then_sent(), Some(true));
    let (out, eof) = s.take_output();
    assert_eq!(out, unmasked(true, 0, OpCode::Close, b"\x03\xe8bye"));
    assert!(eof, "the server closes TCP first");
    // Anything after the close frame is ignored.
    assert!(feed(&mut s, &masked(true, 0, OpCode::Text, b"late")).is_empty());
    s.receive_eof();
    assert_eq!(s.state(), State::Closed);
    assert!(s.failure().is_none());
}

#[test]
fn close_handshake_initiated_by_server() {
    let mut s = server();
    s.send_close(Some(1001), "going").unwrap();
    assert_eq!(s.state(), State::Closing);
    assert!(s.close_expected());
    let (out, eof) = s.take_output();
    assert!(!eof);
    let mut c = client();
    let events = feed(&mut c, &out);
    assert_eq!(events, vec![Event::Close(b"\x03\xe9going".to_vec())]);
    let (reply, eof) = c.take_output();
    assert!(!eof, "the client waits for the server to close TCP");
    // Data frames sent before the close reply still arrive.
    let events = feed(
        &mut s,
        &[masked(true, 0, OpCode::Text, b"last").as_slice(), &reply].concat(),
    );
    assert_eq!(events[0], frame(OpCode::Text, true, b"last"));
    assert_eq!(s.close_rcvd_then_sent(), Some(false));
    assert!(s.take_output().1, "server sends EOF once both close frames passed");
    c.receive_eof();
    assert_eq!(c.state(), State::Closed);
    assert!(c.take_output().1, "client half-closes after the server's EOF");
}

#[test]
fn empty_close_is_echoed_empty() {
    let mut c = client();
    let events = feed(&mut c, &unmasked(true, 0, OpCode::Close, b""));
    assert_eq!(events, vec![Event::Close(vec![])]);
    assert_eq!(c.close_rcvd().unwrap().code, 1005);
    let (out, _) = c.take_output();
    assert_eq!(out, masked(true, 0, OpCode::Close, b""));
}

#[test]
fn eof_inside_a_frame_says_how_far_the_frame_got() {
    let long = unmasked(true, 0, OpCode::Binary, &[7; 300]);
    let cases: [(&[u8], &str); 5] = [
        (b"", "unexpected end of stream"),
        (b"\x81", "stream ends after 1 bytes, expected 2 bytes"),
        (&long[..3], "stream ends after 1 bytes, expected 2 bytes"),
        (b"\x82\x04\x01\x02", "stream ends after 2 bytes, expected 4 bytes"),
        (&long[..4], "stream ends after 0 bytes, expected 300 bytes"),
    ];
    for (data, text) in cases {
        let mut c = client();
        feed(&mut c, data);
        c.receive_eof();
        assert_eq!(c.failure().map(|v| v.to_string()).as_deref(), Some(text), "{data:?}");
        assert_eq!(c.failure().map(|v| v.close_code()), Some(1006));
    }
}

#[test]
fn eof_without_close_is_abnormal() {
    let mut s = server();
    feed(&mut s, &masked(true, 0, OpCode::Text, b"x")[..3]);
    s.receive_eof();
    // One byte of the masking key, counted as websockets counts it.
    let truncated = Violation::TruncatedFrame {
        received: 1,
        expected: 4,
    };
    assert_eq!(s.failure(), Some(&truncated));
    assert_eq!(truncated.to_string(), "stream ends after 1 bytes, expected 4 bytes");
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.close_sent(), None, "no close frame once the network is gone");
    assert_eq!(s.receive_data(b"x"), Err("stream ended"));
    s.receive_eof();
}

#[test]
fn masking_requirements() {
    let mut s = server();
    feed(&mut s, &unmasked(true, 0, OpCode::Text, b"hi"));
    assert_eq!(s.failure(), Some(&Violation::UnmaskedFrame));
    assert_failed(&mut s, 1002);
    let mut c = client();
    let events = feed(&mut c, &masked(true, 0, OpCode::Text, b"hi"));
    assert_eq!(events, vec![Event::Failed]);
    assert_eq!(c.failure(), Some(&Violation::MaskedFrame));
    assert_failed(&mut c, 1002);
}

#[test]
fn protocol_violations_and_their_codes() {
    let t = OpCode::Text;
    let cases: Vec<(Vec<u8>, Violation)> = vec![
        (masked(true, RSV1, t, b"x"), Violation::ReservedBits(RSV1)),
        (
            masked(true, RSV2 | 1, OpCode::Binary, b"x"),
            Violation::ReservedBits(RSV2 | 1),
        ),
        (masked(true, RSV1, OpCode::Ping, b"x"), Violation::ReservedBits(RSV1)),
        ([0x83, 0x80, 1, 2, 3, 4].to_vec(), Violation::ReservedOpcode(3)),
        ([0x8F, 0x80, 1, 2, 3, 4].to_vec(), Violation::ReservedOpcode(15)),
        (masked(false, 0, OpCode::Ping, b""), Violation::FragmentedControlFrame),
        (
            masked(true, 0, OpCode::Pong, &[0; 126]),
            Violation::ControlFrameTooLong(126),
        ),
        (
            masked(true, 0, OpCode::Continuation, b"x"),
            Violation::UnexpectedContinuation,
        ),
        (
            [masked(false, 0, t, b"a"), masked(true, 0, t, b"b")].concat(),
            Violation::ExpectedContinuation,
        ),
        (masked(true, 0, OpCode::Close, b"\x03"), Violation::CloseFrameTooShort),
        (
            masked(true, 0, OpCode::Close, b"\x03\xed"),
            Violation::InvalidCloseCode(1005),
        ),
        (
            masked(true, 0, OpCode::Close, b"\x00\x00"),
            Violation::InvalidCloseCode(0),
        ),
        (
            [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4].to_vec(),
            Violation::InvalidLength,
        ),
    ];
    for (data, violation) in cases {
        let mut s = server();
        let events = feed(&mut s, &data);
        assert_eq!(events.last(), Some(&Event::Failed));
        assert_eq!(s.failure(), Some(&violation));
        assert_failed(&mut s, 1002);
        assert_eq!(s.state(), State::Closing);
        assert!(feed(&mut s, &masked(true, 0, t, b"ignored")).is_empty());
    }
}

#[test]
fn invalid_utf8_fails_at_the_frame_that_carries_it() {
    let mut s = server();
    let mut events = feed(&mut s, &masked(false, 0, OpCode::Text, b"ok \xe2\x82"));
    assert_eq!(events.len(), 1);
    assert!(s.failure().is_none(), "an incomplete character is not an error yet");
    events = feed(&mut s, &masked(false, 0, OpCode::Continuation, b"\xff rest"));
    assert_eq!(events, vec![Event::Failed]);
    assert!(matches!(s.failure(), Some(Violation::InvalidUtf8 { .. })));
    assert_failed(&mut s, 1007);

    for bad in [&b"\xc0\xaf"[..], b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"trunc\xe2\x82"] {
        let mut s = server();
        feed(&mut s, &masked(true, 0, OpCode::Text, bad));
        assert_failed(&mut s, 1007);
    }
    let mut s = server();
    feed(&mut s, &masked(true, 0, OpCode::Close, b"\x03\xe8\xff"));
    assert_failed(&mut s, 1007);
    // Binary messages are not checked.
    let mut s = server();
    assert_eq!(feed(&mut s, &masked(true, 0, OpCode::Binary, b"\xff")).len(), 1);
    assert!(s.failure().is_none());
}

#[test]
fn size_limit_is_checked_before_allocating() {
    let mut s = server();
    // A header announcing 2^62 bytes: refused from the header alone.
    let header = [0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    assert_eq!(feed(&mut s, &header), vec![Event::Failed]);
    assert_eq!(
        s.failure(),
        Some(&Violation::FrameTooBig {
            size: Some(1 << 62),
            current: None,
            max_size: 1 << 20
        })
    );
    assert_failed(&mut s, 1009);

    let mut s = Connection::new(Config {
        max_size: Some(10),
        ..Config::new(Role::Server)
    });
    feed(&mut s, &masked(false, 0, OpCode::Binary, &[0; 6]));
    assert!(s.failure().is_none());
    feed(&mut s, &masked(true, 0, OpCode::Continuation, &[0; 5]));
    let too_big = Violation::FrameTooBig {
        size: Some(5),
        current: Some(6),
        max_size: 10,
    };
    assert_eq!(s.failure(), Some(&too_big));
    assert_eq!(
        too_big.to_string(),
        "frame with 5 bytes after reading 6 bytes exceeds limit of 10 bytes"
    );
    assert_failed(&mut s, 1009);

    let mut s = Connection::new(Config {
        max_size: None,
        ..Config::new(Role::Server)
    });
    assert_eq!(
        feed(&mut s, &masked(true, 0, OpCode::Binary, &vec![1; 2 << 20])).len(),
        1
    );
}

#[test]
fn size_limit_applies_to_each_message_alone() {
    // A message just under the limit, then another: the second frame's
    // header is checked against its own message only.
    let mut s = Connection::new(Config {
        max_size: Some(10),
        ..Config::new(Role::Server)
    });
    assert_eq!(feed(&mut s, &masked(true, 0, OpCode::Binary, &[0; 9])).len(), 1);
    assert_eq!(feed(&mut s, &masked(true, 0, OpCode::Binary, &[0; 10])).len(), 1);
    assert_eq!(feed(&mut s, &masked(false, 0, OpCode::Text, b"abcdefgh")).len(), 1);
    assert_eq!(feed(&mut s, &masked(true, 0, OpCode::Continuation, b"ij")).len(), 1);
    assert_eq!(feed(&mut s, &masked(true, 0, OpCode::Binary, &[0; 10])).len(), 1);
    assert!(s.failure().is_none());
}

#[test]
fn fragment_count_is_capped() {
    let mut s = Connection::new(Config {
        max_fragments: Some(3),
        ..Config::new(Role::Server)
    });
    feed(&mut s, &masked(false, 0, OpCode::Binary, b"a"));
    feed(&mut s, &masked(false, 0, OpCode::Continuation, b"b"));
    feed(&mut s, &masked(false, 0, OpCode::Continuation, b"c"));
    assert!(s.failure().is_none());
    feed(&mut s, &masked(false, 0, OpCode::Continuation, b""));
    assert_eq!(s.failure(), Some(&Violation::TooManyFragments { max_fragments: 3 }));
    assert_failed(&mut s, 1009);
}

#[test]
fn sending_frames() {
    let mut s = server();
    s.send_text("é".as_bytes(), true).unwrap();
    s.send_binary(b"ab", false).unwrap();
    assert_eq!(
        s.send_text(b"x", true),
        Err(SendError::Protocol("expected a continuation frame".into()))
    );
    s.send_ping(b"p").unwrap();
    s.send_continuation(b"c", true).unwrap();
    assert_eq!(
        s.send_continuation(b"c", true),
        Err(SendError::Protocol("unexpected continuation frame".into()))
    );
    assert!(matches!(s.send_ping(&[0; 126]), Err(SendError::Protocol(_))));
    let (out, eof) = s.take_output();
    assert!(!eof);
    let expected = [
        unmasked(true, 0, OpCode::Text, "é".as_bytes()),
        unmasked(false, 0, OpCode::Binary, b"ab"),
        unmasked(true, 0, OpCode::Ping, b"p"),
        unmasked(true, 0, OpCode::Continuation, b"c"),
    ]
    .concat();
    assert_eq!(out, expected);

    let mut c = client();
    c.send_binary(b"Hello", true).unwrap();
    assert_eq!(c.take_output().0, masked(true, 0, OpCode::Binary, b"Hello"));
}

#[test]
fn random_masks_differ() {
    let mut c = Connection::new(Config::new(Role::Client));
    let mut keys = std::collections::HashSet::new();
    for _ in 0..600 {
        c.send_binary(b"", true).unwrap();
        let (out, _) = c.take_output();
        let (h, _) = FrameHeader::parse(&out).unwrap().unwrap();
        keys.insert(h.mask.unwrap());
    }
    assert!(keys.len() > 590, "masking keys must be unpredictable");
}

#[test]
fn close_rules_when_sending() {
    let mut s = server();
    assert_eq!(
        s.send_close(None, "why"),
        Err(SendError::Protocol("cannot send a reason without a code".into()))
    );
    assert_eq!(
        s.send_close(Some(1005), ""),
        Err(SendError::Protocol("invalid status code 1005".into()))
    );
    assert!(s.send_close(Some(4000), &"x".repeat(124)).is_err());
    s.send_close(None, "").unwrap();
    assert_eq!(s.take_output().0, unmasked(true, 0, OpCode::Close, b""));
    assert_eq!(s.send_text(b"x", true), Err(SendError::InvalidState("closing")));
    assert_eq!(s.send_close(Some(1000), ""), Err(SendError::InvalidState("closing")));
    s.send_ping(b"still allowed").unwrap();
}

#[test]
fn fail_truncates_long_reasons_and_is_quiet_for_1006() {
    let mut s = server();
    s.fail(1011, &"é".repeat(100));
    let (out, eof) = s.take_output();
    assert!(eof);
    assert!(out.len() <= 2 + 125);
    assert_eq!(s.close_sent().unwrap().reason.len(), 122);
    let mut c = client();
    c.fail(1006, "network down");
    assert_eq!(c.take_output(), (vec![], false));
    assert_eq!(c.close_sent(), None);
}

/// An extension that uses RSV2 to mean "payload reversed", to exercise the hook.
struct Reverse;

impl Extension for Reverse {
    fn name(&self) -> &str {
        "x-reverse"
    }
    fn rsv_bits(&self) -> u8 {
        RSV2
    }
    fn decode(&mut self, frame: &mut DataFrame, max_size: Option<usize>) -> Result<(), Violation> {
        if frame.rsv & RSV2 != 0 {
            frame.payload.reverse();
            frame.rsv &= !RSV2;
        }
        if let Some(m) = max_size {
            if frame.payload.len() > m {
                return Err(Violation::MessageTooBig {
                    size: frame.payload.len() as u64,
                    max_size: m,
                });
            }
        }
        Ok(())
    }
    fn encode(&mut self, frame: &mut DataFrame) {
        frame.payload.reverse();
        frame.rsv |= RSV2;
    }
}

#[test]
fn extension_hook_in_both_directions() {
    let mut c = client();
    c.add_extension(Box::new(Reverse));
    c.send_text(b"abc", true).unwrap();
    let (out, _) = c.take_output();
    assert_eq!(out, masked(true, RSV2, OpCode::Text, b"cba"));
    let mut s = Connection::new(Config {
        assemble: true,
        ..Config::new(Role::Server)
    });
    s.add_extension(Box::new(Reverse));
    assert_eq!(feed(&mut s, &out), vec![Event::Text("abc".into())]);
    // RSV1 is still refused: the extension only claims RSV2.
    feed(&mut s, &masked(true, RSV1, OpCode::Text, b"abc"));
    assert_eq!(s.failure(), Some(&Violation::ReservedBits(RSV1)));
}

#[test]
fn control_frames_keep_extra_rsv_bits_for_extensions_above_the_core() {
    let config = Config {
        extra_rsv: RSV2,
        ..Config::new(Role::Server)
    };
    let mut s = Connection::new(config.clone());
    let events = feed(&mut s, &masked(true, RSV2, OpCode::Ping, b"p"));
    let frame = Event::Frame {
        opcode: OpCode::Ping,
        fin: true,
        rsv: RSV2,
        payload: b"p".to_vec(),
    };
    assert_eq!(events, vec![frame]);
    // Handled as a ping all the same: the pong is queued.
    assert_eq!(s.take_output().0, unmasked(true, 0, OpCode::Pong, b"p"));
    // Without RSV bits, the usual event.
    assert_eq!(
        feed(&mut s, &masked(true, 0, OpCode::Pong, b"")),
        vec![Event::Pong(Vec::new())]
    );
    // Whole messages have nowhere to carry the bits: still a violation.
    let mut s = Connection::new(Config {
        assemble: true,
        ..config
    });
    assert_eq!(
        feed(&mut s, &masked(true, RSV2, OpCode::Ping, b"p")),
        vec![Event::Failed]
    );
    assert_eq!(s.failure(), Some(&Violation::ReservedBits(RSV2)));
}

#[test]
fn send_control_frame_sets_rsv_bits() {
    let mut s = server();
    s.send_control_frame(OpCode::Ping, b"", RSV2).unwrap();
    assert_eq!(s.take_output().0, unmasked(true, RSV2, OpCode::Ping, b""));
    assert!(s.send_control_frame(OpCode::Close, b"", 0).is_err());
    assert!(s.send_control_frame(OpCode::Text, b"", 0).is_err());
}

#[test]
fn mask_override_masks_until_cleared() {
    let mut c = client();
    c.set_mask_override(Some([9, 9, 9, 9]));
    c.send_text(b"a", true).unwrap();
    c.send_ping(b"").unwrap();
    let (out, _) = c.take_output();
    let mut expected = Vec::new();
    write_frame(&mut expected, true, 0, OpCode::Text, b"a", Some([9, 9, 9, 9]));
    write_frame(&mut expected, true, 0, OpCode::Ping, b"", Some([9, 9, 9, 9]));
    assert_eq!(out, expected);
    c.set_mask_override(None);
    c.send_text(b"a", true).unwrap();
    let (out, _) = c.take_output();
    assert_ne!(&out[2..6], &[9, 9, 9, 9]);
}

#[test]
fn extra_rsv_bits_pass_through_untouched() {
    let mut s = Connection::new(Config {
        extra_rsv: RSV1,
        ..Config::new(Role::Server)
    });
    let events = feed(&mut s, &masked(true, RSV1, OpCode::Binary, b"z"));
    assert_eq!(
        events,
        vec![Event::Frame {
            opcode: OpCode::Binary,
            fin: true,
            rsv: RSV1,
            payload: b"z".to_vec()
        }]
    );
}

#[test]
fn held_pongs_coalesce_into_one_for_the_latest_ping() {
    // RFC 6455 section 5.5.3: a ping flood met while the I/O layer cannot
    // write costs one pending pong, not one pong per ping.
    let mut s = server();
    s.hold_pongs(true);
    let mut flood = Vec::new();
    for i in 0..1000u32 {
        flood.extend(masked(true, 0, OpCode::Ping, &i.to_be_bytes()));
    }
    let events = feed(&mut s, &flood);
    assert_eq!(events.len(), 1000);
    assert!(!s.has_output());
    s.hold_pongs(false);
    assert_eq!(
        s.take_output().0,
        unmasked(true, 0, OpCode::Pong, &999u32.to_be_bytes())
    );
    // Released: pongs flow again, one per ping.
    feed(&mut s, &masked(true, 0, OpCode::Ping, b"next"));
    assert_eq!(s.take_output().0, unmasked(true, 0, OpCode::Pong, b"next"));
    // A pong held when the connection closes is dropped.
    s.hold_pongs(true);
    feed(&mut s, &masked(true, 0, OpCode::Ping, b"late"));
    feed(&mut s, &masked(true, 0, OpCode::Close, &[0x03, 0xe8]));
    s.take_output();
    s.hold_pongs(false);
    assert!(!s.has_output());
}

#[test]
fn begin_frame_gives_the_same_bytes_as_send_frame() {
    for role in [Role::Server, Role::Client] {
        for len in [0usize, 5, 125, 126, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut a = Connection::new(Config::new(role));
            let mut b = Connection::new(Config::new(role));
            a.set_fixed_mask(KEY);
            b.set_fixed_mask(KEY);
            a.send_binary(&payload, false).unwrap();
            let (expected, _) = a.take_output();
            let start = b.begin_frame(OpCode::Binary, len, false).unwrap().unwrap();
            let mut got = start.header[..start.header_len].to_vec();
            let body_at = got.len();
            got.extend_from_slice(&payload);
            if let Some(key) = start.mask {
                apply_mask(&mut got[body_at..], key, 0);
            }
            assert_eq!(got, expected, "role={role:?} len={len}");
            // The fragmentation state moved on as with send_frame.
            assert_eq!(
                b.begin_frame(OpCode::Text, 1, true).unwrap_err(),
                SendError::Protocol("expected a continuation frame".into())
            );
        }
    }
}

#[test]
fn begin_frame_defers_to_the_output_buffer_when_it_is_not_empty() {
    let mut s = server();
    s.send_ping(b"p").unwrap();
    assert!(s.begin_frame(OpCode::Text, 1, true).unwrap().is_none());
    s.take_output();
    assert!(s.begin_frame(OpCode::Text, 1, true).unwrap().is_some());
    s.send_close(Some(1000), "").unwrap();
    s.take_output();
    assert_eq!(
        s.begin_frame(OpCode::Text, 1, true).unwrap_err(),
        SendError::InvalidState("closing")
    );
}

#[test]
fn frame_limit_refuses_large_frames_of_small_enough_messages() {
    let mut s = Connection::new(Config {
        max_frame: Some(4),
        ..Config::new(Role::Server)
    });
    feed(&mut s, &masked(false, 0, OpCode::Binary, b"abcd"));
    assert!(s.failure().is_none());
    feed(&mut s, &masked(true, 0, OpCode::Continuation, b"efghi"));
    // websockets' limit for the frame is the frame limit, plus what the
    // message holds already.
    let too_big = Violation::FrameTooBig {
        size: Some(5),
        current: Some(4),
        max_size: 8,
    };
    assert_eq!(s.failure(), Some(&too_big));
    assert_failed(&mut s, 1009);
}

// ------------------------------------------------------------------ sinks

use crate::sink::{PayloadSink, SinkFactory, VecSink, VecSinkFactory};

fn assembling(role: Role) -> Connection {
    let mut c = Connection::new(Config {
        assemble: true,
        max_size: Some(1 << 20),
        ..Config::new(role)
    });
    c.set_sink_factory(Box::new(VecSinkFactory { min: 100, max: 1 << 20 }));
    c
}

fn sink_bytes(c: &mut Connection) -> Vec<u8> {
    let sink = c.take_sink().expect("a filled sink");
    sink.into_any().downcast::<VecSink>().expect("a VecSink").0
}

#[test]
fn large_binary_messages_fill_a_sink_in_any_chunking() {
    let payload: Vec<u8> = (0..1000u32).map(|i| (i * 31) as u8).collect();
    for (role, data) in [
        (Role::Server, masked(true, 0, OpCode::Binary, &payload)),
        (Role::Client, unmasked(true, 0, OpCode::Binary, &payload)),
    ] {
        for step in [1, 3, 7, 13, 64, 999, data.len()] {
            let mut c = assembling(role);
            let mut events = Vec::new();
            for chunk in data.chunks(step) {
                events.extend(feed(&mut c, chunk));
            }
            assert_eq!(events, vec![Event::BinarySink], "step {step}");
            assert_eq!(sink_bytes(&mut c), payload, "step {step}");
            assert!(c.take_sink().is_none());
        }
    }
}

#[test]
fn sinks_keep_their_order_among_other_events() {
    let big: Vec<u8> = vec![7; 300];
    let other: Vec<u8> = vec![9; 200];
    let mut data = masked(true, 0, OpCode::Binary, &big);
    data.extend(masked(true, 0, OpCode::Ping, b"p"));
    data.extend(masked(true, 0, OpCode::Binary, b"small"));
    data.extend(masked(true, 0, OpCode::Binary, &other));
    let mut c = assembling(Role::Server);
    let events = feed(&mut c, &data);
    assert_eq!(
        events,
        vec![
            Event::BinarySink,
            Event::Ping(b"p".to_vec()),
            Event::Binary(b"small".to_vec()),
            Event::BinarySink
        ]
    );
    assert_eq!(sink_bytes(&mut c), big);
    assert_eq!(sink_bytes(&mut c), other);
}

#[test]
fn only_whole_binary_messages_without_extensions_get_sinks() {
    let text = "é".repeat(100);
    let half = vec![1u8; 150];
    let mut data = masked(true, 0, OpCode::Text, text.as_bytes());
    data.extend(masked(false, 0, OpCode::Binary, &half));
    data.extend(masked(true, 0, OpCode::Continuation, &half));
    let mut c = assembling(Role::Server);
    let events = feed(&mut c, &data);
    assert_eq!(events, vec![Event::Text(text), Event::Binary(vec![1u8; 300])]);
    assert!(c.take_sink().is_none());

    // Frame mode (no assembly) delivers frames, never sinks.
    let mut c = server();
    c.set_sink_factory(Box::new(VecSinkFactory { min: 1, max: 1 << 20 }));
    let events = feed(&mut c, &masked(true, 0, OpCode::Binary, &half));
    assert_eq!(events, vec![frame(OpCode::Binary, true, &half)]);

    // With an extension, frames may be transformed: no sinks either.
    let mut c = assembling(Role::Server);
    c.add_extension(Box::new(crate::deflate::PerMessageDeflate::new(Default::default())));
    let events = feed(&mut c, &masked(true, 0, OpCode::Binary, &half));
    assert_eq!(events, vec![Event::Binary(half.clone())]);
}

/// Counts the sinks it was asked for.
struct Counting(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl SinkFactory for Counting {
    fn make(&mut self, len: usize) -> Option<Box<dyn PayloadSink>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(Box::new(VecSink(vec![0; len])))
    }
}

#[test]
fn oversized_frames_are_refused_before_a_sink_is_made() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut c = Connection::new(Config {
        assemble: true,
        max_size: Some(100),
        ..Config::new(Role::Server)
    });
    c.set_sink_factory(Box::new(Counting(calls.clone())));
    let mut header = Vec::new();
    crate::frame::write_header(&mut header, true, 0, OpCode::Binary, 1 << 40, Some(KEY));
    assert_eq!(feed(&mut c, &header), vec![Event::Failed]);
    assert_failed(&mut c, 1009);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn huge_announced_frames_get_no_sink() {
    // Without max_size, a header may announce any length: the sink would
    // hold all of it up front, so past SINK_MAX the growing buffer is used.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut c = Connection::new(Config {
        assemble: true,
        max_size: None,
        ..Config::new(Role::Server)
    });
    c.set_sink_factory(Box::new(Counting(calls.clone())));
    let mut header = Vec::new();
    crate::frame::write_header(&mut header, true, 0, OpCode::Binary, (SINK_MAX + 1) as usize, Some(KEY));
    assert!(feed(&mut c, &header).is_empty());
    assert!(feed(&mut c, &[0; 1000]).is_empty());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    let mut header = Vec::new();
    let mut c = Connection::new(Config {
        assemble: true,
        max_size: None,
        ..Config::new(Role::Server)
    });
    c.set_sink_factory(Box::new(Counting(calls.clone())));
    crate::frame::write_header(&mut header, true, 0, OpCode::Binary, SINK_MAX as usize, Some(KEY));
    assert!(feed(&mut c, &header).is_empty());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn eof_in_a_sink_payload_fails_without_a_message() {
    let data = masked(true, 0, OpCode::Binary, &[5u8; 500]);
    let mut c = assembling(Role::Server);
    assert!(feed(&mut c, &data[..300]).is_empty());
    c.receive_eof();
    assert_eq!(c.take_events(), vec![Event::Failed]);
    assert!(c.take_sink().is_none());
    assert_failed(&mut c, 1006);
}

/// Gives sinks one byte too short.
struct Short;

impl SinkFactory for Short {
    fn make(&mut self, len: usize) -> Option<Box<dyn PayloadSink>> {
        Some(Box::new(VecSink(vec![0; len - 1])))
    }
}

#[test]
fn a_sink_of_the_wrong_size_is_declined() {
    let payload = vec![3u8; 200];
    let mut c = assembling(Role::Server);
    c.set_sink_factory(Box::new(Short));
    let events = feed(&mut c, &masked(true, 0, OpCode::Binary, &payload));
    assert_eq!(events, vec![Event::Binary(payload)]);
}

// ------------------------------------------------- strict protocol behaviour

/// Feeds `data` in one piece and split in two at every byte, and returns
/// what each way gave: the events and the output (bytes and EOF), checking
/// that all ways agree.
fn feed_every_split(config: &Config, data: &[u8]) -> (Connection, Vec<Event>, Vec<u8>, bool) {
    let mut whole = Connection::new(config.clone());
    whole.set_fixed_mask(KEY);
    let events = feed(&mut whole, data);
    let (out, eof) = whole.take_output();
    for cut in 0..=data.len() {
        let mut c = Connection::new(config.clone());
        c.set_fixed_mask(KEY);
        let mut got = feed(&mut c, &data[..cut]);
        got.extend(feed(&mut c, &data[cut..]));
        assert_eq!(got, events, "cut={cut}");
        assert_eq!(c.take_output(), (out.clone(), eof), "cut={cut}");
        assert_eq!(c.failure(), whole.failure(), "cut={cut}");
        assert_eq!(c.state(), whole.state(), "cut={cut}");
    }
    (whole, events, out, eof)
}

fn deferring(role: Role) -> Config {
    Config {
        defer_failure: true,
        ..Config::new(role)
    }
}

/// The close frame at the start of `out`: its code and reason.
fn close_in(out: &[u8]) -> (u16, String) {
    let (h, n) = FrameHeader::parse(out).unwrap().unwrap();
    assert_eq!(h.opcode, OpCode::Close);
    let mut payload = out[n..n + h.payload_len as usize].to_vec();
    if let Some(k) = h.mask {
        apply_mask(&mut payload, k, 0);
    }
    let close = CloseFrame::parse(&payload).unwrap();
    (close.code, close.reason)
}

#[test]
fn deferred_failure_lets_answers_go_out_before_the_close_frame() {
    // A message, then a violation, then a ping: one read or two.
    let data = [
        masked(true, 0, OpCode::Text, b"question"),
        unmasked(true, 0, OpCode::Text, b"bad"),
        masked(true, 0, OpCode::Ping, b"after"),
    ]
    .concat();
    let (mut s, events, out, eof) = feed_every_split(&deferring(Role::Server), &data);
    assert_eq!(events, vec![frame(OpCode::Text, true, b"question"), Event::Failed]);
    assert_eq!(s.failure(), Some(&Violation::UnmaskedFrame));
    assert!(
        out.is_empty() && !eof,
        "nothing written, not even a pong for the later ping"
    );
    assert_eq!(s.state(), State::Open);
    assert!(s.failure_pending());
    assert!(!s.close_expected());
    // Later input is ignored too.
    assert!(feed(&mut s, &masked(true, 0, OpCode::Ping, b"later")).is_empty());
    assert!(!s.has_output());
    // The answer goes out first, then the close frame and the server's EOF.
    s.send_text(b"answer", true).unwrap();
    assert!(s.fail_pending());
    let (out, eof) = s.take_output();
    let answer = unmasked(true, 0, OpCode::Text, b"answer");
    assert_eq!(&out[..answer.len()], answer.as_slice());
    assert_eq!(close_in(&out[answer.len()..]), (1002, "incorrect masking".into()));
    assert!(eof);
    assert_eq!(s.state(), State::Closing);
    assert_eq!(s.close_sent().map(|c| c.code), Some(1002));
    assert_eq!(s.failure(), Some(&Violation::UnmaskedFrame));
    assert!(!s.fail_pending(), "applied once");
    assert!(!s.has_output());
    s.receive_eof();
    assert_eq!(s.failure(), Some(&Violation::UnmaskedFrame));
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn deferred_failure_of_a_client_sends_a_masked_close_and_no_eof() {
    let data = [
        unmasked(true, 0, OpCode::Binary, b"m"),
        unmasked(true, 0, OpCode::Ping, b"before"),
        unmasked(true, 0, OpCode::Text, b"\xff"),
    ]
    .concat();
    let (mut c, events, out, eof) = feed_every_split(&deferring(Role::Client), &data);
    assert_eq!(
        events,
        vec![
            frame(OpCode::Binary, true, b"m"),
            Event::Ping(b"before".to_vec()),
            Event::Failed
        ]
    );
    // The ping before the violation is answered as usual.
    assert_eq!(out, masked(true, 0, OpCode::Pong, b"before"));
    assert!(!eof);
    assert_eq!(c.failure().map(|v| v.close_code()), Some(1007));
    assert!(c.fail_pending());
    let (out, eof) = c.take_output();
    assert_eq!(close_in(&out).0, 1007);
    assert!(FrameHeader::parse(&out).unwrap().unwrap().0.mask.is_some());
    assert!(!eof, "the client waits for the server to close TCP");
    assert_eq!(c.state(), State::Closing);
}

#[test]
fn without_defer_failure_the_close_frame_is_written_at_once() {
    let data = [
        masked(true, 0, OpCode::Text, b"question"),
        unmasked(true, 0, OpCode::Text, b"bad"),
    ]
    .concat();
    let (mut s, events, out, eof) = feed_every_split(&Config::new(Role::Server), &data);
    assert_eq!(events, vec![frame(OpCode::Text, true, b"question"), Event::Failed]);
    assert_eq!(close_in(&out).0, 1002);
    assert!(eof);
    assert_eq!(s.state(), State::Closing);
    assert!(!s.failure_pending());
    assert!(!s.fail_pending(), "nothing deferred");
}

#[test]
fn fail_pending_without_a_failure_does_nothing() {
    let mut s = Connection::new(deferring(Role::Server));
    assert!(!s.fail_pending());
    feed(&mut s, &masked(true, 0, OpCode::Text, b"fine"));
    assert!(!s.fail_pending());
    assert!(!s.has_output());
    assert_eq!(s.state(), State::Open);
}

#[test]
fn eof_after_a_deferred_failure_keeps_the_failure() {
    for role in [Role::Server, Role::Client] {
        let mut c = Connection::new(deferring(role));
        let bad = match role {
            Role::Server => unmasked(true, 0, OpCode::Text, b"x"),
            Role::Client => masked(true, 0, OpCode::Text, b"x"),
        };
        assert_eq!(feed(&mut c, &bad), vec![Event::Failed]);
        c.receive_eof();
        assert!(c.take_events().is_empty(), "no second Failed for the EOF");
        assert!(matches!(
            c.failure(),
            Some(Violation::UnmaskedFrame | Violation::MaskedFrame)
        ));
        assert_eq!(c.state(), State::Closed);
        assert!(!c.fail_pending(), "moot once closed");
        let (out, eof) = c.take_output();
        assert!(out.is_empty(), "no close frame to a peer that is gone");
        assert!(eof, "both sides close TCP once the peer did");
    }
}

#[test]
fn fail_pending_after_the_application_closed_or_failed() {
    let bad = masked(true, 0, OpCode::Close, b"\x03");
    // The application failed the connection itself: its failure wins.
    let mut s = Connection::new(deferring(Role::Server));
    feed(&mut s, &bad);
    s.fail(1011, "handler crashed");
    assert!(!s.fail_pending());
    let (out, eof) = s.take_output();
    assert_eq!(close_in(&out), (1011, "handler crashed".into()));
    assert!(eof);
    assert_eq!(s.failure(), Some(&Violation::CloseFrameTooShort));
    // The application started the closing handshake: no second close
    // frame, but the server closes TCP, as the peer's answer won't be read.
    let mut s = Connection::new(deferring(Role::Server));
    feed(&mut s, &bad);
    s.send_close(Some(1000), "").unwrap();
    let (out, eof) = s.take_output();
    assert_eq!(close_in(&out).0, 1000);
    assert!(!eof);
    assert!(s.fail_pending());
    assert_eq!(s.take_output(), (Vec::new(), true));
    assert_eq!(s.close_sent().map(|c| c.code), Some(1000));
    assert_eq!(s.state(), State::Closing);
}

#[test]
fn text_fails_inside_a_frame_as_soon_as_it_is_invalid() {
    // One 1000-byte text frame with a bad byte at payload offset 3.
    let mut payload = b"ok \xff".to_vec();
    payload.resize(1000, b'a');
    for (role, data) in [
        (Role::Server, masked(true, 0, OpCode::Text, &payload)),
        (Role::Client, unmasked(true, 0, OpCode::Text, &payload)),
    ] {
        let header_len = data.len() - payload.len();
        let bad_at = header_len + 3;
        for cut in 0..data.len() {
            let mut c = Connection::new(Config::new(role));
            let first = feed(&mut c, &data[..cut]);
            if cut > bad_at {
                // The read carrying the bad byte fails, long before the
                // frame is complete.
                assert_eq!(first, vec![Event::Failed], "cut={cut}");
                assert!(matches!(c.failure(), Some(Violation::InvalidUtf8 { position: 3, .. })));
                assert_failed(&mut c, 1007);
                assert!(feed(&mut c, &data[cut..]).is_empty());
            } else {
                assert!(first.is_empty() && c.failure().is_none(), "cut={cut}");
                assert_eq!(feed(&mut c, &data[cut..]), vec![Event::Failed]);
                assert!(matches!(c.failure(), Some(Violation::InvalidUtf8 { position: 3, .. })));
            }
        }
    }
}

#[test]
fn text_split_inside_a_character_passes_and_truncated_text_fails_at_the_end() {
    let good = masked(true, 0, OpCode::Text, "𝄞 κόσμε €".as_bytes());
    let (_, events, _, _) = feed_every_split(&Config::new(Role::Server), &good);
    assert_eq!(events, vec![frame(OpCode::Text, true, "𝄞 κόσμε €".as_bytes())]);
    // An unfinished character is an error only once the message ends.
    let truncated = masked(true, 0, OpCode::Text, b"trunc\xe2\x82");
    for cut in 0..truncated.len() {
        let mut s = server();
        assert!(feed(&mut s, &truncated[..cut]).is_empty(), "cut={cut}");
        assert_eq!(feed(&mut s, &truncated[cut..]), vec![Event::Failed]);
        assert!(matches!(s.failure(), Some(Violation::InvalidUtf8 { position: 5, .. })));
    }
    // The same bytes in a non-final fragment are fine so far.
    let (s, events, _, _) = feed_every_split(
        &Config::new(Role::Server),
        &masked(false, 0, OpCode::Text, b"trunc\xe2\x82"),
    );
    assert_eq!(events.len(), 1);
    assert!(s.failure().is_none());
}

#[test]
fn deferred_failure_inside_a_frame() {
    let mut payload = b"fine".to_vec();
    payload.extend(b"\xc0\xaf");
    payload.resize(300, b'z');
    let data = [
        masked(true, 0, OpCode::Text, b"first"),
        masked(true, 0, OpCode::Text, &payload),
    ]
    .concat();
    // Cut before the bad byte: the frame is still incomplete when it fails.
    let mut s = Connection::new(deferring(Role::Server));
    let events = feed(&mut s, &data[..data.len() - 200]);
    assert_eq!(events, vec![frame(OpCode::Text, true, b"first"), Event::Failed]);
    assert!(matches!(s.failure(), Some(Violation::InvalidUtf8 { position: 4, .. })));
    assert!(!s.has_output());
    assert!(feed(&mut s, &data[data.len() - 200..]).is_empty());
    assert!(s.fail_pending());
    assert_eq!(close_in(&s.take_output().0).0, 1007);
}

#[test]
fn close_in_the_middle_of_a_fragmented_message_is_answered_normally() {
    for assemble in [false, true] {
        let config = Config {
            assemble,
            ..Config::new(Role::Server)
        };
        let data = [
            masked(false, 0, OpCode::Text, b"frag"),
            masked(true, 0, OpCode::Ping, b"p"),
            masked(true, 0, OpCode::Close, b"\x03\xe8bye"),
            // Whatever follows the close frame is ignored, even a
            // continuation that would be valid, or garbage.
            masked(true, 0, OpCode::Continuation, b"ment"),
            unmasked(true, 0, OpCode::Text, b"bad"),
        ]
        .concat();
        let (s, events, out, eof) = feed_every_split(&config, &data);
        let mut expected = vec![Event::Ping(b"p".to_vec()), Event::Close(b"\x03\xe8bye".to_vec())];
        if !assemble {
            expected.insert(0, frame(OpCode::Text, false, b"frag"));
        }
        assert_eq!(events, expected);
        assert!(s.failure().is_none());
        let pong = unmasked(true, 0, OpCode::Pong, b"p");
        assert_eq!(&out[..pong.len()], pong.as_slice());
        assert_eq!(close_in(&out[pong.len()..]), (1000, "bye".into()));
        assert!(eof);
        assert_eq!(s.state(), State::Closing);
        assert_eq!(s.close_rcvd_then_sent(), Some(true));
    }
    // A client answers the same way, and the message is dropped.
    let mut c = client();
    let events = feed(
        &mut c,
        &[
            unmasked(false, 0, OpCode::Binary, b"x"),
            unmasked(true, 0, OpCode::Close, b"\x03\xe9"),
        ]
        .concat(),
    );
    assert_eq!(events.last(), Some(&Event::Close(b"\x03\xe9".to_vec())));
    assert_eq!(close_in(&c.take_output().0).0, 1001);
    c.receive_eof();
    assert!(c.failure().is_none());
}

#[test]
fn text_is_valid_whatever_check_text_says() {
    let no_check = Config {
        assemble: true,
        check_text: false,
        ..Config::new(Role::Client)
    };
    // Invalid text cannot become a String: the connection fails with 1007.
    for data in [
        unmasked(true, 0, OpCode::Text, b"\xff\xfe"),
        [
            unmasked(false, 0, OpCode::Text, b"ok \xe2"),
            unmasked(true, 0, OpCode::Continuation, b"\x28"),
        ]
        .concat(),
        unmasked(true, 0, OpCode::Text, b"trunc\xe2\x82"),
    ] {
        let (c, events, out, _) = feed_every_split(&no_check, &data);
        assert_eq!(events, vec![Event::Failed]);
        assert!(matches!(c.failure(), Some(Violation::InvalidUtf8 { .. })));
        assert_eq!(close_in(&out).0, 1007);
    }
    // Valid text, split inside a character across frames, comes through.
    let euro = "€".as_bytes();
    let data = [
        unmasked(false, 0, OpCode::Text, &euro[..1]),
        unmasked(true, 0, OpCode::Continuation, &euro[1..]),
    ]
    .concat();
    let (c, events, _, _) = feed_every_split(&no_check, &data);
    assert_eq!(events, vec![Event::Text("€".into())]);
    assert!(c.failure().is_none());
    // In frame mode, unchecked text goes through as bytes, for an extension
    // above the core to decode.
    let frames = Config {
        check_text: false,
        ..Config::new(Role::Client)
    };
    let (_, events, _, _) = feed_every_split(&frames, &unmasked(true, 0, OpCode::Text, b"\xff"));
    assert_eq!(events, vec![frame(OpCode::Text, true, b"\xff")]);
}

/// An extension that streams frames with RSV2 through the trait's default
/// methods, which pass the bytes through.
struct Passthrough;

impl Extension for Passthrough {
    fn name(&self) -> &str {
        "x-passthrough"
    }
    fn rsv_bits(&self) -> u8 {
        RSV2
    }
    fn begin_decode(&mut self, _: OpCode, _: bool, rsv: u8, _: u64) -> Result<FrameDecoding, Violation> {
        Ok(match rsv & RSV2 {
            0 => FrameDecoding::Unchanged { rsv },
            _ => FrameDecoding::Streamed { rsv: rsv & !RSV2 },
        })
    }
    fn decode(&mut self, _: &mut DataFrame, _: Option<usize>) -> Result<(), Violation> {
        Err(Violation::Extension {
            code: close_code::PROTOCOL_ERROR,
            reason: "a streamed frame is never decoded whole".into(),
        })
    }
    fn encode(&mut self, _: &mut DataFrame) {}
}

#[test]
fn a_streaming_extension_sees_the_payload_as_it_arrives() {
    let config = Config {
        assemble: true,
        ..Config::new(Role::Server)
    };
    let mut payload = b"ok \xff".to_vec();
    payload.resize(1000, b'a');
    for rsv in [0, RSV2] {
        let data = masked(true, rsv, OpCode::Text, &payload);
        let mut s = Connection::new(config.clone());
        s.add_extension(Box::new(Passthrough));
        assert_eq!(feed(&mut s, &data[..100]), vec![Event::Failed], "rsv={rsv}");
        assert!(matches!(s.failure(), Some(Violation::InvalidUtf8 { position: 3, .. })));
    }
    let data = [
        masked(false, RSV2, OpCode::Text, "κό".as_bytes()),
        masked(true, 0, OpCode::Continuation, "σμε".as_bytes()),
    ]
    .concat();
    let mk = || {
        let mut s = Connection::new(config.clone());
        s.add_extension(Box::new(Passthrough));
        s
    };
    for cut in 0..=data.len() {
        let mut s = mk();
        let mut events = feed(&mut s, &data[..cut]);
        events.extend(feed(&mut s, &data[cut..]));
        assert_eq!(events, vec![Event::Text("κόσμε".into())], "cut={cut}");
    }
    // The default decode_chunk keeps to the limit it is given.
    let mut out = b"earlier".to_vec();
    let mut ext = Passthrough;
    assert_eq!(
        ext.decode_chunk(b"abcdef", &mut DecodeBuf::new(&mut out), Some(3)),
        Err(Violation::MessageTooBig { size: 4, max_size: 3 })
    );
    assert_eq!(out, b"earlierabcd");
    assert_eq!(ext.finish_frame(&mut DecodeBuf::new(&mut out), Some(0)), Ok(()));
}

fn fragmenting(role: Role) -> Config {
    Config {
        assemble: true,
        fragments: true,
        ..Config::new(role)
    }
}

fn text_fragment(data: &str, fin: bool) -> Event {
    Event::TextFragment { data: data.into(), fin }
}

#[test]
fn fragments_come_as_they_arrive_and_single_frames_whole() {
    let mut s = Connection::new(fragmenting(Role::Server));
    // A message in one frame is one whole message, as without fragments.
    assert_eq!(
        feed(&mut s, &masked(true, 0, OpCode::Text, b"whole")),
        vec![Event::Text("whole".into())]
    );
    // Each frame of a fragmented one is handed over with the read that
    // completes it, before the next frame is received.
    assert_eq!(
        feed(&mut s, &masked(false, 0, OpCode::Binary, b"\x01\x02")),
        vec![Event::BinaryFragment {
            data: vec![1, 2],
            fin: false
        }]
    );
    assert_eq!(
        feed(&mut s, &masked(true, 0, OpCode::Ping, b"p")),
        vec![Event::Ping(b"p".to_vec())]
    );
    assert_eq!(
        feed(&mut s, &masked(true, 0, OpCode::Continuation, b"")),
        vec![Event::BinaryFragment {
            data: vec![],
            fin: true
        }]
    );
    // A character split across frames comes out in the frame that ends it.
    let smiley = "😀".as_bytes();
    let mut data = masked(false, 0, OpCode::Text, &[b"a", &smiley[..1]].concat());
    data.extend(masked(false, 0, OpCode::Continuation, &smiley[1..3]));
    data.extend(masked(false, 0, OpCode::Continuation, &smiley[3..]));
    data.extend(masked(true, 0, OpCode::Continuation, b""));
    assert_eq!(
        feed(&mut s, &data),
        vec![
            text_fragment("a", false),
            text_fragment("", false),
            text_fragment("😀", false),
            text_fragment("", true),
        ]
    );
    assert!(s.failure().is_none());
}

#[test]
fn fragments_in_any_chunking_yield_the_same_events() {
    let config = fragmenting(Role::Server);
    let data = stream();
    let mut whole = Connection::new(config.clone());
    let expected = feed(&mut whole, &data);
    assert_eq!(
        expected,
        vec![
            Event::Text("héllo wörld".into()),
            Event::BinaryFragment {
                data: vec![1, 2, 3],
                fin: false
            },
            Event::Ping(b"p".to_vec()),
            Event::BinaryFragment {
                data: vec![7; 300],
                fin: false
            },
            Event::BinaryFragment {
                data: vec![9; 70000],
                fin: true
            },
            text_fragment("", false),
            text_fragment("𝄞", true),
            Event::Pong(vec![]),
            Event::Close(b"\x03\xe8bye".to_vec()),
        ]
    );
    for step in [1usize, 2, 3, 5, 13, 4096] {
        let mut c = Connection::new(config.clone());
        let events: Vec<Event> = data.chunks(step).flat_map(|chunk| feed(&mut c, chunk)).collect();
        assert_eq!(events, expected, "step={step}");
    }
}

#[test]
fn fragments_keep_the_limits_of_the_whole_message() {
    let mut s = Connection::new(Config {
        max_size: Some(5),
        ..fragmenting(Role::Server)
    });
    let first = feed(&mut s, &masked(false, 0, OpCode::Binary, b"abc"));
    assert_eq!(first.len(), 1, "the first fragment is within the limit");
    let events = feed(&mut s, &masked(true, 0, OpCode::Continuation, b"def"));
    assert_eq!(events, vec![Event::Failed]);
    assert_failed(&mut s, 1009);
    // Invalid UTF-8 fails at the fragment that carries it.
    let mut s = Connection::new(fragmenting(Role::Server));
    assert_eq!(
        feed(&mut s, &masked(false, 0, OpCode::Text, b"ok \xe2\x82")),
        vec![text_fragment("ok ", false)]
    );
    assert_eq!(
        feed(&mut s, &masked(false, 0, OpCode::Continuation, b"x")),
        vec![Event::Failed]
    );
    assert_failed(&mut s, 1007);
    // A message ending in the middle of a character is invalid too.
    let mut s = Connection::new(fragmenting(Role::Server));
    feed(&mut s, &masked(false, 0, OpCode::Text, b"\xe2\x82"));
    assert_eq!(
        feed(&mut s, &masked(true, 0, OpCode::Continuation, b"")),
        vec![Event::Failed]
    );
    assert_failed(&mut s, 1007);
}

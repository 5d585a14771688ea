"""Tests for ferrows.frames: opcodes, close codes, Frame.__str__ and Close."""

from __future__ import annotations

import struct

import pytest
import websockets.frames as wf
from hypothesis import assume, given
from hypothesis import strategies as st

from ferrows import frames
from ferrows.exceptions import ProtocolError
from ferrows.frames import (
    CLOSE_CODE_EXPLANATIONS,
    CTRL_OPCODES,
    DATA_OPCODES,
    OK_CLOSE_CODES,
    Close,
    CloseCode,
    Frame,
    Opcode,
)


def test_opcodes() -> None:
    assert [(op.name, op.value) for op in Opcode] == [
        ("CONT", 0),
        ("TEXT", 1),
        ("BINARY", 2),
        ("CLOSE", 8),
        ("PING", 9),
        ("PONG", 10),
    ]
    assert Opcode(1) is Opcode.TEXT
    assert frames.OP_CONT is Opcode.CONT
    assert frames.OP_TEXT is Opcode.TEXT
    assert frames.OP_BINARY is Opcode.BINARY
    assert frames.OP_CLOSE is Opcode.CLOSE
    assert frames.OP_PING is Opcode.PING
    assert frames.OP_PONG is Opcode.PONG
    assert DATA_OPCODES == (Opcode.CONT, Opcode.TEXT, Opcode.BINARY)
    assert CTRL_OPCODES == (Opcode.CLOSE, Opcode.PING, Opcode.PONG)


def test_close_codes() -> None:
    assert {c.name: c.value for c in CloseCode} == {c.name: c.value for c in wf.CloseCode}
    assert CloseCode.SERVICE_RESTART.value == 1012
    assert CloseCode.TRY_AGAIN_LATER.value == 1013
    assert CloseCode.BAD_GATEWAY.value == 1014
    assert CloseCode.TLS_HANDSHAKE.value == 1015


def test_close_code_explanations() -> None:
    assert CLOSE_CODE_EXPLANATIONS == wf.CLOSE_CODE_EXPLANATIONS
    assert CLOSE_CODE_EXPLANATIONS[1000] == "OK"
    assert CLOSE_CODE_EXPLANATIONS[1011] == "internal error"


def test_ok_close_codes() -> None:
    # 1005 is what a close frame without a code is reported as; such a
    # closing handshake is clean (ConnectionClosedOK), as in websockets.
    assert OK_CLOSE_CODES == {1000, 1001, 1005} == set(wf.OK_CLOSE_CODES)


# Close


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (1000, "", "1000 (OK)"),
        (1000, "bye", "1000 (OK) bye"),
        (CloseCode.GOING_AWAY, "", "1001 (going away)"),
        (1002, "", "1002 (protocol error)"),
        (1005, "", "1005 (no status received [internal])"),
        (1006, "", "1006 (abnormal closure [internal])"),
        (
            1011,
            "keepalive ping timeout",
            "1011 (internal error) keepalive ping timeout",
        ),
        (1014, "", "1014 (bad gateway)"),
        (3000, "", "3000 (registered)"),
        (3999, "x", "3999 (registered) x"),
        (4000, "", "4000 (private use)"),
        (4999, "", "4999 (private use)"),
        (1004, "", "1004 (unknown)"),
        (2999, "", "2999 (unknown)"),
        (5000, "", "5000 (unknown)"),
    ],
)
def test_close_str(code: int, reason: str, expected: str) -> None:
    assert str(Close(code, reason)) == expected == str(wf.Close(code, reason))


def test_close_parse() -> None:
    assert Close.parse(b"\x03\xe8") == Close(1000, "")
    assert Close.parse(b"\x03\xe8bye") == Close(1000, "bye")
    assert Close.parse(bytearray(b"\x03\xe9")) == Close(1001, "")
    assert Close.parse(memoryview(b"\x0f\xa0caf\xc3\xa9")) == Close(4000, "café")


def test_close_parse_empty() -> None:
    close = Close.parse(b"")
    assert close == Close(CloseCode.NO_STATUS_RCVD, "")
    assert close.code is CloseCode.NO_STATUS_RCVD


def test_close_parse_too_short() -> None:
    with pytest.raises(ProtocolError, match="close frame too short"):
        Close.parse(b"\x03")


def test_close_parse_invalid_utf8() -> None:
    with pytest.raises(UnicodeDecodeError):
        Close.parse(b"\x03\xe8\xff")


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_close_parse_invalid_code(code: int) -> None:
    with pytest.raises(ProtocolError, match=f"invalid status code {code}"):
        Close.parse(struct.pack("!H", code))


def test_close_serialize() -> None:
    assert Close(1000, "").serialize() == b"\x03\xe8"
    assert Close(CloseCode.INTERNAL_ERROR, "oops").serialize() == b"\x03\xf3oops"
    assert Close(4000, "café").serialize() == b"\x0f\xa0caf\xc3\xa9"
    assert Close(1001, "bye").serialize() == wf.Close(1001, "bye").serialize()


VALID_CODES = [1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000]


@pytest.mark.parametrize("code", VALID_CODES)
def test_close_check_valid(code: int) -> None:
    Close(code, "").check()


@pytest.mark.parametrize("code", INVALID_CODES)
def test_close_check_invalid(code: int) -> None:
    with pytest.raises(ProtocolError, match=f"^invalid status code {code}$"):
        Close(code, "").check()
    with pytest.raises(ProtocolError):
        Close(code, "").serialize()


sendable_codes = st.sampled_from([1000, 1001, 1002, 1003, *range(1007, 1015)]) | st.integers(3000, 4999)


@given(code=sendable_codes, reason=st.text())
def test_close_round_trip(code: int, reason: str) -> None:
    close = Close(code, reason)
    data = close.serialize()
    assert Close.parse(data) == close
    assert data == wf.Close(code, reason).serialize()


@given(data=st.binary(max_size=130))
def test_close_parse_errors_are_documented(data: bytes) -> None:
    # Any payload either parses or raises one of the documented errors.
    try:
        Close.parse(data)
    except (ProtocolError, UnicodeDecodeError):
        pass


# Frame


def test_frame_fields() -> None:
    frame = Frame(Opcode.TEXT, b"hi")
    assert (
        frame.opcode,
        frame.data,
        frame.fin,
        frame.rsv1,
        frame.rsv2,
        frame.rsv3,
    ) == (
        Opcode.TEXT,
        b"hi",
        True,
        False,
        False,
        False,
    )
    assert Frame(Opcode.BINARY, b"", False, True, False, True) == Frame(
        Opcode.BINARY, b"", fin=False, rsv1=True, rsv3=True
    )
    assert Frame.MAX_LOG_SIZE == 75


FRAME_STR_CASES = [
    (Frame(Opcode.TEXT, b"hello"), "TEXT 'hello' [5 bytes]"),
    (Frame(Opcode.TEXT, b""), "TEXT '' [0 bytes]"),
    (Frame(Opcode.TEXT, b"a"), "TEXT 'a' [1 byte]"),
    (Frame(Opcode.TEXT, b"caf\xc3\xa9"), "TEXT 'café' [5 bytes]"),
    (
        Frame(Opcode.TEXT, b"caf\xc3", fin=False),
        "TEXT 'caf\ufffd' [4 bytes, continued]",
    ),
    (Frame(Opcode.CONT, b"\xa9 au lait"), "CONT '\ufffd au lait' [text, 9 bytes]"),
    (
        Frame(Opcode.CONT, b"\xa9 au lait", fin=False),
        "CONT '\ufffd au lait' [text, 9 bytes, continued]",
    ),
    (Frame(Opcode.CONT, b""), "CONT '' [0 bytes]"),
    (Frame(Opcode.TEXT, b"\xff\xfe"), "TEXT ff fe [binary, 2 bytes]"),
    (Frame(Opcode.TEXT, b"\x00\x01"), "TEXT 00 01 [binary, 2 bytes]"),
    (Frame(Opcode.TEXT, b"line\r\n\ttab"), "TEXT 'line\\r\\n\\ttab' [10 bytes]"),
    (Frame(Opcode.BINARY, b"hello"), "BINARY 'hello' [text, 5 bytes]"),
    (Frame(Opcode.BINARY, b"\x00\x01\x02\x03"), "BINARY 00 01 02 03 [4 bytes]"),
    (Frame(Opcode.BINARY, b""), "BINARY '' [0 bytes]"),
    (
        Frame(Opcode.BINARY, b"\xc3", fin=False),
        "BINARY '\ufffd' [text, 1 byte, continued]",
    ),
    (
        Frame(Opcode.BINARY, bytes(range(25))),
        "BINARY " + " ".join(f"{b:02x}" for b in range(25)) + " [25 bytes]",
    ),
    (Frame(Opcode.CLOSE, b"\x03\xe8bye"), "CLOSE 1000 (OK) bye [5 bytes]"),
    (Frame(Opcode.CLOSE, b"\x03\xe8"), "CLOSE 1000 (OK) [2 bytes]"),
    (Frame(Opcode.CLOSE, b""), "CLOSE '' [0 bytes]"),
    (Frame(Opcode.CLOSE, b"\x03"), "CLOSE 03 [binary, 1 byte]"),
    (Frame(Opcode.CLOSE, b"\x03\xed"), "CLOSE 03 ed [binary, 2 bytes]"),
    (Frame(Opcode.CLOSE, b"\x03\xe8\xff"), "CLOSE 03 e8 ff [binary, 3 bytes]"),
    (Frame(Opcode.PING, b""), "PING '' [0 bytes]"),
    (Frame(Opcode.PING, b"ping"), "PING 'ping' [text, 4 bytes]"),
    (Frame(Opcode.PING, b"\x00\xff"), "PING 00 ff [binary, 2 bytes]"),
    (Frame(Opcode.PONG, b"caf\xc3\xa9"), "PONG 63 61 66 c3 a9 [binary, 5 bytes]"),
    (Frame(Opcode.PONG, b"\x12\x34\x56\x78"), "PONG 12 34 56 78 [binary, 4 bytes]"),
    (Frame(Opcode.TEXT, bytearray(b"hi")), "TEXT 'hi' [2 bytes]"),
    (Frame(Opcode.BINARY, memoryview(b"\x00")), "BINARY 00 [1 byte]"),
]


@pytest.mark.parametrize(("frame", "expected"), FRAME_STR_CASES)
def test_frame_str(frame: Frame, expected: str) -> None:
    assert str(frame) == expected
    assert str(to_websockets(frame)) == expected


def to_websockets(frame: Frame) -> wf.Frame:
    return wf.Frame(
        wf.Opcode(frame.opcode),
        frame.data,
        frame.fin,
        frame.rsv1,
        frame.rsv2,
        frame.rsv3,
    )


def test_frame_str_long_text() -> None:
    frame = Frame(Opcode.TEXT, b"x" * 1000)
    assert str(frame) == "TEXT '" + "x" * 47 + "..." + "x" * 23 + "' [1000 bytes]"
    assert str(frame) == str(to_websockets(frame))


def test_frame_str_medium_text() -> None:
    frame = Frame(Opcode.TEXT, b"0123456789" * 10)
    assert str(frame) == str(to_websockets(frame))
    assert "..." in str(frame)


def test_frame_str_long_binary() -> None:
    frame = Frame(Opcode.BINARY, bytes(range(256)) * 4)
    expected = (
        "BINARY "
        + " ".join(f"{b:02x}" for b in range(16))
        + " ... "
        + " ".join(f"{b:02x}" for b in range(248, 256))
        + " [1024 bytes]"
    )
    assert str(frame) == expected == str(to_websockets(frame))


def test_frame_str_26_bytes() -> None:
    frame = Frame(Opcode.BINARY, bytes(range(26)))
    assert str(frame) == str(to_websockets(frame))


def test_frame_str_long_ping() -> None:
    frame = Frame(Opcode.PING, bytes(125))
    assert str(frame) == str(to_websockets(frame))
    assert str(frame) == ("PING " + "00 " * 16 + "... " + " ".join(["00"] * 8) + " [binary, 125 bytes]")


def test_frame_str_max_log_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Frame, "MAX_LOG_SIZE", 15)
    monkeypatch.setattr(wf.Frame, "MAX_LOG_SIZE", 15)
    frame = Frame(Opcode.TEXT, b"abcdefghijklmnopqrstuvwxyz")
    assert str(frame) == "TEXT 'abcdefg...xyz' [26 bytes]" == str(to_websockets(frame))


@given(
    opcode=st.sampled_from([Opcode.TEXT, Opcode.BINARY, Opcode.CONT]),
    text=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zl", "Zp"]),
        max_size=400,
    ),
    fin=st.booleans(),
)
def test_frame_str_text_like_websockets(opcode: Opcode, text: str, fin: bool) -> None:
    # websockets calls text binary when its repr() contains "\x", meaning a
    # non-printable character; a literal backslash followed by "x" fools that
    # test. We look at the characters themselves (see the next test).
    assume("\\x" not in repr(text))
    frame = Frame(opcode, text.encode(), fin)
    assert str(frame) == str(to_websockets(frame))


def test_frame_str_literal_backslash_x_is_text() -> None:
    assert str(Frame(Opcode.TEXT, b"\\x41", fin=True)) == "TEXT '\\\\x41' [4 bytes]"
    assert str(Frame(Opcode.BINARY, b"\\x41", fin=True)) == "BINARY '\\\\x41' [text, 4 bytes]"


@given(
    opcode=st.sampled_from(list(Opcode)),
    data=st.binary(max_size=400),
    fin=st.booleans(),
)
def test_frame_str_never_fails(opcode: Opcode, data: bytes, fin: bool) -> None:
    text = str(Frame(opcode, data, fin))
    assert text.startswith(opcode.name + " ")
    assert text.endswith("]")


def test_frame_check() -> None:
    Frame(Opcode.TEXT, b"x" * 1000, fin=False).check()
    Frame(Opcode.PING, b"x" * 125).check()
    with pytest.raises(ProtocolError, match="reserved bits must be 0"):
        Frame(Opcode.TEXT, b"", rsv1=True).check()
    with pytest.raises(ProtocolError, match="reserved bits must be 0"):
        Frame(Opcode.TEXT, b"", rsv3=True).check()
    with pytest.raises(ProtocolError, match="control frame too long"):
        Frame(Opcode.PONG, b"x" * 126).check()
    with pytest.raises(ProtocolError, match="fragmented control frame"):
        Frame(Opcode.CLOSE, b"", fin=False).check()


def _parse_frame(data: bytes, *, mask: bool, max_size: int | None = None) -> Frame:
    from ferrows.streams import StreamReader

    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    gen = Frame.parse(reader.read_exact, mask=mask, max_size=max_size)
    with pytest.raises(StopIteration) as raised:
        next(gen)
    frame: Frame = raised.value.value
    return frame


@given(
    st.sampled_from(list(Opcode)),
    st.binary(max_size=70000),
    st.booleans(),
    st.booleans(),
)
def test_frame_parse_serialize_as_websockets(opcode: Opcode, data: bytes, fin: bool, mask: bool) -> None:
    if opcode in CTRL_OPCODES:
        data, fin = data[:125], True
    frame = Frame(opcode, data, fin)
    reference = wf.Frame(wf.Opcode(opcode), data, fin)
    serialized = frame.serialize(mask=mask)
    if not mask:
        assert serialized == reference.serialize(mask=False)
    parsed = _parse_frame(serialized, mask=mask)
    assert parsed == frame
    # websockets parses ferrows' bytes to the same frame.
    from websockets.streams import StreamReader as ReferenceReader

    reader = ReferenceReader()
    reader.feed_data(serialized)
    gen = wf.Frame.parse(reader.read_exact, mask=mask)
    with pytest.raises(StopIteration) as raised:
        next(gen)
    assert raised.value.value == reference


def test_frame_parse_errors() -> None:
    from ferrows.exceptions import PayloadTooBig

    with pytest.raises(ProtocolError, match=r"^invalid opcode$"):
        _parse_frame(b"\x83\x00", mask=False)
    with pytest.raises(ProtocolError, match=r"^incorrect masking$"):
        _parse_frame(b"\x81\x00", mask=True)
    with pytest.raises(ProtocolError, match=r"^reserved bits must be 0$"):
        _parse_frame(b"\xc1\x00", mask=False)
    with pytest.raises(ProtocolError, match=r"^fragmented control frame$"):
        _parse_frame(b"\x09\x00", mask=False)
    with pytest.raises(PayloadTooBig):
        _parse_frame(b"\x82\x7e\x04\x01" + 1025 * b"a", mask=False, max_size=1024)
    with pytest.raises(EOFError):
        _parse_frame(b"\x82\x05abc", mask=False)


def test_frame_serialize_masks_with_a_random_key() -> None:
    first = Frame(Opcode.TEXT, b"Spam").serialize(mask=True)
    assert first[:2] == b"\x81\x84"
    assert len(first) == 10
    assert _parse_frame(first, mask=True) == Frame(Opcode.TEXT, b"Spam")
    keys = {Frame(Opcode.TEXT, b"Spam").serialize(mask=True)[2:6] for _ in range(8)}
    assert len(keys) > 1


@pytest.mark.parametrize("text", ["", "a", "α", "あ", "😀", "aαあ😀"])
def test_is_utf8_fragment(text: str) -> None:
    data = text.encode()
    for start in range(len(data)):
        for end in range(start, len(data) + 1):
            assert frames.is_utf8_fragment(data[start:end]) == wf.is_utf8_fragment(data[start:end])
    for invalid in [b"\xff", b"a\xffa", b"\xc1\x81\x81", b"\x00"]:
        assert not frames.is_utf8_fragment(invalid)
    # A first frame must start on a character boundary, a last frame end on
    # one. (websockets accepts a lone continuation byte as a first frame.)
    data = "αあ".encode()
    assert frames.is_utf8_fragment(data[:-1], must_start_clean=True)
    assert not frames.is_utf8_fragment(data[1:-1], must_start_clean=True)
    assert not frames.is_utf8_fragment(data[1:2], must_start_clean=True)
    assert frames.is_utf8_fragment(data[1:], must_end_clean=True)
    assert not frames.is_utf8_fragment(data[1:-1], must_end_clean=True)

"""Property tests of the Sans-I/O protocol: round trips, chunking, garbage."""

from __future__ import annotations

import itertools
import random
import struct
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from ferrows.frames import Frame, Opcode
from ferrows.protocol import CLIENT, CLOSED, SERVER, Protocol, Side
from frame_utils import CLOSE, frame, parse_frames

sides = st.sampled_from([SERVER, CLIENT])
# Sizes around the length encodings (125/126, 65535/65536) and beyond.
sizes = st.sampled_from([0, 1, 125, 126, 127, 65535, 65536, 70000]) | st.integers(0, 300)


@dataclass
class Message:
    opcode: Opcode  # TEXT, BINARY or PING
    data: bytes
    cuts: list[int]  # fragment boundaries, inside data
    pings: list[int]  # indexes of fragments followed by a ping


@st.composite
def messages(draw: st.DrawFn) -> Message:
    kind = draw(st.sampled_from([Opcode.TEXT, Opcode.BINARY, Opcode.PING]))
    if kind is Opcode.PING:
        return Message(kind, draw(st.binary(max_size=125)), [], [])
    if kind is Opcode.TEXT:
        # Mostly multi-byte text, so that fragments split characters.
        text = draw(st.text(max_size=20)) * draw(st.sampled_from([1, 2, 1000, 5000]))
        data = text.encode()
    else:
        data = random.Random(draw(st.integers(0, 2**32))).randbytes(draw(sizes))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    pings = draw(st.lists(st.integers(0, len(cuts)), max_size=2, unique=True))
    return Message(kind, data, cuts, pings)


def send(proto: Protocol, message: Message) -> list[Frame]:
    """Sends ``message`` with ``proto``; returns the frames the peer must see."""
    if message.opcode is Opcode.PING:
        proto.send_ping(message.data)
        return [Frame(Opcode.PING, message.data)]
    bounds = [0, *message.cuts, len(message.data)]
    parts = [message.data[a:b] for a, b in itertools.pairwise(bounds)]
    expected = []
    for i, part in enumerate(parts):
        fin = i == len(parts) - 1
        if i == 0:
            opcode = message.opcode
            if opcode is Opcode.TEXT:
                proto.send_text(part, fin=fin)
            else:
                proto.send_binary(part, fin=fin)
        else:
            opcode = Opcode.CONT
            proto.send_continuation(part, fin=fin)
        expected.append(Frame(opcode, part, fin))
        if i in message.pings and not fin:
            proto.send_ping(b"%d" % i)
            expected.append(Frame(Opcode.PING, b"%d" % i))
    return expected


def feed(proto: Protocol, data: bytes, cuts: list[int]) -> list[Frame]:
    bounds = [0, *sorted(cuts), len(data)]
    for a, b in itertools.pairwise(bounds):
        proto.receive_data(data[a:b])
    return proto.events_received()  # type: ignore[return-value]


def other(side: Side) -> Side:
    return CLIENT if side is SERVER else SERVER


@settings(max_examples=60, deadline=None)
@given(side=sides, msgs=st.lists(messages(), max_size=6), data=st.data())
def test_any_chunking_gives_the_same_frames(side: Side, msgs: list[Message], data: st.DataObject) -> None:
    sender = Protocol(side)
    expected = []
    for message in msgs:
        expected += send(sender, message)
    wire = b"".join(sender.data_to_send())

    whole = Protocol(other(side))
    whole.receive_data(wire)
    frames = whole.events_received()
    # Round trip: the receiver sees exactly what was sent.
    assert frames == expected
    assert whole.parser_exc is None

    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=30), label="cuts")
    chunked = Protocol(other(side))
    assert feed(chunked, wire, cuts) == frames
    # The same pongs go out, whatever the chunking.
    assert parse_frames(b"".join(chunked.data_to_send())) == parse_frames(b"".join(whole.data_to_send()))


@settings(max_examples=100, deadline=None)
@given(
    side=sides,
    opcode=st.sampled_from([Opcode.TEXT, Opcode.BINARY]),
    size=sizes,
    fin=st.booleans(),
)
def test_frame_round_trip(side: Side, opcode: Opcode, size: int, fin: bool) -> None:
    if opcode is Opcode.TEXT:
        # A fragment may end in the middle of a character; a message may not.
        payload = ("aé€😀" * size).encode()[:size]
        if fin:
            payload = payload.decode(errors="ignore").encode()
    else:
        payload = (bytes(range(256)) * (size // 256 + 1))[:size]
    sender = Protocol(side)
    if opcode is Opcode.TEXT:
        sender.send_text(payload, fin=fin)
    else:
        sender.send_binary(payload, fin=fin)
    (wire,) = sender.data_to_send()
    # The bytes on the wire are a standard frame: parse them independently.
    assert parse_frames(wire) == [(opcode, payload, fin, 0)]
    assert bool(wire[1] & 0x80) == (side is CLIENT)
    # And the peer parses them back.
    receiver = Protocol(other(side))
    receiver.receive_data(wire)
    assert receiver.events_received() == [Frame(opcode, payload, fin)]


@settings(max_examples=100, deadline=None)
@given(
    side=sides,
    payload=st.binary(max_size=300),
    key=st.binary(min_size=4, max_size=4),
    fin=st.booleans(),
)
def test_parse_frames_built_independently(side: Side, payload: bytes, key: bytes, fin: bool) -> None:
    # A frame built by hand, masked with any key, parses to its payload.
    data = frame(0x2, payload, fin=fin, mask=key if side is SERVER else None)
    proto = Protocol(side)
    proto.receive_data(data)
    assert proto.events_received() == [Frame(Opcode.BINARY, payload, fin)]


# ------------------------------------------------------------------ garbage


@st.composite
def garbage_pieces(draw: st.DrawFn, side: Side) -> bytes:
    """Random bytes, or frames with random header fields: mostly plausible
    input, so that each rule of the parser is reached."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=40))
    opcode = draw(st.integers(0, 15))
    payload = draw(st.binary(max_size=20) | st.sampled_from([b"\x03\xe8", b"\x03\xe8ok", b"\xff", b"\xc3", b"\xa9"]))
    length = draw(st.none() | st.sampled_from([1, 126, 200, 2**16, 2**62, 2**63]))
    correct_mask = draw(st.integers(0, 5)) > 0
    masked = (side is SERVER) == correct_mask
    data = frame(
        opcode,
        payload,
        fin=draw(st.integers(0, 3)) > 0,
        rsv=draw(st.sampled_from([0, 0, 0, 1, 2, 4])),
        mask=b"\x01\x02\x03\x04" if masked else None,
        length=length,
    )
    # Truncating the payload of a frame that announces more is fine too.
    return data if length is None else data[: len(data) - len(payload) + min(len(payload), length)]


@st.composite
def garbage(draw: st.DrawFn) -> tuple[Side, bytes, list[int]]:
    side = draw(sides)
    data = b"".join(draw(st.lists(garbage_pieces(side), max_size=8)))
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=5))
    return side, data, cuts


@settings(max_examples=300, deadline=None)
@given(garbage())
def test_garbage_never_raises(case: tuple[Side, bytes, list[int]]) -> None:
    side, data, cuts = case
    proto = Protocol(side, max_size=1000)
    for frame_ in feed(proto, data, cuts):
        assert isinstance(frame_, Frame)
    out = b"".join(proto.data_to_send())
    if proto.parser_exc is None:
        assert proto.close_sent is None or proto.close_rcvd is not None
    else:
        # A failure: the close frame carries one of the documented codes.
        closes = [f for f in parse_frames(out) if f[0] == CLOSE]
        if proto.close_rcvd is None:
            (close,) = closes[-1:]
            (code,) = struct.unpack("!H", close[1][:2])
            assert code in {1002, 1007, 1009}
            assert proto.close_sent is not None and proto.close_sent.code == code
    proto.receive_eof()
    assert proto.state is CLOSED
    assert proto.close_exc is not None

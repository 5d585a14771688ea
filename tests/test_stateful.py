"""A hypothesis state machine driving a ServerProtocol and a ClientProtocol
wired back to back: either side sends messages, fragments, pings, pongs and
close frames in any order, the bytes travel in random chunks, and either
side's TCP connection may end abruptly.

Invariants, checked after every step: everything received is exactly what
was sent, once and in order; states only move forward; close codes match
what the peer sent; ``receive_data`` never raises before EOF (and raises
EOFError after it); well-behaved peers never fail each other.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ferrows.client import ClientProtocol
from ferrows.frames import Frame, Opcode
from ferrows.protocol import CLOSED, CLOSING, OPEN
from ferrows.server import ServerProtocol

SIDES = st.sampled_from(["server", "client"])
PAYLOADS = st.binary(max_size=300)
CONTROL_PAYLOADS = st.binary(max_size=125)
CLOSE_CODES = st.sampled_from([None, 1000, 1001, 1003, 1011, 3000, 4999])
ORDER = {OPEN: 1, CLOSING: 2, CLOSED: 3}


class Endpoint:
    """One side: its protocol, what it sent and what it received."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        # Whole messages sent, as (is_text, bytes), and the one in progress.
        self.sent: list[tuple[bool, bytes]] = []
        self.sending: tuple[bool, list[bytes]] | None = None
        self.pings_sent: list[bytes] = []
        self.pongs_sent: list[bytes] = []
        # What arrived: whole messages, the one being reassembled, controls.
        self.received: list[tuple[bool, bytes]] = []
        self.receiving: tuple[bool, list[bytes]] | None = None
        self.pings_received: list[bytes] = []
        self.pongs_received: list[bytes] = []
        # Bytes written but not yet delivered to the peer; None marks EOF.
        self.wire: list[bytes | None] = []
        self.eof_delivered = False
        self.abrupt_eof = False
        self.highest_state = 1

    def collect_output(self) -> None:
        for data in self.protocol.data_to_send():
            self.wire.append(data if data else None)

    def absorb(self, events: list[Any]) -> None:
        for event in events:
            assert isinstance(event, Frame)
            if event.opcode in (Opcode.TEXT, Opcode.BINARY):
                assert self.receiving is None, "new message inside a fragmented one"
                self.receiving = (event.opcode is Opcode.TEXT, [])
            if event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                assert self.receiving is not None, "continuation without a message"
                self.receiving[1].append(bytes(event.data))
                if event.fin:
                    self.received.append((self.receiving[0], b"".join(self.receiving[1])))
                    self.receiving = None
            elif event.opcode is Opcode.PING:
                self.pings_received.append(bytes(event.data))
            elif event.opcode is Opcode.PONG:
                self.pongs_received.append(bytes(event.data))


class Connection(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ends = {
            "server": Endpoint(ServerProtocol(state=OPEN)),
            "client": Endpoint(ClientProtocol("ws://localhost/", state=OPEN)),
        }
        self.eof_errors = 0

    def peer(self, side: str) -> Endpoint:
        return self.ends["client" if side == "server" else "server"]

    def can_send(self, side: str) -> bool:
        return self.ends[side].protocol.state is OPEN

    # ------------------------------------------------------------- sending

    @rule(side=SIDES, text=st.booleans(), data=PAYLOADS)
    def send_message(self, side: str, text: bool, data: bytes) -> None:
        end = self.ends[side]
        if not self.can_send(side) or end.sending is not None:
            return
        if text:
            data = data.decode("latin-1").encode()  # valid UTF-8
            end.protocol.send_text(data)
        else:
            end.protocol.send_binary(data)
        end.sent.append((text, data))
        end.collect_output()

    @rule(side=SIDES, text=st.booleans(), data=PAYLOADS, fin=st.booleans())
    def send_fragment(self, side: str, text: bool, data: bytes, fin: bool) -> None:
        end = self.ends[side]
        if not self.can_send(side):
            return
        if end.sending is None:
            if text:
                data = data.decode("latin-1").encode()
                end.protocol.send_text(data, fin=fin)
            else:
                end.protocol.send_binary(data, fin=fin)
            end.sending = (text, [data])
        else:
            if end.sending[0]:
                data = data.decode("latin-1").encode()
            end.protocol.send_continuation(data, fin=fin)
            end.sending[1].append(data)
        if fin:
            end.sent.append((end.sending[0], b"".join(end.sending[1])))
            end.sending = None
        end.collect_output()

    @rule(side=SIDES, data=CONTROL_PAYLOADS)
    def send_ping(self, side: str, data: bytes) -> None:
        end = self.ends[side]
        if end.protocol.state not in (OPEN, CLOSING) or end.protocol.eof_sent:
            return
        end.protocol.send_ping(data)
        end.pings_sent.append(data)
        end.collect_output()

    @rule(side=SIDES, data=CONTROL_PAYLOADS)
    def send_pong(self, side: str, data: bytes) -> None:
        end = self.ends[side]
        if end.protocol.state not in (OPEN, CLOSING) or end.protocol.eof_sent:
            return
        end.protocol.send_pong(data)
        end.pongs_sent.append(data)
        end.collect_output()

    @rule(side=SIDES, code=CLOSE_CODES, reason=st.text(max_size=20))
    def send_close(self, side: str, code: int | None, reason: str) -> None:
        end = self.ends[side]
        # Closing in the middle of a fragmented message would be our bug.
        if not self.can_send(side) or end.sending is not None:
            return
        end.protocol.send_close(code, reason if code is not None else "")
        end.collect_output()

    # ------------------------------------------------------------ delivery

    @rule(side=SIDES, size=st.integers(1, 400))
    def deliver(self, side: str, size: int) -> None:
        """Moves up to ``size`` bytes written by ``side`` to its peer."""
        end, peer = self.ends[side], self.peer(side)
        if not end.wire or peer.eof_delivered:
            return
        head = end.wire[0]
        if head is None:
            end.wire.pop(0)
            self.deliver_eof(peer)
            return
        chunk, rest = head[:size], head[size:]
        if rest:
            end.wire[0] = rest
        else:
            end.wire.pop(0)
        peer.protocol.receive_data(chunk)  # never raises before EOF
        peer.absorb(peer.protocol.events_received())
        peer.collect_output()

    def deliver_eof(self, end: Endpoint) -> None:
        # EOF before the peer's close frame: no closing handshake (1006).
        end.abrupt_eof = end.protocol.close_rcvd is None
        end.eof_delivered = True
        end.protocol.receive_eof()
        end.absorb(end.protocol.events_received())
        end.collect_output()
        assert end.protocol.state is CLOSED
        with pytest.raises(EOFError):
            end.protocol.receive_data(b"x")

    @rule(side=SIDES)
    def connection_lost(self, side: str) -> None:
        """The network dies under ``side``: it sees EOF now."""
        end = self.ends[side]
        if end.eof_delivered:
            return
        self.deliver_eof(end)
        if end.abrupt_eof:
            assert end.protocol.close_code == 1006

    # ---------------------------------------------------------- invariants

    @invariant()
    def messages_arrive_once_and_in_order(self) -> None:
        for side, end in self.ends.items():
            sent = self.peer(side).sent
            assert end.received == sent[: len(end.received)]
            # Once the peer's close frame arrived, every message it sent
            # before closing arrived too.
            if end.protocol.close_rcvd is not None:
                assert end.received == sent
            assert end.pings_received == self.peer(side).pings_sent[: len(end.pings_received)]

    @invariant()
    def states_move_forward(self) -> None:
        for end in self.ends.values():
            level = ORDER[end.protocol.state]
            assert level >= end.highest_state
            end.highest_state = level

    @invariant()
    def close_codes_match(self) -> None:
        for side, end in self.ends.items():
            rcvd, sent_by_peer = end.protocol.close_rcvd, self.peer(side).protocol.close_sent
            if rcvd is not None:
                assert sent_by_peer is not None
                assert (rcvd.code, rcvd.reason) == (sent_by_peer.code, sent_by_peer.reason)
            if end.protocol.state is CLOSED:
                expected = 1006 if rcvd is None else rcvd.code
                assert end.protocol.close_code == expected

    @invariant()
    def nobody_fails(self) -> None:
        """Well-behaved peers never fail each other; only an EOF without a
        closing handshake is recorded, as EOFError (websockets does too).

        That includes a peer that answers a close frame in the middle of
        sending a fragmented message: a close frame may come between
        fragments (RFC 6455 sections 5.4 and 5.5), and ends the connection
        normally, the incomplete message dropped. (websockets fails that
        connection with 1002, "incomplete fragmented message".)
        """
        for end in self.ends.values():
            exc = end.protocol.parser_exc
            if end.abrupt_eof:
                assert isinstance(exc, EOFError)
            else:
                assert exc is None, exc


Connection.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_connection = Connection.TestCase

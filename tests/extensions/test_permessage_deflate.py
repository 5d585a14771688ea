"""Tests for ferrows.extensions.permessage_deflate: negotiation by both
factories (RFC 7692 section 7.1), then compression through a client and a
server protocol talking in memory, checked against Python's zlib."""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import pytest

from ferrows import _core
from ferrows.client import ClientProtocol
from ferrows.exceptions import (
    DuplicateParameter,
    InvalidParameterName,
    InvalidParameterValue,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
)
from ferrows.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ServerExtensionFactory,
)
from ferrows.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
    enable_client_permessage_deflate,
    enable_server_permessage_deflate,
)
from ferrows.frames import Frame, Opcode
from ferrows.headers import parse_extension
from ferrows.http11 import Request, Response
from ferrows.protocol import OPEN, Protocol, Side
from ferrows.server import ServerProtocol
from ferrows.typing import ExtensionName, ExtensionParameter
from frame_utils import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    client_frame,
    frame,
    parse_frames,
)

PMD = "permessage-deflate"
TAIL = b"\x00\x00\xff\xff"

SNCT: ExtensionParameter = ("server_no_context_takeover", None)
CNCT: ExtensionParameter = ("client_no_context_takeover", None)
CMWB: ExtensionParameter = ("client_max_window_bits", None)


def smwb(bits: int | str) -> ExtensionParameter:
    return ("server_max_window_bits", str(bits))


def cmwb(bits: int | str) -> ExtensionParameter:
    return ("client_max_window_bits", str(bits))


def settings(ext: PerMessageDeflate) -> tuple[bool, bool, int, int]:
    """Negotiated parameters, as seen from one side."""
    return (
        ext.remote_no_context_takeover,
        ext.local_no_context_takeover,
        ext.remote_max_window_bits,
        ext.local_max_window_bits,
    )


# ------------------------------------------------------- client factory


def test_client_factory_defaults() -> None:
    factory = ClientPerMessageDeflateFactory()
    assert factory.name == PMD
    assert factory.server_no_context_takeover is False
    assert factory.client_no_context_takeover is False
    assert factory.server_max_window_bits is None
    assert factory.client_max_window_bits is True
    assert factory.get_request_params() == [CMWB]


@pytest.mark.parametrize(
    ("kwargs", "params"),
    [
        ({"client_max_window_bits": None}, []),
        ({"server_no_context_takeover": True}, [SNCT, CMWB]),
        ({"client_no_context_takeover": True}, [CNCT, CMWB]),
        ({"server_max_window_bits": 8}, [smwb(8), CMWB]),
        ({"server_max_window_bits": 15}, [smwb(15), CMWB]),
        ({"client_max_window_bits": 9}, [cmwb(9)]),
        ({"client_max_window_bits": 15}, [cmwb(15)]),
        (
            {
                "server_no_context_takeover": True,
                "client_no_context_takeover": True,
                "server_max_window_bits": 10,
                "client_max_window_bits": 11,
            },
            [SNCT, CNCT, smwb(10), cmwb(11)],
        ),
    ],
)
def test_client_offer(kwargs: dict[str, Any], params: list[ExtensionParameter]) -> None:
    assert list(ClientPerMessageDeflateFactory(**kwargs).get_request_params()) == params


@pytest.mark.parametrize(
    "kwargs",
    [
        {"server_max_window_bits": 7},
        {"server_max_window_bits": 16},
        {"client_max_window_bits": 7},
        {"client_max_window_bits": 16},
        {"client_max_window_bits": 0},
        {"client_max_window_bits": False},
        {"compress_settings": {"wbits": 15}},
        {"compress_settings": {"wbits": -15}},
    ],
)
def test_client_factory_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ClientPerMessageDeflateFactory(**kwargs)


@pytest.mark.parametrize(
    ("offer", "response", "expected"),
    [
        # (remote = server, local = client) no context takeover, windows.
        ({}, [], (False, False, 15, 15)),
        ({}, [SNCT], (True, False, 15, 15)),
        # The server may require client_no_context_takeover unasked.
        ({}, [CNCT], (False, True, 15, 15)),
        ({}, [SNCT, CNCT], (True, True, 15, 15)),
        # The server may limit its own window unasked.
        ({}, [smwb(9)], (False, False, 9, 15)),
        ({}, [smwb(12)], (False, False, 12, 15)),
        # The client offered a bare client_max_window_bits: any limit goes.
        ({}, [cmwb(9)], (False, False, 15, 9)),
        ({}, [cmwb(15)], (False, False, 15, 15)),
        # Section 7.1.2.2 allows 8: the client then sends uncompressed.
        ({}, [cmwb(8)], (False, False, 15, 8)),
        ({"client_max_window_bits": 8}, [], (False, False, 15, 8)),
        ({}, [smwb(10), cmwb(11)], (False, False, 10, 11)),
        ({"server_no_context_takeover": True}, [SNCT], (True, False, 15, 15)),
        # client_no_context_takeover is a promise: no echo needed.
        ({"client_no_context_takeover": True}, [], (False, True, 15, 15)),
        ({"client_no_context_takeover": True}, [CNCT], (False, True, 15, 15)),
        ({"server_max_window_bits": 12}, [smwb(12)], (False, False, 12, 15)),
        ({"server_max_window_bits": 12}, [smwb(9)], (False, False, 9, 15)),
        # A limit the client set on itself holds without an echo.
        ({"client_max_window_bits": 11}, [], (False, False, 15, 11)),
        ({"client_max_window_bits": 11}, [cmwb(11)], (False, False, 15, 11)),
        ({"client_max_window_bits": 11}, [cmwb(9)], (False, False, 15, 9)),
        ({"client_max_window_bits": None}, [], (False, False, 15, 15)),
    ],
)
def test_client_accepts_response(
    offer: dict[str, Any], response: list[ExtensionParameter], expected: tuple[bool, bool, int, int]
) -> None:
    ext = ClientPerMessageDeflateFactory(**offer).process_response_params(response, [])
    assert isinstance(ext, PerMessageDeflate)
    assert settings(ext) == expected


@pytest.mark.parametrize(
    ("offer", "response"),
    [
        # Section 7.1.1.1: the server must echo server_no_context_takeover.
        ({"server_no_context_takeover": True}, []),
        ({"server_no_context_takeover": True}, [CNCT]),
        # Section 7.1.2.1: the server must answer with at most the limit.
        ({"server_max_window_bits": 10}, []),
        ({"server_max_window_bits": 10}, [smwb(11)]),
        ({"server_max_window_bits": 10}, [smwb(15)]),
        # Section 7.1.2.2: no limit unless the client offered the parameter.
        ({"client_max_window_bits": None}, [cmwb(10)]),
        ({"client_max_window_bits": None}, [cmwb(15)]),
        ({"client_max_window_bits": 11}, [cmwb(12)]),
    ],
)
def test_client_rejects_response(offer: dict[str, Any], response: list[ExtensionParameter]) -> None:
    with pytest.raises(NegotiationError):
        ClientPerMessageDeflateFactory(**offer).process_response_params(response, [])


@pytest.mark.parametrize("offer", [{}, {"server_max_window_bits": 8}])
def test_client_accepts_server_window_8(offer: dict[str, Any]) -> None:
    # An 8-bit window is valid for the server's compressor; inflating its
    # output with a 9-bit window works, since a larger window is harmless.
    ext = ClientPerMessageDeflateFactory(**offer).process_response_params([smwb(8)], [])
    assert settings(ext) == (False, False, 8, 15)
    assert ext.core_settings()[2] == 9


@pytest.mark.parametrize(
    ("response", "exc_type"),
    [
        ([SNCT, SNCT], DuplicateParameter),
        ([CNCT, CNCT], DuplicateParameter),
        ([smwb(10), smwb(10)], DuplicateParameter),
        ([smwb(10), smwb(11)], DuplicateParameter),
        ([cmwb(10), cmwb(10)], DuplicateParameter),
        ([("x_unknown", None)], InvalidParameterName),
        ([("Server_No_Context_Takeover", None)], InvalidParameterName),
        ([("server_no_context_takeover", "1")], InvalidParameterValue),
        ([("client_no_context_takeover", "")], InvalidParameterValue),
        ([("server_max_window_bits", None)], InvalidParameterValue),
        # In a response, client_max_window_bits needs a value.
        ([CMWB], InvalidParameterValue),
        ([smwb(7)], InvalidParameterValue),
        ([smwb(16)], InvalidParameterValue),
        ([smwb("010")], InvalidParameterValue),
        ([smwb("09")], InvalidParameterValue),
        ([smwb("+9")], InvalidParameterValue),
        ([smwb("0xa")], InvalidParameterValue),
        ([smwb("10.0")], InvalidParameterValue),
        ([smwb(" 10")], InvalidParameterValue),
        ([smwb("")], InvalidParameterValue),
        ([smwb("١٠")], InvalidParameterValue),
        ([cmwb(7)], InvalidParameterValue),
        ([cmwb("012")], InvalidParameterValue),
    ],
)
def test_client_rejects_bad_parameters(response: list[ExtensionParameter], exc_type: type[Exception]) -> None:
    factory = ClientPerMessageDeflateFactory(client_max_window_bits=True)
    with pytest.raises(exc_type):
        factory.process_response_params(response, [])
    assert issubclass(exc_type, NegotiationError)


def test_client_rejects_duplicate_extension() -> None:
    factory = ClientPerMessageDeflateFactory()
    accepted = [factory.process_response_params([], [])]
    with pytest.raises(NegotiationError):
        factory.process_response_params([], accepted)


# ------------------------------------------------------- server factory


@pytest.mark.parametrize(
    "kwargs",
    [
        {"server_max_window_bits": 7},
        {"server_max_window_bits": 16},
        {"client_max_window_bits": 7},
        {"client_max_window_bits": 16},
        {"require_client_max_window_bits": True},
        {"compress_settings": {"wbits": 15}},
    ],
)
def test_server_factory_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ServerPerMessageDeflateFactory(**kwargs)


@pytest.mark.parametrize(
    ("config", "offer", "response", "expected"),
    [
        # expected: (remote = client, local = server) takeover, windows.
        ({}, [], [], (False, False, 15, 15)),
        ({}, [SNCT], [SNCT], (False, True, 15, 15)),
        ({}, [CNCT], [CNCT], (True, False, 15, 15)),
        ({}, [SNCT, CNCT], [SNCT, CNCT], (True, True, 15, 15)),
        ({}, [smwb(9)], [smwb(9)], (False, False, 15, 9)),
        ({}, [smwb(15)], [smwb(15)], (False, False, 15, 15)),
        # A client may ask for 8 bits: the server then sends uncompressed.
        ({}, [smwb(8)], [smwb(8)], (False, False, 15, 8)),
        ({"server_max_window_bits": 12}, [smwb(8)], [smwb(8)], (False, False, 15, 8)),
        ({}, [CMWB], [], (False, False, 15, 15)),
        # The client limits its own window; the server inflates with it and
        # echoes the limit, as websockets does.
        ({}, [cmwb(10)], [cmwb(10)], (False, False, 10, 15)),
        # An 8-bit window from the client inflates with 9 bits.
        ({}, [cmwb(8)], [cmwb(8)], (False, False, 8, 15)),
        ({"server_no_context_takeover": True}, [], [SNCT], (False, True, 15, 15)),
        ({"server_no_context_takeover": True}, [SNCT], [SNCT], (False, True, 15, 15)),
        ({"client_no_context_takeover": True}, [], [CNCT], (True, False, 15, 15)),
        ({"client_no_context_takeover": True}, [CNCT], [CNCT], (True, False, 15, 15)),
        # The server lowers its window to its limit, or to the client's.
        ({"server_max_window_bits": 12}, [], [smwb(12)], (False, False, 15, 12)),
        ({"server_max_window_bits": 12}, [smwb(10)], [smwb(10)], (False, False, 15, 10)),
        ({"server_max_window_bits": 12}, [smwb(12)], [smwb(12)], (False, False, 15, 12)),
        ({"server_max_window_bits": 12}, [smwb(14)], [smwb(12)], (False, False, 15, 12)),
        # The server limits the client's window only if it supports that.
        ({"client_max_window_bits": 12}, [], [], (False, False, 15, 15)),
        ({"client_max_window_bits": 12}, [CMWB], [cmwb(12)], (False, False, 12, 15)),
        ({"client_max_window_bits": 12}, [cmwb(10)], [cmwb(10)], (False, False, 10, 15)),
        ({"client_max_window_bits": 12}, [cmwb(14)], [cmwb(12)], (False, False, 12, 15)),
        ({"client_max_window_bits": 8}, [CMWB], [cmwb(8)], (False, False, 8, 15)),
        (
            {"client_max_window_bits": 12, "require_client_max_window_bits": True},
            [CMWB],
            [cmwb(12)],
            (False, False, 12, 15),
        ),
        (
            {
                "server_no_context_takeover": True,
                "client_no_context_takeover": True,
                "server_max_window_bits": 12,
                "client_max_window_bits": 12,
            },
            [smwb(10), CMWB],
            [SNCT, CNCT, smwb(10), cmwb(12)],
            (True, True, 12, 10),
        ),
    ],
)
def test_server_accepts_offer(
    config: dict[str, Any],
    offer: list[ExtensionParameter],
    response: list[ExtensionParameter],
    expected: tuple[bool, bool, int, int],
) -> None:
    params, ext = ServerPerMessageDeflateFactory(**config).process_request_params(offer, [])
    assert list(params) == response
    assert isinstance(ext, PerMessageDeflate)
    assert settings(ext) == expected
    # The core never gets a window it cannot use.
    assert ext.core_settings()[2] == max(expected[2], 9)


@pytest.mark.parametrize(
    ("config", "offer", "exc_type"),
    [
        ({"client_max_window_bits": 12, "require_client_max_window_bits": True}, [], NegotiationError),
        ({"client_max_window_bits": 12, "require_client_max_window_bits": True}, [SNCT], NegotiationError),
        ({}, [SNCT, SNCT], DuplicateParameter),
        ({}, [CNCT, CNCT], DuplicateParameter),
        ({}, [smwb(10), smwb(12)], DuplicateParameter),
        ({}, [CMWB, CMWB], DuplicateParameter),
        ({}, [CMWB, cmwb(10)], DuplicateParameter),
        ({}, [("x_unknown", "1")], InvalidParameterName),
        ({}, [SNCT, ("mux", None)], InvalidParameterName),
        ({}, [("server_no_context_takeover", "true")], InvalidParameterValue),
        ({}, [("client_no_context_takeover", "0")], InvalidParameterValue),
        ({}, [("server_max_window_bits", None)], InvalidParameterValue),
        ({}, [smwb(7)], InvalidParameterValue),
        ({}, [smwb(16)], InvalidParameterValue),
        ({}, [smwb("010")], InvalidParameterValue),
        ({}, [smwb("1e1")], InvalidParameterValue),
        ({}, [cmwb(0)], InvalidParameterValue),
        ({}, [cmwb("09")], InvalidParameterValue),
        ({}, [cmwb("-9")], InvalidParameterValue),
        ({}, [cmwb("")], InvalidParameterValue),
    ],
)
def test_server_declines_offer(
    config: dict[str, Any], offer: list[ExtensionParameter], exc_type: type[Exception]
) -> None:
    with pytest.raises(exc_type):
        ServerPerMessageDeflateFactory(**config).process_request_params(offer, [])
    assert issubclass(exc_type, NegotiationError)


def test_server_declines_duplicate_extension() -> None:
    factory = ServerPerMessageDeflateFactory()
    _, ext = factory.process_request_params([], [])
    with pytest.raises(NegotiationError):
        factory.process_request_params([], [ext])


# ---------------------------------------------- PerMessageDeflate, settings


def test_per_message_deflate_attributes() -> None:
    ext = PerMessageDeflate(True, False, 10, 12, {"level": 3, "memLevel": 4})
    assert ext.name == PMD
    assert settings(ext) == (True, False, 10, 12)
    assert ext.core_settings() == (True, False, 10, 12, 3, 4)
    assert "remote_max_window_bits=10" in repr(ext)


@pytest.mark.parametrize(("remote", "local"), [(7, 15), (16, 15), (15, 7), (15, 16)])
def test_per_message_deflate_rejects_windows(remote: int, local: int) -> None:
    with pytest.raises(ValueError):
        PerMessageDeflate(False, False, remote, local)


@pytest.mark.parametrize(
    ("compress_settings", "level", "mem_level"),
    [
        (None, 6, 8),
        ({}, 6, 8),
        ({"level": 0}, 0, 8),
        ({"level": 9}, 9, 8),
        ({"level": -1}, 6, 8),
        ({"memLevel": 1}, 6, 1),
        ({"memLevel": 9, "level": 1}, 1, 9),
    ],
)
def test_compress_settings(compress_settings: dict[str, Any] | None, level: int, mem_level: int) -> None:
    client = ClientPerMessageDeflateFactory(compress_settings=compress_settings)
    server = ServerPerMessageDeflateFactory(compress_settings=compress_settings)
    assert client.process_response_params([], []).core_settings()[4:] == (level, mem_level)
    assert server.process_request_params([], [])[1].core_settings()[4:] == (level, mem_level)
    # The settings read back are the ones given: defaults are not added.
    assert client.compress_settings == server.compress_settings == (compress_settings or {})


@pytest.mark.parametrize(
    ("enable", "factory"),
    [
        (enable_client_permessage_deflate, ClientPerMessageDeflateFactory),
        (enable_server_permessage_deflate, ServerPerMessageDeflateFactory),
    ],
)
def test_enable_permessage_deflate_settings_as_given(enable: Any, factory: Any) -> None:
    (added,) = enable(None)
    assert isinstance(added, factory)
    assert added.compress_settings == {"memLevel": 5}


@pytest.mark.parametrize(
    "compress_settings",
    [
        {"wbits": 12},
        {"level": 10},
        {"level": -2},
        {"level": "6"},
        {"level": 6.0},
        {"memLevel": 0},
        {"memLevel": 10},
        # The core compresses with zlib-rs: unsupported options must not be
        # silently ignored.
        {"strategy": zlib.Z_FILTERED},
        {"zdict": b"hello"},
    ],
)
def test_compress_settings_validation(compress_settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ClientPerMessageDeflateFactory(compress_settings=compress_settings)
    with pytest.raises(ValueError):
        ServerPerMessageDeflateFactory(compress_settings=compress_settings)
    with pytest.raises(ValueError):
        PerMessageDeflate(False, False, 15, 15, compress_settings)


def test_compress_settings_are_not_mutated() -> None:
    compress_settings = {"level": -1}
    ClientPerMessageDeflateFactory(compress_settings=compress_settings)
    assert compress_settings == {"level": -1}


# ------------------------------------------------------------ enable_*


class OtherClientFactory(ClientExtensionFactory):
    name = ExtensionName("x-other")


class OtherServerFactory(ServerExtensionFactory):
    name = ExtensionName("x-other")


def test_enable_client_permessage_deflate() -> None:
    empty: list[Sequence[ClientExtensionFactory] | None] = [None, [], ()]
    for extensions in empty:
        [factory] = enable_client_permessage_deflate(extensions)
        assert isinstance(factory, ClientPerMessageDeflateFactory)
        assert factory.client_max_window_bits is True
        assert factory.server_max_window_bits is None
        assert factory.compress_settings["memLevel"] == 5
    other = OtherClientFactory()
    existing = [other]
    result = enable_client_permessage_deflate(existing)
    assert result[0] is other and isinstance(result[1], ClientPerMessageDeflateFactory)
    assert existing == [other], "the argument is not mutated"


def test_enable_client_permessage_deflate_keeps_existing_factory() -> None:
    custom = ClientPerMessageDeflateFactory(server_max_window_bits=10)
    other = OtherClientFactory()
    assert enable_client_permessage_deflate([custom]) == [custom]
    assert enable_client_permessage_deflate([other, custom]) == [other, custom]


def test_enable_server_permessage_deflate() -> None:
    empty: list[Sequence[ServerExtensionFactory] | None] = [None, [], ()]
    for extensions in empty:
        [factory] = enable_server_permessage_deflate(extensions)
        assert isinstance(factory, ServerPerMessageDeflateFactory)
        assert factory.server_max_window_bits == 12
        assert factory.client_max_window_bits == 12
        assert factory.compress_settings["memLevel"] == 5
    other = OtherServerFactory()
    result = enable_server_permessage_deflate([other])
    assert result[0] is other and isinstance(result[1], ServerPerMessageDeflateFactory)


def test_enable_server_permessage_deflate_keeps_existing_factory() -> None:
    custom = ServerPerMessageDeflateFactory(server_no_context_takeover=True)
    other = OtherServerFactory()
    assert enable_server_permessage_deflate([custom]) == [custom]
    assert enable_server_permessage_deflate([custom, other]) == [custom, other]


# ------------------------------------------ protocols talking in memory


def open_pair(
    client_extensions: Sequence[ClientExtensionFactory] | None,
    server_extensions: Sequence[ServerExtensionFactory] | None,
    *,
    offer: str | None = None,
    max_size: int | None = 2**20,
) -> tuple[ClientProtocol, ServerProtocol, str | None]:
    """Runs the opening handshake between a client and a server protocol.

    Args:
        offer: ``Sec-WebSocket-Extensions`` to send instead of the client's.

    Returns:
        Both protocols, open, and the server's ``Sec-WebSocket-Extensions``.
    """
    client = ClientProtocol("ws://localhost/", extensions=client_extensions, max_size=max_size)
    server = ServerProtocol(extensions=server_extensions, max_size=max_size)
    request = client.connect()
    if offer is not None:
        del request.headers["Sec-WebSocket-Extensions"]
        request.headers["Sec-WebSocket-Extensions"] = offer
    client.send_request(request)
    for data in client.data_to_send():
        server.receive_data(data)
    [received_request] = server.events_received()
    assert isinstance(received_request, Request)
    response = server.accept(received_request)
    assert response.status_code == 101
    server.send_response(response)
    for data in server.data_to_send():
        client.receive_data(data)
    [received] = client.events_received()
    assert isinstance(received, Response) and received.status_code == 101
    assert client.handshake_exc is None
    assert client.state is OPEN and server.state is OPEN
    return client, server, response.headers.get("Sec-WebSocket-Extensions")


def frames_received(proto: Protocol) -> list[Frame]:
    """Events received, all frames once the handshake is done."""
    events = proto.events_received()
    assert all(isinstance(event, Frame) for event in events)
    return events  # type: ignore[return-value]


def transfer(sender: Protocol, receiver: Protocol) -> bytes:
    """Moves what ``sender`` wrote to ``receiver``; returns the bytes."""
    wire = b"".join(sender.data_to_send())
    receiver.receive_data(wire)
    return wire


def messages_of(events: Sequence[Any]) -> list[tuple[Opcode, bytes]]:
    """Reassembles data frames into ``(opcode, payload)`` messages."""
    messages: list[tuple[Opcode, bytes]] = []
    fragments: list[bytes] = []
    opcode = None
    for event in events:
        assert isinstance(event, Frame)
        if event.opcode in (Opcode.PING, Opcode.PONG, Opcode.CLOSE):
            continue
        assert not (event.rsv1 or event.rsv2 or event.rsv3)
        if event.opcode is not Opcode.CONT:
            assert opcode is None
            opcode = event.opcode
        fragments.append(bytes(event.data))
        if event.fin:
            assert opcode is not None
            messages.append((opcode, b"".join(fragments)))
            fragments, opcode = [], None
    assert opcode is None, "unfinished message"
    return messages


class ReferenceInflater:
    """Decodes one direction of the wire with Python's zlib, as RFC 7692
    section 7.2.2 describes, using exactly the negotiated window and
    resetting between messages when the sender promised no context
    takeover: a sender that breaks its promises makes this fail."""

    def __init__(self, window_bits: int, no_context_takeover: bool) -> None:
        self.window_bits = window_bits
        self.no_context_takeover = no_context_takeover
        self.inflater = zlib.decompressobj(wbits=-window_bits)
        self.compressed = False
        self.payloads: list[bytes] = []

    def feed(self, wire: bytes) -> list[tuple[int, bytes, bool]]:
        """Returns ``(opcode, payload, compressed)`` for each message."""
        messages = []
        for opcode, payload, fin, rsv in parse_frames(wire):
            if opcode >= 8:
                assert rsv == 0, "control frames are never compressed"
                continue
            if opcode != CONT:
                self.opcode, self.compressed = opcode, bool(rsv & 4)
                assert rsv & 3 == 0
            else:
                assert rsv == 0, "RSV1 is only set on the first frame"
            self.payloads.append(payload)
            if not fin:
                continue
            data = b"".join(self.payloads)
            self.payloads = []
            if self.compressed:
                if self.no_context_takeover:
                    self.inflater = zlib.decompressobj(wbits=-self.window_bits)
                data = self.inflater.decompress(data + TAIL)
                assert not self.inflater.unused_data
            messages.append((self.opcode, data, self.compressed))
        return messages


class Config(NamedTuple):
    """The four parameters, as a factory is configured."""

    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_max_window_bits: int | None
    client_max_window_bits: int | bool | None

    def client_factory(self) -> ClientPerMessageDeflateFactory:
        return ClientPerMessageDeflateFactory(*self)

    def server_factory(self) -> ServerPerMessageDeflateFactory:
        assert self.client_max_window_bits is not True
        return ServerPerMessageDeflateFactory(*self)  # type: ignore[arg-type]


DEFAULT_CLIENT = Config(False, False, None, True)
DEFAULT_SERVER = Config(False, False, None, None)
FLAGS = [(False, False), (True, False), (False, True), (True, True)]
SERVER_WINDOWS = [None, 9, 10, 11, 12, 13, 14, 15]
CLIENT_OFFERS = [None, True, 9, 10, 11, 12, 13, 14, 15]
CLIENT_LIMITS = [None, 9, 10, 11, 12, 13, 14, 15]

# Every value of each parameter appears with every pair of flags; the
# window values rotate so that each offer meets several server windows.
OFFERS = [
    Config(snct, cnct, SERVER_WINDOWS[(i + 3 * j) % 8], bits)
    for i, bits in enumerate(CLIENT_OFFERS)
    for j, (snct, cnct) in enumerate(FLAGS)
]
SERVER_CONFIGS = [
    Config(snct, cnct, bits, CLIENT_LIMITS[(i + 5 * j + 1) % 8])
    for i, bits in enumerate(SERVER_WINDOWS)
    for j, (snct, cnct) in enumerate(FLAGS)
]
COMBINATIONS = (
    [(offer, DEFAULT_SERVER) for offer in OFFERS]
    + [(DEFAULT_CLIENT, config) for config in SERVER_CONFIGS]
    # Both sides configured: a sample, enough to mix limits from both.
    + [(OFFERS[k], SERVER_CONFIGS[(7 * k + 3) % len(SERVER_CONFIGS)]) for k in range(1, len(OFFERS), 3)]
)


def expected_agreement(client: Config, server: Config) -> tuple[list[ExtensionParameter], tuple[bool, bool, int, int]]:
    """RFC 7692 section 7.1, written out: the response parameters and
    ``(server_no_context_takeover, client_no_context_takeover,
    server window, client window)``."""
    snct = client.server_no_context_takeover or server.server_no_context_takeover
    cnct = client.client_no_context_takeover or server.client_no_context_takeover
    params: list[ExtensionParameter] = [SNCT] if snct else []
    params += [CNCT] if cnct else []
    limits = [b for b in (client.server_max_window_bits, server.server_max_window_bits) if b is not None]
    server_bits = min(limits, default=15)
    if limits:
        params.append(smwb(server_bits))
    offered, limit = client.client_max_window_bits, server.client_max_window_bits
    if offered is None:
        client_bits = 15
    elif limit is None:
        client_bits = 15 if offered is True else int(offered)
        if offered is not True:
            # Echoed as websockets does, though RFC 7692 lets it be left out.
            params.append(cmwb(client_bits))
    else:
        client_bits = limit if offered is True else min(int(offered), limit)
        params.append(cmwb(client_bits))
    return params, (snct, cnct, server_bits, client_bits)


def sample_messages() -> list[tuple[int, bytes]]:
    """Messages to send in each direction. Short ones come twice, so that
    context takeover matters; long ones once, to keep tests fast with a
    debug build of the core."""
    rng = random.Random(7692)
    block = rng.randbytes(20_000)
    words = [rng.choice(["deflate", "window", "bits", "takeover", "é", "€", "😀"]) for _ in range(20_000)]
    return [
        (TEXT, b""),
        (BINARY, b""),
        (TEXT, b"a"),
        (BINARY, b"\x00"),
        (TEXT, b"Hello, permessage-deflate! " * 8),
        (TEXT, b""),
        (BINARY, b""),
        (TEXT, b"a"),
        (BINARY, b"\x00"),
        (TEXT, b"Hello, permessage-deflate! " * 8),
        # 70 KB: compressible text, incompressible binary.
        (TEXT, " ".join(words).encode()[:70_000].decode(errors="ignore").encode()),
        (BINARY, rng.randbytes(70_000)),
        # Repeats 20 KB apart: a compressor whose window is wider than
        # negotiated refers back too far for the reference inflater.
        (BINARY, block * 2),
    ]


MESSAGES = sample_messages()


def send_messages(sender: Protocol) -> list[tuple[int, bytes]]:
    """Sends the sample messages; returns them."""
    for opcode, payload in MESSAGES:
        if opcode == TEXT:
            sender.send_text(payload.decode())
        else:
            sender.send_binary(payload)
    return MESSAGES


def check_direction(sender: Protocol, receiver: Protocol, reference: ReferenceInflater) -> None:
    """Sends the sample messages and checks what the receiver gets and what
    went over the wire."""
    sent = send_messages(sender)
    wire = transfer(sender, receiver)
    assert messages_of(receiver.events_received()) == sent
    decoded = reference.feed(wire)
    assert [(opcode, data) for opcode, data, _ in decoded] == sent
    assert all(compressed for _, _, compressed in decoded), "every message is compressed"
    assert receiver.data_to_send() == []
    assert len(wire) < sum(len(payload) for _, payload in sent), "compression saves space"


@pytest.mark.parametrize(("client_config", "server_config"), COMBINATIONS)
def test_negotiate_and_round_trip(client_config: Config, server_config: Config) -> None:
    client, server, header = open_pair([client_config.client_factory()], [server_config.server_factory()])
    params, (snct, cnct, server_bits, client_bits) = expected_agreement(client_config, server_config)

    assert header is not None
    assert parse_extension(header) == [(PMD, params)]
    [client_ext] = client.extensions
    [server_ext] = server.extensions
    assert isinstance(client_ext, PerMessageDeflate) and isinstance(server_ext, PerMessageDeflate)
    assert settings(client_ext) == (snct, cnct, server_bits, client_bits)
    assert settings(server_ext) == (cnct, snct, client_bits, server_bits)

    check_direction(client, server, ReferenceInflater(client_bits, cnct))
    check_direction(server, client, ReferenceInflater(server_bits, snct))


def test_combinations_cover_every_value() -> None:
    offers = [c for c, _ in COMBINATIONS]
    configs = [s for _, s in COMBINATIONS]
    flags: list[Any] = [False, True]
    offer_values: dict[str, list[Any]] = {
        "server_max_window_bits": SERVER_WINDOWS,
        "client_max_window_bits": CLIENT_OFFERS,
        "server_no_context_takeover": flags,
        "client_no_context_takeover": flags,
    }
    for field, values in offer_values.items():
        assert {getattr(c, field) for c in offers} == set(values)
    config_values: dict[str, list[Any]] = {**offer_values, "client_max_window_bits": CLIENT_LIMITS}
    for field, values in config_values.items():
        assert {getattr(s, field) for s in configs} == set(values)
    agreed = {expected_agreement(c, s)[1] for c, s in COMBINATIONS}
    assert {a[2] for a in agreed} == set(range(9, 16))
    assert {a[3] for a in agreed} == set(range(9, 16))
    assert {a[:2] for a in agreed} == set(FLAGS)


def test_context_takeover_shrinks_repeated_messages() -> None:
    message = "The quick brown fox jumps over the lazy dog. " * 3
    sizes: dict[tuple[bool, Side], tuple[int, int]] = {}
    for nct in (False, True):
        client, server, _ = open_pair(
            [ClientPerMessageDeflateFactory(client_no_context_takeover=nct)],
            [ServerPerMessageDeflateFactory(server_no_context_takeover=nct)],
        )
        for sender, receiver in [(client, server), (server, client)]:
            sender.send_text(message)
            sender.send_text(message)
            wire = transfer(sender, receiver)
            first_frame, second_frame = parse_frames(wire)
            sizes[nct, sender.side] = (len(first_frame[1]), len(second_frame[1]))
            assert messages_of(receiver.events_received()) == [(Opcode.TEXT, message.encode())] * 2
    for side in (client.side, server.side):
        first, second = sizes[False, side]
        assert second < first / 3, "the second message refers to the first"
        assert sizes[True, side][0] == sizes[True, side][1] == first


# ----------------------------------------- handshake through the protocols


@pytest.mark.parametrize(
    ("offer", "params"),
    [
        # The first offer is unacceptable: the server takes the next one.
        ("permessage-deflate; server_max_window_bits=16, permessage-deflate", []),
        ("permessage-deflate; x-unknown, permessage-deflate; server_no_context_takeover", [SNCT]),
        ("permessage-deflate; server_max_window_bits=16, permessage-deflate; client_max_window_bits", []),
        (
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover, "
                "permessage-deflate; server_max_window_bits=10"
            ),
            [smwb(10)],
        ),
        # Only the first acceptable offer counts.
        ("permessage-deflate; server_max_window_bits=11, permessage-deflate", [smwb(11)]),
    ],
)
def test_server_takes_next_offer(offer: str, params: list[ExtensionParameter]) -> None:
    _client, server, header = open_pair(
        [ClientPerMessageDeflateFactory()], [ServerPerMessageDeflateFactory()], offer=offer
    )
    assert header is not None
    assert parse_extension(header) == [(PMD, params)]
    assert len(server.extensions) == 1


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; unknown=1, permessage-deflate; client_max_window_bits=08",
        "permessage-deflate; client_no_context_takeover=1",
        "x-webkit-deflate-frame",
    ],
)
def test_server_declines_every_offer(offer: str) -> None:
    client, server, header = open_pair(
        [ClientPerMessageDeflateFactory()], [ServerPerMessageDeflateFactory()], offer=offer
    )
    assert header is None
    assert server.extensions == [] and client.extensions == []
    # Messages go uncompressed.
    client.send_text("plain")
    wire = transfer(client, server)
    assert parse_frames(wire) == [(TEXT, b"plain", True, 0)]
    assert messages_of(server.events_received()) == [(Opcode.TEXT, b"plain")]


def test_server_requires_client_max_window_bits() -> None:
    factory = ServerPerMessageDeflateFactory(client_max_window_bits=10, require_client_max_window_bits=True)
    _, _, header = open_pair([ClientPerMessageDeflateFactory(client_max_window_bits=None)], [factory])
    assert header is None
    client, _server, header = open_pair([ClientPerMessageDeflateFactory()], [factory])
    assert header == "permessage-deflate; client_max_window_bits=10"
    assert settings(client.extensions[0])[3] == 10  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("client_factory", "server_factory"),
    [
        # The server limits the client's window to 8 bits.
        (ClientPerMessageDeflateFactory(), ServerPerMessageDeflateFactory(client_max_window_bits=8)),
        # The client asks for an 8-bit server window.
        (ClientPerMessageDeflateFactory(server_max_window_bits=8), ServerPerMessageDeflateFactory()),
    ],
)
def test_8_bit_window_sends_uncompressed(
    client_factory: ClientPerMessageDeflateFactory, server_factory: ServerPerMessageDeflateFactory
) -> None:
    # RFC 7692 section 7.1.2 allows 8 bits, which zlib cannot compress with:
    # the side limited to 8 bits sends uncompressed (RSV1 clear), and the
    # other side compresses as usual, every message going through.
    client, server, _ = open_pair([client_factory], [server_factory])
    [client_ext] = client.extensions
    assert isinstance(client_ext, PerMessageDeflate)
    client_bits, server_bits = client_ext.local_max_window_bits, client_ext.remote_max_window_bits
    assert 8 in (client_bits, server_bits)
    for sender, receiver, bits in [(client, server, client_bits), (server, client, server_bits)]:
        for _ in range(2):
            sender.send_text("repeat after me, repeat after me, repeat after me")
            sender.send_binary(b"\x00" * 1000)
            wire = transfer(sender, receiver)
            compressed = [bool(rsv & 4) for _, _, _, rsv in parse_frames(wire)]
            assert compressed == [bits > 8] * 2
            assert messages_of(receiver.events_received()) == [
                (Opcode.TEXT, b"repeat after me, repeat after me, repeat after me"),
                (Opcode.BINARY, b"\x00" * 1000),
            ]


def handshake_response_to(client: ClientProtocol, extensions: str) -> None:
    """Answers ``client``'s request with a hand-written 101 response."""
    client.send_request(client.connect())
    client.data_to_send()
    client.receive_data(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {_core.accept_key(client.key)}\r\n"
            f"Sec-WebSocket-Extensions: {extensions}\r\n\r\n"
        ).encode()
    )


@pytest.mark.parametrize(
    ("factory", "extensions"),
    [
        (ClientPerMessageDeflateFactory(server_no_context_takeover=True), "permessage-deflate"),
        (ClientPerMessageDeflateFactory(server_max_window_bits=10), "permessage-deflate; server_max_window_bits=11"),
        (ClientPerMessageDeflateFactory(server_max_window_bits=10), "permessage-deflate"),
        (ClientPerMessageDeflateFactory(client_max_window_bits=None), "permessage-deflate; client_max_window_bits=10"),
        (ClientPerMessageDeflateFactory(client_max_window_bits=10), "permessage-deflate; client_max_window_bits=11"),
        (ClientPerMessageDeflateFactory(), "permessage-deflate; client_max_window_bits"),
        (ClientPerMessageDeflateFactory(), "permessage-deflate; foo"),
        (ClientPerMessageDeflateFactory(), "permessage-deflate, permessage-deflate"),
        (ClientPerMessageDeflateFactory(), "x-webkit-deflate-frame"),
    ],
)
def test_client_fails_handshake_on_bad_response(factory: ClientPerMessageDeflateFactory, extensions: str) -> None:
    client = ClientProtocol("ws://localhost/", extensions=[factory])
    handshake_response_to(client, extensions)
    assert isinstance(client.handshake_exc, NegotiationError)
    assert client.state is not OPEN
    assert client.extensions == []


def test_client_without_extensions_fails_on_deflate_response() -> None:
    client = ClientProtocol("ws://localhost/")
    handshake_response_to(client, "permessage-deflate")
    assert isinstance(client.handshake_exc, NegotiationError)


@pytest.mark.parametrize(
    ("extensions", "expected"),
    [
        ("permessage-deflate", (False, False, 15, 15)),
        ("permessage-deflate; server_max_window_bits=8", (False, False, 8, 15)),
        ("permessage-deflate; client_no_context_takeover", (False, True, 15, 15)),
    ],
)
def test_client_opens_on_good_response(extensions: str, expected: tuple[bool, bool, int, int]) -> None:
    client = ClientProtocol("ws://localhost/", extensions=[ClientPerMessageDeflateFactory()])
    handshake_response_to(client, extensions)
    assert client.handshake_exc is None
    assert client.state is OPEN
    [ext] = client.extensions
    assert settings(ext) == expected  # type: ignore[arg-type]


def test_server_window_8_round_trip() -> None:
    # A server compressing with a real 8-bit window (zlib widens -8 to 9,
    # which is what an 8-bit-capable peer may also send): the client
    # inflates it with a 9-bit window.
    client = ClientProtocol("ws://localhost/", extensions=[ClientPerMessageDeflateFactory(server_max_window_bits=8)])
    handshake_response_to(client, "permessage-deflate; server_max_window_bits=8")
    assert client.state is OPEN
    client.events_received()
    message = random.Random(8).randbytes(300) * 20
    compressor = zlib.compressobj(wbits=-9)
    payload = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert payload.endswith(TAIL)
    client.receive_data(frame(BINARY, payload[:-4], rsv=4))
    assert messages_of(client.events_received()) == [(Opcode.BINARY, message)]


# ------------------------------------------------- frames on the wire


def deflate_pair(**kwargs: Any) -> tuple[ClientProtocol, ServerProtocol]:
    client, server, _ = open_pair([ClientPerMessageDeflateFactory()], [ServerPerMessageDeflateFactory()], **kwargs)
    return client, server


def close_sent(proto: Protocol) -> tuple[int, bytes] | None:
    """Code and reason of the close frame ``proto`` wrote, if any."""
    wire = b"".join(data for data in proto.data_to_send() if data)
    closes = [payload for opcode, payload, _, _ in parse_frames(wire) if opcode == CLOSE]
    if not closes:
        return None
    [payload] = closes
    return int.from_bytes(payload[:2], "big"), payload[2:]


def raw_compress(message: bytes, window_bits: int = 15, **kwargs: Any) -> bytes:
    compressor = zlib.compressobj(wbits=-window_bits, **kwargs)
    data = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(TAIL)
    return data[:-4]


# Compressed against a preset dictionary: refers to data the receiver never had.
FAR_BACK = raw_compress(b"permessage-deflate" * 4, zdict=b"permessage-deflate" * 4)


@pytest.mark.parametrize("sender_side", ["client", "server"])
def test_fragmented_compressed_message(sender_side: str) -> None:
    client, server = deflate_pair()
    sender, receiver = (client, server) if sender_side == "client" else (server, client)
    parts = ["Hello, ", "", "frag" * 1000, "ment€d ", "world"]
    sender.send_text(parts[0], fin=False)
    for part in parts[1:-1]:
        sender.send_continuation(part, fin=False)
    sender.send_continuation(parts[-1], fin=True)
    wire = transfer(sender, receiver)
    frames = parse_frames(wire)
    assert [(opcode, fin, rsv) for opcode, _, fin, rsv in frames] == [
        (TEXT, False, 4),
        (CONT, False, 0),
        (CONT, False, 0),
        (CONT, False, 0),
        (CONT, True, 0),
    ]
    events = frames_received(receiver)
    assert [event.data for event in events] == [part.encode() for part in parts]
    assert messages_of(events) == [(Opcode.TEXT, "".join(parts).encode())]
    # The frames decode as one deflate stream (section 7.2.1).
    assert ReferenceInflater(15, False).feed(wire) == [(TEXT, "".join(parts).encode(), True)]


@pytest.mark.parametrize("sender_side", ["client", "server"])
def test_compressed_message_interleaved_with_pings(sender_side: str) -> None:
    client, server = deflate_pair()
    sender, receiver = (client, server) if sender_side == "client" else (server, client)
    sender.send_binary(b"spam " * 100, fin=False)
    sender.send_ping(b"ping 1")
    sender.send_continuation(b"eggs " * 100, fin=False)
    sender.send_ping(b"ping 2")
    sender.send_pong(b"pong")
    sender.send_continuation(b"ham", fin=True)
    sender.send_ping(b"ping 3")
    wire = transfer(sender, receiver)
    assert [(opcode, rsv) for opcode, _, _, rsv in parse_frames(wire)] == [
        (BINARY, 4),
        (PING, 0),
        (CONT, 0),
        (PING, 0),
        (PONG, 0),
        (CONT, 0),
        (PING, 0),
    ]
    events = frames_received(receiver)
    assert [(e.opcode, bytes(e.data)) for e in events if e.opcode in (Opcode.PING, Opcode.PONG)] == [
        (Opcode.PING, b"ping 1"),
        (Opcode.PING, b"ping 2"),
        (Opcode.PONG, b"pong"),
        (Opcode.PING, b"ping 3"),
    ]
    assert messages_of(events) == [(Opcode.BINARY, b"spam " * 100 + b"eggs " * 100 + b"ham")]
    pongs = parse_frames(b"".join(receiver.data_to_send()))
    assert [(opcode, payload, rsv) for opcode, payload, _, rsv in pongs] == [
        (PONG, b"ping 1", 0),
        (PONG, b"ping 2", 0),
        (PONG, b"ping 3", 0),
    ]


def incoming_frame(receiver: Protocol, opcode: int, payload: bytes, **kwargs: Any) -> bytes:
    """A frame as ``receiver``'s peer sends it."""
    if isinstance(receiver, ServerProtocol):
        return client_frame(opcode, payload, **kwargs)
    return frame(opcode, payload, **kwargs)


@pytest.mark.parametrize("receiver_side", ["client", "server"])
@pytest.mark.parametrize(
    "frames",
    [
        # RSV1 on a continuation frame (section 6.1).
        [(TEXT, raw_compress(b"abc"), False, 4), (CONT, raw_compress(b"def"), True, 4)],
        [(TEXT, b"abc", False, 0), (CONT, b"def", True, 4)],
        # RSV1 on control frames: they are never compressed.
        [(PING, b"", True, 4)],
        [(PING, raw_compress(b"ping"), True, 4)],
        [(PONG, b"pong", True, 4)],
        [(TEXT, raw_compress(b"abc"), False, 4), (PING, b"x", True, 4)],
        [(CLOSE, b"\x03\xe8", True, 4)],
        # RSV2 and RSV3 stay reserved.
        [(TEXT, raw_compress(b"abc"), True, 6)],
        [(TEXT, b"abc", True, 1)],
        # Invalid deflate data.
        [(BINARY, b"\xff\xff\xff\xff", True, 4)],
        [(BINARY, b"\x07\x00", True, 4)],  # reserved block type
        [(BINARY, b"\x00\x05\x00\x00\x00hello", True, 4)],  # LEN/NLEN mismatch
        [(TEXT, raw_compress(b"abc"), False, 4), (CONT, b"\xff\xff\xff\xff", True, 0)],
        # A reference to data before the start of the stream.
        [(BINARY, FAR_BACK, True, 4)],
    ],
)
def test_protocol_errors_fail_with_1002(receiver_side: str, frames: list[tuple[int, bytes, bool, int]]) -> None:
    client, server = deflate_pair()
    receiver = client if receiver_side == "client" else server
    receiver.receive_data(b"".join(incoming_frame(receiver, *f[:2], fin=f[2], rsv=f[3]) for f in frames))
    receiver.events_received()
    code = close_sent(receiver)
    assert code is not None and code[0] == 1002
    assert isinstance(receiver.parser_exc, ProtocolError)
    # Later data is ignored.
    receiver.receive_data(incoming_frame(receiver, TEXT, b"late"))
    assert receiver.events_received() == []


def test_invalid_deflate_data_reason() -> None:
    _client, server = deflate_pair()
    server.receive_data(client_frame(BINARY, b"\x07\x00", rsv=4))
    assert close_sent(server) == (1002, b"decompression failed: invalid deflate data")
    assert str(server.parser_exc) == "decompression failed: invalid deflate data"


@pytest.mark.parametrize("receiver_side", ["client", "server"])
def test_uncompressed_messages_are_accepted(receiver_side: str) -> None:
    client, server = deflate_pair()
    receiver = client if receiver_side == "client" else server
    data = b"".join(
        [
            incoming_frame(receiver, TEXT, b"plain"),
            incoming_frame(receiver, BINARY, raw_compress(b"squeezed"), rsv=4),
            incoming_frame(receiver, BINARY, b"\x00\x01", fin=False),
            incoming_frame(receiver, CONT, b"\x02", fin=True),
            incoming_frame(receiver, TEXT, b""),
            incoming_frame(receiver, TEXT, raw_compress(b""), rsv=4),
        ]
    )
    receiver.receive_data(data)
    assert messages_of(receiver.events_received()) == [
        (Opcode.TEXT, b"plain"),
        (Opcode.BINARY, b"squeezed"),
        (Opcode.BINARY, b"\x00\x01\x02"),
        (Opcode.TEXT, b""),
        (Opcode.TEXT, b""),
    ]
    assert close_sent(receiver) is None


@pytest.mark.parametrize(
    ("payloads", "message"),
    [
        # RFC 7692 section 7.2.3.1: "Hello", compressed.
        ([bytes.fromhex("f248cdc9c90700")], b"Hello"),
        # Section 7.2.3.1, fragmented into two frames.
        ([bytes.fromhex("f248cd"), bytes.fromhex("c9c90700")], b"Hello"),
        # Section 7.2.3.3: a stored block.
        ([bytes.fromhex("0005 00faff 48656c6c6f 00")], b"Hello"),
        # Section 7.2.3.4: a block with BFINAL set.
        ([bytes.fromhex("f348cdc9c90700 00")], b"Hello"),
        # Section 7.2.3.5: two blocks in one message.
        ([bytes.fromhex("f248050000 00ffff cac9c90700")], b"Hello"),
    ],
)
def test_rfc7692_examples(payloads: list[bytes], message: bytes) -> None:
    _client, server = deflate_pair()
    frames = [
        client_frame(TEXT if i == 0 else CONT, payload, fin=i == len(payloads) - 1, rsv=4 if i == 0 else 0)
        for i, payload in enumerate(payloads)
    ]
    server.receive_data(b"".join(frames))
    assert messages_of(server.events_received()) == [(Opcode.TEXT, message)]
    assert close_sent(server) is None


def test_rfc7692_context_takeover_example() -> None:
    # Section 7.2.3.2: the second "Hello" refers to the first.
    client, server = deflate_pair()
    server.receive_data(client_frame(TEXT, bytes.fromhex("f248cdc9c90700"), rsv=4))
    server.receive_data(client_frame(TEXT, bytes.fromhex("f200110000"), rsv=4))
    assert messages_of(server.events_received()) == [(Opcode.TEXT, b"Hello")] * 2
    # And ferrows' own compressor produces exactly these bytes.
    client.send_text("Hello")
    client.send_text("Hello")
    wire = b"".join(client.data_to_send())
    assert [payload for _, payload, _, _ in parse_frames(wire)] == [
        bytes.fromhex("f248cdc9c90700"),
        bytes.fromhex("f200110000"),
    ]


@pytest.mark.parametrize("receiver_side", ["client", "server"])
def test_max_size_applies_after_decompression(receiver_side: str) -> None:
    client, server = deflate_pair(max_size=1000)
    receiver = client if receiver_side == "client" else server
    receiver.receive_data(incoming_frame(receiver, BINARY, raw_compress(bytes(1000)), rsv=4))
    assert messages_of(receiver.events_received()) == [(Opcode.BINARY, bytes(1000))]
    payload = raw_compress(bytes(1001))
    assert len(payload) < 20
    receiver.receive_data(incoming_frame(receiver, BINARY, payload, rsv=4))
    assert receiver.events_received() == []
    code = close_sent(receiver)
    assert code is not None and code[0] == 1009
    assert isinstance(receiver.parser_exc, PayloadTooBig)


def test_max_size_counts_every_fragment_after_decompression() -> None:
    _client, server = deflate_pair(max_size=1000)
    compressor = zlib.compressobj(wbits=-15)
    first = compressor.compress(bytes(600)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    second = compressor.compress(bytes(600)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    server.receive_data(client_frame(BINARY, first, fin=False, rsv=4) + client_frame(CONT, second[:-4]))
    assert [len(e.data) for e in frames_received(server)] == [600]
    code = close_sent(server)
    assert code is not None and code[0] == 1009


# ------------------------------------------ with an extension in Python


class Reverse(Extension):
    """Reverses data frames: an extension that only Python can run."""

    name = ExtensionName("x-reverse")

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return Frame(frame.opcode, bytes(frame.data)[::-1], frame.fin, frame.rsv1, frame.rsv2, frame.rsv3)
        return frame

    encode = decode  # type: ignore[assignment]


class ClientReverseFactory(ClientExtensionFactory):
    name = ExtensionName("x-reverse")

    def get_request_params(self) -> list[ExtensionParameter]:
        return []

    def process_response_params(self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]) -> Reverse:
        return Reverse()


class ServerReverseFactory(ServerExtensionFactory):
    name = ExtensionName("x-reverse")

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], Reverse]:
        return [], Reverse()


@pytest.mark.parametrize("deflate_first", [True, False])
@pytest.mark.parametrize("nct", [False, True])
def test_deflate_with_python_extension(deflate_first: bool, nct: bool) -> None:
    client_factories: list[ClientExtensionFactory] = [
        ClientPerMessageDeflateFactory(client_max_window_bits=11, server_no_context_takeover=nct),
        ClientReverseFactory(),
    ]
    server_factories: list[ServerExtensionFactory] = [
        ServerPerMessageDeflateFactory(server_max_window_bits=10, client_no_context_takeover=nct),
        ServerReverseFactory(),
    ]
    if not deflate_first:
        client_factories.reverse()
        server_factories.reverse()
    client, server, header = open_pair(client_factories, server_factories)
    names = [name for name, _ in parse_extension(header or "")]
    assert names == ([PMD, "x-reverse"] if deflate_first else ["x-reverse", PMD])
    assert [ext.name for ext in client.extensions] == names
    assert client._py_extensions and server._py_extensions, "the Python path is in use"

    for sender, receiver, bits, no_takeover in [(client, server, 11, nct), (server, client, 10, nct)]:
        sent = send_messages(sender)
        # A fragmented message too.
        sender.send_text("frag", fin=False)
        sender.send_continuation("ment", fin=False)
        sender.send_continuation("ed", fin=True)
        wire = transfer(sender, receiver)
        assert messages_of(receiver.events_received()) == [*sent, (Opcode.TEXT, b"fragmented")]
        # On the wire: RSV1 on first frames, then deflate data, reversed
        # if x-reverse ran after deflate when sending.
        frames = parse_frames(wire)
        assert all(rsv == (4 if opcode != CONT else 0) for opcode, _, _, rsv in frames)
        reference = ReferenceInflater(bits, no_takeover)
        if deflate_first:
            wire = b"".join(frame(op, payload[::-1], fin=fin, rsv=rsv) for op, payload, fin, rsv in frames)
            assert [(op, data) for op, data, _ in reference.feed(wire)][: len(sent)] == sent


def python_path_pair(max_size: int = 1000) -> tuple[ClientProtocol, ServerProtocol]:
    client, server, _ = open_pair(
        [ClientPerMessageDeflateFactory(), ClientReverseFactory()],
        [ServerPerMessageDeflateFactory(), ServerReverseFactory()],
        max_size=max_size,
    )
    assert server._py_extensions
    return client, server


def test_python_path_max_size() -> None:
    _client, server = python_path_pair()
    server.receive_data(client_frame(BINARY, raw_compress(bytes(1000))[::-1], rsv=4))
    assert messages_of(server.events_received()) == [(Opcode.BINARY, bytes(1000))]
    server.receive_data(client_frame(BINARY, raw_compress(bytes(10**6))[::-1], rsv=4))
    assert server.events_received() == []
    code = close_sent(server)
    assert code is not None and code[0] == 1009
    assert isinstance(server.parser_exc, PayloadTooBig)


def test_python_path_max_size_across_fragments() -> None:
    _client, server = python_path_pair()
    compressor = zlib.compressobj(wbits=-15)
    first = compressor.compress(bytes(600)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    second = compressor.compress(bytes(600)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    server.receive_data(client_frame(BINARY, first[::-1], fin=False, rsv=4) + client_frame(CONT, second[:-4][::-1]))
    assert [len(e.data) for e in frames_received(server)] == [600]
    code = close_sent(server)
    assert code is not None and code[0] == 1009


@pytest.mark.parametrize(
    "frames",
    [
        [(BINARY, b"\x07\x00"[::-1], True, 4)],
        [(BINARY, FAR_BACK[::-1], True, 4)],
        [(TEXT, raw_compress(b"abc")[::-1], False, 4), (CONT, raw_compress(b"def")[::-1], True, 4)],
        [(PING, b"", True, 4)],
        [(TEXT, raw_compress(b"abc")[::-1], True, 2)],
    ],
)
def test_python_path_protocol_errors(frames: list[tuple[int, bytes, bool, int]]) -> None:
    _client, server = python_path_pair()
    server.receive_data(b"".join(client_frame(op, payload, fin=fin, rsv=rsv) for op, payload, fin, rsv in frames))
    server.events_received()
    code = close_sent(server)
    assert code is not None and code[0] == 1002
    assert isinstance(server.parser_exc, ProtocolError)


def test_python_path_invalid_utf8_after_decompression() -> None:
    _client, server = python_path_pair()
    server.receive_data(client_frame(TEXT, raw_compress(b"\xff\xfe")[::-1], rsv=4))
    server.events_received()
    code = close_sent(server)
    assert code is not None and code[0] == 1007


@pytest.mark.parametrize("python_path", [False, True])
def test_each_message_gets_the_whole_max_size(python_path: bool) -> None:
    # After a message of exactly max_size bytes, the next compressed frame
    # is checked against its own message only.
    if python_path:
        client, server = python_path_pair(max_size=10_000)
    else:
        client, server = deflate_pair(max_size=10_000)
    noise = random.Random(10).randbytes(10_000)
    for message in [bytes(10_000), noise, b"x", noise, bytes(10_000)]:
        client.send_binary(message)
        transfer(client, server)
        assert messages_of(server.events_received()) == [(Opcode.BINARY, message)]
    assert close_sent(server) is None


@pytest.mark.parametrize(
    ("offer", "response", "message"),
    [
        (
            {"server_no_context_takeover": True},
            [],
            "expected server_no_context_takeover: offered, missing from the response",
        ),
        (
            {"server_max_window_bits": 10},
            [],
            "expected server_max_window_bits: offered 10, missing from the response",
        ),
        (
            {"server_max_window_bits": 10},
            [smwb(12)],
            "unsupported server_max_window_bits: 12, offered at most 10",
        ),
        ({"client_max_window_bits": None}, [cmwb(10)], "unexpected client_max_window_bits: 10, not offered"),
        (
            {"client_max_window_bits": 11},
            [cmwb(12)],
            "unsupported client_max_window_bits: 12, offered at most 11",
        ),
    ],
)
def test_client_negotiation_errors_name_the_parameter(
    offer: dict[str, Any], response: list[ExtensionParameter], message: str
) -> None:
    # websockets' wording, then the values at stake.
    with pytest.raises(NegotiationError) as raised:
        ClientPerMessageDeflateFactory(**offer).process_response_params(response, [])
    assert str(raised.value) == message


def test_server_negotiation_error_names_the_parameter() -> None:
    factory = ServerPerMessageDeflateFactory(client_max_window_bits=10, require_client_max_window_bits=True)
    with pytest.raises(NegotiationError) as raised:
        factory.process_request_params([], [])
    assert str(raised.value) == (
        "required client_max_window_bits: the offer lacks it, this server limits clients to 10"
    )

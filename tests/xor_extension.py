"""A toy extension written in Python, XOR with a key flagged by RSV3, and a
client/server pair that negotiated it: the Sans-I/O and connection tests use
it to drive the path on which extensions run in Python, above the core."""

from __future__ import annotations

from collections.abc import Sequence

from ferrows.client import ClientProtocol
from ferrows.exceptions import NegotiationError, PayloadTooBig
from ferrows.extensions.base import ClientExtensionFactory, Extension, ServerExtensionFactory
from ferrows.frames import Frame, Opcode
from ferrows.protocol import OPEN, Protocol
from ferrows.server import ServerProtocol
from ferrows.typing import ExtensionName, ExtensionParameter


class XorExtension(Extension):
    """Toy extension: XORs data payloads with a key and flags them with RSV3.

    Uncompressed frames (RSV3 clear) pass through, so that both paths get
    exercised; frames with ``skip`` in them are sent without transforming.
    """

    name = ExtensionName("x-xor")

    def __init__(self, key: int) -> None:
        self.key = key
        self.decoded: list[Frame] = []

    def _xor(self, data: bytes) -> bytes:
        return bytes(b ^ self.key for b in data)

    def encode(self, frame: Frame) -> Frame:
        if b"skip" in frame.data or frame.opcode.value >= 8:
            return frame
        return Frame(frame.opcode, self._xor(frame.data), frame.fin, frame.rsv1, frame.rsv2, True)

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        self.decoded.append(frame)
        if not frame.rsv3:
            return frame
        if max_size is not None and len(frame.data) > max_size:
            raise PayloadTooBig(len(frame.data), max_size)
        if frame.data == b"\x00boom" and frame.opcode is Opcode.BINARY:
            raise RuntimeError("bug in the extension")
        return Frame(
            frame.opcode,
            self._xor(frame.data),
            frame.fin,
            frame.rsv1,
            frame.rsv2,
            False,
        )


class ServerXorFactory(ServerExtensionFactory):
    name = ExtensionName("x-xor")

    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], Extension]:
        (param,) = params
        if param[0] != "key" or param[1] is None:
            raise NegotiationError("bad x-xor offer")
        return [("key", param[1])], XorExtension(int(param[1]))


class ClientXorFactory(ClientExtensionFactory):
    name = ExtensionName("x-xor")

    def __init__(self, key: int) -> None:
        self.key = key

    def get_request_params(self) -> Sequence[ExtensionParameter]:
        return [("key", str(self.key))]

    def process_response_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> Extension:
        if list(params) != [("key", str(self.key))]:
            raise NegotiationError("unexpected x-xor answer")
        return XorExtension(self.key)


def connected_pair(key: int = 42, max_size: int = 2**20) -> tuple[ClientProtocol, ServerProtocol]:
    """A client and a server that negotiated the XOR extension."""
    client = ClientProtocol("ws://example.com/", extensions=[ClientXorFactory(key)], max_size=max_size)
    server = ServerProtocol(extensions=[ServerXorFactory()], max_size=max_size)
    client.send_request(client.connect())
    for data in client.data_to_send():
        server.receive_data(data)
    (request,) = server.events_received()
    assert request.headers["Sec-WebSocket-Extensions"] == f"x-xor; key={key}"
    response = server.accept(request)
    assert response.headers["Sec-WebSocket-Extensions"] == f"x-xor; key={key}"
    server.send_response(response)
    for data in server.data_to_send():
        client.receive_data(data)
    (response,) = client.events_received()
    assert response.status_code == 101
    assert client.state is OPEN and server.state is OPEN
    assert [type(e) for e in client.extensions] == [XorExtension]
    assert [type(e) for e in server.extensions] == [XorExtension]
    return client, server


def pump(src: Protocol, dst: Protocol) -> list[Frame]:
    for data in src.data_to_send():
        if data:
            dst.receive_data(data)
        else:
            dst.receive_eof()
    return dst.events_received()  # type: ignore[return-value]

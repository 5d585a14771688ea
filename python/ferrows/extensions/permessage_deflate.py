"""permessage-deflate (RFC 7692): negotiation in Python, compression in Rust.

The factories negotiate the four parameters in the opening handshake and
produce a :class:`PerMessageDeflate`. When the connection opens, the
protocol hands its parameters to the Rust core, which compresses and
inflates without crossing back into Python. The Python ``encode`` and
``decode`` methods remain for code that calls them directly, and for
connections that also use extensions written in Python.

A window of 8 bits is valid for either side (RFC 7692 section 7.1.2), but
zlib cannot compress with it. An endpoint whose own window was limited to 8
bits sends its messages uncompressed (RSV1 clear, which section 6 allows for
any message) and still inflates what the peer sends.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from ..exceptions import (
    DuplicateParameter,
    InvalidParameterName,
    InvalidParameterValue,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
)
from ..frames import CTRL_OPCODES, OP_CONT, Frame
from ..typing import ExtensionName, ExtensionParameter
from .base import ClientExtensionFactory, Extension, ServerExtensionFactory

__all__ = [
    "ClientPerMessageDeflateFactory",
    "PerMessageDeflate",
    "ServerPerMessageDeflateFactory",
    "enable_client_permessage_deflate",
    "enable_server_permessage_deflate",
]

NAME = ExtensionName("permessage-deflate")
_TAIL = b"\x00\x00\xff\xff"
_SETTINGS = {"level", "memLevel"}


def _check_compress_settings(compress_settings: dict[str, Any] | None) -> dict[str, Any]:
    """Validates zlib settings: the window comes from negotiation, and the
    Rust core honours ``level`` and ``memLevel``.

    Returns a copy of the settings as given: the defaults are applied where
    they are used (:func:`_zlib_settings`), not written into the dict, which
    users read back as ``compress_settings`` (websockets keeps theirs as is).
    """
    settings = dict(compress_settings or {})
    if "wbits" in settings:
        raise ValueError("compress_settings must not include wbits, set max_window_bits instead")
    unknown = set(settings) - _SETTINGS
    if unknown:
        raise ValueError(f"unsupported compress_settings: {', '.join(sorted(unknown))}")
    level, mem_level = _zlib_settings(settings)
    if not (isinstance(level, int) and 0 <= level <= 9):
        raise ValueError(f"invalid compression level: {level}")
    if not (isinstance(mem_level, int) and 1 <= mem_level <= 9):
        raise ValueError(f"invalid memLevel: {mem_level}")
    return settings


def _zlib_settings(settings: dict[str, Any]) -> tuple[int, int]:
    """``(level, memLevel)`` of checked settings, with zlib's defaults for
    those not given (``level=-1``, zlib's "default", is 6)."""
    level = settings.get("level", 6)
    return (6 if level == -1 else level), settings.get("memLevel", 8)


class PerMessageDeflate(Extension):
    """permessage-deflate as negotiated for one connection.

    Args:
        remote_no_context_takeover: The peer resets its compressor after
            each message.
        local_no_context_takeover: This side resets its compressor after
            each message.
        remote_max_window_bits: Window of the peer's compressor (8-15).
        local_max_window_bits: Window of this side's compressor (8-15); with
            8, this side sends uncompressed.
        compress_settings: ``level`` and ``memLevel`` for the compressor.
    """

    name = NAME

    def __init__(
        self,
        remote_no_context_takeover: bool,
        local_no_context_takeover: bool,
        remote_max_window_bits: int,
        local_max_window_bits: int,
        compress_settings: dict[str, Any] | None = None,
    ) -> None:
        if not 8 <= remote_max_window_bits <= 15:
            raise ValueError("remote_max_window_bits must be between 8 and 15")
        if not 8 <= local_max_window_bits <= 15:
            raise ValueError("local_max_window_bits must be between 8 and 15")
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_max_window_bits = remote_max_window_bits
        self.local_max_window_bits = local_max_window_bits
        self.compress_settings = _check_compress_settings(compress_settings)
        self._decoder: Any = None
        self._encoder: Any = None
        self._decoding = False

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate(remote_no_context_takeover={self.remote_no_context_takeover}, "
            f"local_no_context_takeover={self.local_no_context_takeover}, "
            f"remote_max_window_bits={self.remote_max_window_bits}, "
            f"local_max_window_bits={self.local_max_window_bits})"
        )

    @property
    def _inflate_window_bits(self) -> int:
        """Window of the decompressor: a peer's 8-bit window inflates with
        9 bits, since any window at least as large as the sender's works."""
        return max(self.remote_max_window_bits, 9)

    def core_settings(self) -> tuple[bool, bool, int, int, int, int]:
        """Arguments of ``_core.Connection.enable_deflate``."""
        return (
            self.remote_no_context_takeover,
            self.local_no_context_takeover,
            self._inflate_window_bits,
            self.local_max_window_bits,
            *_zlib_settings(self.compress_settings),
        )

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Inflates a received frame (Python path), bounded by ``max_size``.

        Raises:
            PayloadTooBig: If the frame inflates past ``max_size``.
            ProtocolError: On RSV1 misuse or invalid deflate data.
        """
        if frame.opcode in CTRL_OPCODES:
            return frame
        if frame.opcode is OP_CONT:
            if frame.rsv1:
                raise ProtocolError("unexpected rsv1 on continuation frame")
        else:
            self._decoding = frame.rsv1
        if not self._decoding:
            return frame
        if self._decoder is None:
            self._decoder = zlib.decompressobj(wbits=-self._inflate_window_bits)
        data = bytes(frame.data) + (_TAIL if frame.fin else b"")
        limit = 0 if max_size is None else max_size + 1
        try:
            out = self._decoder.decompress(data, limit)
        except zlib.error as exc:
            raise ProtocolError("decompression failed") from exc
        if max_size is not None and len(out) > max_size:
            raise PayloadTooBig(None, max_size)
        if frame.fin:
            self._decoding = False
            if self.remote_no_context_takeover:
                self._decoder = None
        return Frame(frame.opcode, out, frame.fin, False, frame.rsv2, frame.rsv3)

    def encode(self, frame: Frame) -> Frame:
        """Compresses a frame about to be sent (Python path); leaves it as
        is with an 8-bit window (see the module documentation)."""
        if frame.opcode in CTRL_OPCODES or self.local_max_window_bits < 9:
            return frame
        if self._encoder is None:
            level, mem_level = _zlib_settings(self.compress_settings)
            self._encoder = zlib.compressobj(level=level, wbits=-self.local_max_window_bits, memLevel=mem_level)
        data = self._encoder.compress(bytes(frame.data)) + self._encoder.flush(zlib.Z_SYNC_FLUSH)
        if frame.fin:
            if data.endswith(_TAIL):
                data = data[:-4]
            if self.local_no_context_takeover:
                self._encoder = None
        return Frame(frame.opcode, data, frame.fin, frame.opcode is not OP_CONT, frame.rsv2, frame.rsv3)


def _parse_params(
    params: Sequence[ExtensionParameter], *, is_server: bool
) -> tuple[bool, bool, int | None, int | bool | None]:
    """Reads the four parameters of an offer or a response.

    Returns:
        ``(server_no_context_takeover, client_no_context_takeover,
        server_max_window_bits, client_max_window_bits)``; the last is True
        for a bare ``client_max_window_bits`` in a client's offer.

    Raises:
        DuplicateParameter, InvalidParameterName, InvalidParameterValue: As
            RFC 7692 section 7 requires declining or failing on them.
    """
    seen: set[str] = set()
    server_nct = client_nct = False
    server_bits: int | None = None
    client_bits: int | bool | None = None
    for name, value in params:
        if name in seen:
            raise DuplicateParameter(name)
        seen.add(name)
        if name == "server_no_context_takeover":
            if value is not None:
                raise InvalidParameterValue(name, value)
            server_nct = True
        elif name == "client_no_context_takeover":
            if value is not None:
                raise InvalidParameterValue(name, value)
            client_nct = True
        elif name == "server_max_window_bits":
            server_bits = _window_bits(name, value)
        elif name == "client_max_window_bits":
            if value is None and is_server:
                # A bare value in the offer: the client supports the limit.
                client_bits = True
            else:
                client_bits = _window_bits(name, value)
        else:
            raise InvalidParameterName(name)
    return server_nct, client_nct, server_bits, client_bits


_WINDOW_BITS = {str(bits): bits for bits in range(8, 16)}


def _window_bits(name: str, value: str | None) -> int:
    """Section 7.1.2: a decimal 8-15 without leading zeros."""
    bits = _WINDOW_BITS.get(value) if value is not None else None
    if bits is None:
        raise InvalidParameterValue(name, value)
    return bits


class ClientPerMessageDeflateFactory(ClientExtensionFactory):
    """Offers permessage-deflate in a client's handshake.

    Args:
        server_no_context_takeover: Ask the server not to keep context.
        client_no_context_takeover: Announce that the client won't.
        server_max_window_bits: Ask the server for a window of at most this
            many bits (8-15).
        client_max_window_bits: :obj:`True` to accept a limit from the
            server, or a limit of 8-15 bits for the client's own window.
        compress_settings: ``level`` and ``memLevel`` for the compressor.

    Raises:
        ValueError: If a parameter is out of range.
    """

    name = NAME

    def __init__(
        self,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | bool | None = True,
        compress_settings: dict[str, Any] | None = None,
    ) -> None:
        if server_max_window_bits is not None and not 8 <= server_max_window_bits <= 15:
            raise ValueError("server_max_window_bits must be between 8 and 15")
        if not (
            client_max_window_bits is None
            or client_max_window_bits is True
            or (type(client_max_window_bits) is int and 8 <= client_max_window_bits <= 15)
        ):
            raise ValueError("client_max_window_bits must be between 8 and 15")
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_settings = _check_compress_settings(compress_settings)

    def get_request_params(self) -> Sequence[ExtensionParameter]:
        """The offer: only the parameters that differ from the defaults."""
        params: list[ExtensionParameter] = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        if self.client_max_window_bits is True:
            params.append(("client_max_window_bits", None))
        elif self.client_max_window_bits is not None:
            params.append(("client_max_window_bits", str(self.client_max_window_bits)))
        return params

    def process_response_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> PerMessageDeflate:
        """Checks the server's answer against the offer (RFC 7692 section 7).

        Raises:
            NegotiationError: If the answer does not fit the offer.
        """
        if any(other.name == NAME for other in accepted_extensions):
            raise NegotiationError(f"received duplicate {NAME}")
        server_nct, client_nct, server_bits, client_bits = _parse_params(params, is_server=False)

        # The messages start with websockets' wording and add the values.
        if self.server_no_context_takeover and not server_nct:
            raise NegotiationError("expected server_no_context_takeover: offered, missing from the response")
        # client_no_context_takeover: the server may ask for it even if the
        # client did not offer it; the client then complies.
        client_nct = client_nct or self.client_no_context_takeover

        if self.server_max_window_bits is not None:
            if server_bits is None:
                raise NegotiationError(
                    f"expected server_max_window_bits: offered {self.server_max_window_bits}, missing from the response"
                )
            if server_bits > self.server_max_window_bits:
                raise NegotiationError(
                    f"unsupported server_max_window_bits: {server_bits}, offered at most {self.server_max_window_bits}"
                )

        if self.client_max_window_bits is None:
            if client_bits is not None:
                raise NegotiationError(f"unexpected client_max_window_bits: {client_bits}, not offered")
        elif client_bits is None:
            client_bits = 15 if self.client_max_window_bits is True else self.client_max_window_bits
        elif self.client_max_window_bits is not True and client_bits > self.client_max_window_bits:
            raise NegotiationError(
                f"unsupported client_max_window_bits: {client_bits}, offered at most {self.client_max_window_bits}"
            )
        # client_bits may be 8: the client then sends uncompressed.

        return PerMessageDeflate(
            server_nct,
            client_nct,
            server_bits if server_bits is not None else 15,
            int(client_bits) if client_bits is not None else 15,
            self.compress_settings,
        )


class ServerPerMessageDeflateFactory(ServerExtensionFactory):
    """Accepts permessage-deflate offers in a server's handshake.

    Args:
        server_no_context_takeover: Don't keep context between messages.
        client_no_context_takeover: Ask clients not to keep context.
        server_max_window_bits: Limit of the server's window (8-15); with 8
            the server sends uncompressed.
        client_max_window_bits: Limit asked of clients' windows (8-15),
            when they support the parameter.
        compress_settings: ``level`` and ``memLevel`` for the compressor.
        require_client_max_window_bits: Decline clients that don't support
            ``client_max_window_bits``.

    Raises:
        ValueError: If a parameter is out of range or inconsistent.
    """

    name = NAME

    def __init__(
        self,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | None = None,
        compress_settings: dict[str, Any] | None = None,
        require_client_max_window_bits: bool = False,
    ) -> None:
        if server_max_window_bits is not None and not 8 <= server_max_window_bits <= 15:
            raise ValueError("server_max_window_bits must be between 8 and 15")
        if client_max_window_bits is not None and not 8 <= client_max_window_bits <= 15:
            raise ValueError("client_max_window_bits must be between 8 and 15")
        if require_client_max_window_bits and client_max_window_bits is None:
            raise ValueError("require_client_max_window_bits requires client_max_window_bits")
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_settings = _check_compress_settings(compress_settings)
        self.require_client_max_window_bits = require_client_max_window_bits

    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        """Accepts an offer, answering within its limits.

        Raises:
            NegotiationError: To decline this offer (the server then tries
                the client's next one, or goes without compression).
        """
        if any(other.name == NAME for other in accepted_extensions):
            raise NegotiationError(f"skipped duplicate {NAME}")
        server_nct, client_nct, server_bits, client_bits = _parse_params(params, is_server=True)

        response: list[ExtensionParameter] = []
        server_nct = server_nct or self.server_no_context_takeover
        if server_nct:
            response.append(("server_no_context_takeover", None))
        client_nct = client_nct or self.client_no_context_takeover
        if client_nct:
            response.append(("client_no_context_takeover", None))

        # Our window: at most what the client allows and what we configured.
        bits = 15
        if self.server_max_window_bits is not None:
            bits = self.server_max_window_bits
        if server_bits is not None:
            # 8 bits included: the server then sends uncompressed.
            bits = min(bits, server_bits)
        if server_bits is not None or self.server_max_window_bits is not None:
            response.append(("server_max_window_bits", str(bits)))

        # The client's window: we may limit it only if it supports that.
        remote_bits = 15
        if client_bits is None:
            if self.require_client_max_window_bits:
                raise NegotiationError(
                    f"required client_max_window_bits: the offer lacks it, this server limits clients to "
                    f"{self.client_max_window_bits}"
                )
        else:
            offered = 15 if client_bits is True else int(client_bits)
            remote_bits = offered
            if self.client_max_window_bits is not None:
                remote_bits = min(offered, self.client_max_window_bits)
                response.append(("client_max_window_bits", str(remote_bits)))
            elif client_bits is not True:
                # The client's own limit, echoed as websockets does: the
                # answer then states the window both sides will use.
                response.append(("client_max_window_bits", str(remote_bits)))

        return response, PerMessageDeflate(client_nct, server_nct, remote_bits, bits, self.compress_settings)


def enable_client_permessage_deflate(
    extensions: Sequence[ClientExtensionFactory] | None,
) -> list[ClientExtensionFactory]:
    """Adds permessage-deflate with memory-friendly settings, unless present."""
    result = list(extensions or [])
    if not any(factory.name == NAME for factory in result):
        result.append(ClientPerMessageDeflateFactory(compress_settings={"memLevel": 5}))
    return result


def enable_server_permessage_deflate(
    extensions: Sequence[ServerExtensionFactory] | None,
) -> list[ServerExtensionFactory]:
    """Adds permessage-deflate with 12-bit windows and memLevel 5, unless
    present: websockets' defaults, which make its zlib compressor take about
    30 KiB instead of 256 KiB. zlib-rs, under the Rust core, ignores
    memLevel for its 64 Ki-entry hash table: measured, a compressor kept
    for context takeover holds about 160 KiB and a decompressor about
    20 KiB (bench/deflate_memory.py)."""
    result = list(extensions or [])
    if not any(factory.name == NAME for factory in result):
        result.append(
            ServerPerMessageDeflateFactory(
                server_max_window_bits=12,
                client_max_window_bits=12,
                compress_settings={"memLevel": 5},
            )
        )
    return result


def _with_compression(compression: str | None, extensions: Sequence[Any] | None, enable: Any) -> Any:
    if compression == "deflate":
        return enable(extensions)
    if compression is not None:
        raise ValueError(f"unsupported compression: {compression}")
    return None if extensions is None else list(extensions)


def client_extensions(
    compression: str | None, extensions: Sequence[ClientExtensionFactory] | None
) -> list[ClientExtensionFactory] | None:
    """Applies a client's ``compression`` argument to its extensions:
    ``"deflate"`` adds permessage-deflate, :obj:`None` leaves them as given.

    Raises:
        ValueError: For any other value.
    """
    return _with_compression(compression, extensions, enable_client_permessage_deflate)  # type: ignore[no-any-return]


def server_extensions(
    compression: str | None, extensions: Sequence[ServerExtensionFactory] | None
) -> list[ServerExtensionFactory] | None:
    """Applies a server's ``compression`` argument; see
    :func:`client_extensions`."""
    return _with_compression(compression, extensions, enable_server_permessage_deflate)  # type: ignore[no-any-return]

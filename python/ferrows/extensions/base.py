"""Base classes of WebSocket extensions (RFC 6455 section 9).

An extension is negotiated in the opening handshake by a factory on each
side, then transforms data frames. Subclasses written for websockets keep
working: they implement the same methods with the same signatures.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..frames import Frame
from ..typing import ExtensionName, ExtensionParameter

__all__ = ["ClientExtensionFactory", "Extension", "ServerExtensionFactory"]


class Extension:
    """A negotiated extension, applied to frames in both directions."""

    #: Extension identifier, as registered with IANA.
    name: ExtensionName

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Transforms a received frame.

        Args:
            frame: Frame after unmasking.
            max_size: Largest payload the decoded frame may have.

        Raises:
            PayloadTooBig: If decoding would exceed ``max_size``.
        """
        raise NotImplementedError

    def encode(self, frame: Frame) -> Frame:
        """Transforms a frame before it is sent."""
        raise NotImplementedError


class ClientExtensionFactory:
    """Offers an extension in a client's request and accepts the answer."""

    #: Extension identifier.
    name: ExtensionName

    def get_request_params(self) -> Sequence[ExtensionParameter]:
        """Parameters to send in the ``Sec-WebSocket-Extensions`` offer."""
        raise NotImplementedError

    def process_response_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> Extension:
        """Builds the extension from the server's accepted parameters.

        Args:
            params: Parameters the server answered with.
            accepted_extensions: Extensions accepted so far in the response.

        Raises:
            NegotiationError: If the answer is not acceptable.
        """
        raise NotImplementedError


class ServerExtensionFactory:
    """Accepts or declines an extension offered by a client."""

    #: Extension identifier.
    name: ExtensionName

    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Accepts an offer, returning the response parameters and extension.

        Args:
            params: Parameters of one offer from the client.
            accepted_extensions: Extensions accepted so far.

        Raises:
            NegotiationError: To decline this offer.
        """
        raise NotImplementedError

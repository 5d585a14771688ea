"""Tests for ferrows.utils and ferrows.speedups, websockets' helper modules."""

from __future__ import annotations

import base64
import socket

import pytest
import websockets.utils as wu
from hypothesis import given
from hypothesis import strategies as st

from ferrows import speedups, utils


def test_keys() -> None:
    # RFC 6455 §1.3's example.
    assert utils.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert len(base64.b64decode(utils.generate_key())) == 16
    assert utils.generate_key() != utils.generate_key()


@given(st.binary(max_size=100), st.binary(min_size=4, max_size=4))
def test_apply_mask_as_websockets(data: bytes, mask: bytes) -> None:
    expected = wu.apply_mask(data, mask)
    assert utils.apply_mask(data, mask) == expected
    assert utils.apply_mask(bytearray(data), bytearray(mask)) == expected
    assert speedups.apply_mask(memoryview(data), mask) == expected
    # A non-contiguous view is copied first.
    reversed_view = memoryview(data)[::-1]
    assert utils.apply_mask(reversed_view, mask) == wu.apply_mask(bytes(reversed_view), mask)


def test_apply_mask_errors() -> None:
    with pytest.raises(TypeError):
        utils.apply_mask("text", b"abcd")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        utils.apply_mask(b"abcd", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mask must contain 4 bytes"):
        utils.apply_mask(b"abcd", b"123")


def test_get_socket_name() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        assert utils.get_socket_name(sock) == f"127.0.0.1:{sock.getsockname()[1]}"

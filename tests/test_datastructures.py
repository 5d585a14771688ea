"""Tests for ferrows.datastructures: Headers and MultipleValuesError."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

import pytest
import websockets.datastructures as wd
from hypothesis import given
from hypothesis import strategies as st

from ferrows.datastructures import (
    Headers,
    HeadersLike,
    MultipleValuesError,
    SupportsKeysAndGetItem,
)
from ferrows.exceptions import InvalidHeader, InvalidHeaderValue


def test_is_mutable_mapping() -> None:
    assert isinstance(Headers(), MutableMapping)


def test_constructor_forms() -> None:
    expected = [("Server", "x"), ("Upgrade", "websocket")]
    assert list(Headers(expected).raw_items()) == expected
    assert list(Headers(dict(expected)).raw_items()) == expected
    assert list(Headers(Server="x", Upgrade="websocket").raw_items()) == expected
    assert list(Headers([("Server", "x")], Upgrade="websocket").raw_items()) == expected
    assert list(Headers(Headers(expected)).raw_items()) == expected
    assert list(Headers().raw_items()) == []


class KeysAndGetItem:
    def keys(self) -> Iterable[str]:
        return ["A", "B"]

    def __getitem__(self, key: str) -> str:
        return key.lower()


def test_constructor_keys_and_getitem() -> None:
    obj: SupportsKeysAndGetItem = KeysAndGetItem()
    assert list(Headers(obj).raw_items()) == [("A", "a"), ("B", "b")]


def test_constructor_keeps_multiple_values() -> None:
    original = Headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    assert Headers(original).get_all("set-cookie") == ["a=1", "b=2"]


def test_getitem() -> None:
    headers = Headers([("Upgrade", "websocket")])
    assert headers["Upgrade"] == "websocket"
    assert headers["upgrade"] == "websocket"
    assert headers["UPGRADE"] == "websocket"


def test_getitem_missing() -> None:
    with pytest.raises(KeyError):
        Headers()["Upgrade"]


def test_getitem_multiple() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2")])
    with pytest.raises(MultipleValuesError) as info:
        headers["Set-Cookie"]
    assert isinstance(info.value, LookupError)
    assert not isinstance(info.value, KeyError)
    assert str(info.value) == "'Set-Cookie'" == str(wd.MultipleValuesError("Set-Cookie"))
    # get() only hides KeyError: the ambiguity is reported.
    with pytest.raises(MultipleValuesError):
        headers.get("set-cookie")


def test_multiple_values_error_str() -> None:
    assert str(MultipleValuesError()) == "" == str(wd.MultipleValuesError())
    assert str(MultipleValuesError("a", "b")) == "('a', 'b')" == str(wd.MultipleValuesError("a", "b"))


def test_get() -> None:
    headers = Headers(Origin="https://example.com")
    assert headers.get("origin") == "https://example.com"
    assert headers.get("Host") is None
    assert headers.get("Host", "default") == "default"


def test_setitem_appends() -> None:
    headers = Headers()
    headers["Set-Cookie"] = "a=1"
    headers["set-cookie"] = "b=2"
    assert headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
    assert list(headers.raw_items()) == [("Set-Cookie", "a=1"), ("set-cookie", "b=2")]
    assert len(headers) == 1


def test_setitem_converts_to_str() -> None:
    headers = Headers()
    headers["Content-Length"] = 12  # type: ignore[assignment]
    assert headers["content-length"] == "12"


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\r\nX-Injected: 1", "a\x00b", "\x01", "\x7f", "ā"])
def test_setitem_invalid_value(value: str) -> None:
    headers = Headers()
    with pytest.raises(InvalidHeaderValue) as info:
        headers["X-Header"] = value
    assert isinstance(info.value, InvalidHeader)
    assert info.value.name == "X-Header"
    assert info.value.value == value
    assert list(headers.raw_items()) == []
    with pytest.raises(InvalidHeaderValue):
        Headers({"X-Header": value})


@pytest.mark.parametrize("value", ["", "a b", "tab\there", "caf\xe9", "!~"])
def test_setitem_valid_value(value: str) -> None:
    headers = Headers()
    headers["X-Header"] = value
    assert headers["x-header"] == value


@pytest.mark.parametrize("name", ["", "X Header", "X-Header:", "X\r\nY", "é"])
def test_setitem_invalid_name(name: str) -> None:
    with pytest.raises(ValueError, match="invalid header name"):
        Headers()[name] = "value"


def test_set_insecure_skips_checks() -> None:
    headers = Headers()
    headers.set_insecure("X-Header", "a\x01b")
    assert headers["x-header"] == "a\x01b"


def test_delitem_removes_all_values() -> None:
    headers = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    del headers["A"]
    assert "a" not in headers
    assert list(headers.raw_items()) == [("B", "2")]
    with pytest.raises(KeyError):
        del headers["A"]


def test_contains() -> None:
    headers = Headers(Upgrade="websocket")
    assert "upgrade" in headers
    assert "UPGRADE" in headers
    assert "Connection" not in headers
    assert 42 not in headers  # type: ignore[comparison-overlap]


def test_iteration_and_len() -> None:
    headers = Headers([("Host", "a"), ("Set-Cookie", "1"), ("set-cookie", "2")])
    assert list(headers) == ["host", "set-cookie"]
    assert len(headers) == 2
    assert list(headers.keys()) == ["host", "set-cookie"]


def test_get_all() -> None:
    headers = Headers([("A", "1"), ("a", "2")])
    assert headers.get_all("A") == ["1", "2"]
    assert headers.get_all("B") == []
    # The list is a copy.
    headers.get_all("A").append("3")
    assert headers.get_all("a") == ["1", "2"]


def test_update() -> None:
    headers = Headers(A="1")
    headers.update({"a": "2"})
    headers.update([("B", "3")])
    headers.update(Headers([("C", "4"), ("C", "5")]), D="6")
    assert list(headers.raw_items()) == [
        ("A", "1"),
        ("a", "2"),
        ("B", "3"),
        ("C", "4"),
        ("C", "5"),
        ("D", "6"),
    ]


def test_at_most_one_positional_argument() -> None:
    # Like dict and websockets' Headers (a MutableMapping): a second
    # positional argument is a mistake, not more headers.
    with pytest.raises(TypeError, match=r"^update expected at most 1 positional argument, got 2$"):
        Headers(Headers(connection="Upgrade"), Headers(server="websockets"))
    headers = Headers()
    with pytest.raises(TypeError):
        headers.update({"a": "1"}, {"b": "2"})
    assert len(headers) == 0


def test_copy_is_independent() -> None:
    headers = Headers([("A", "1")])
    copy = headers.copy()
    assert copy == headers and copy is not headers
    copy["A"] = "2"
    copy["B"] = "3"
    assert headers.get_all("a") == ["1"]
    assert list(headers.raw_items()) == [("A", "1")]


def test_clear() -> None:
    headers = Headers([("A", "1")])
    headers.clear()
    assert len(headers) == 0
    assert list(headers.raw_items()) == []
    assert str(headers) == "\r\n"


def test_pop_and_setdefault() -> None:
    headers = Headers(A="1")
    assert headers.pop("a") == "1"
    assert "a" not in headers
    assert headers.setdefault("B", "2") == "2"
    assert headers.setdefault("b", "3") == "2"


def test_eq() -> None:
    assert Headers(A="1") == Headers(a="1")
    assert Headers([("A", "1"), ("B", "2")]) == Headers([("B", "2"), ("A", "1")])
    assert Headers([("A", "1"), ("A", "2")]) != Headers([("A", "2"), ("A", "1")])
    assert Headers(A="1") != Headers(A="2")
    # Like websockets: a Headers never equals another kind of mapping.
    assert Headers(A="1") != {"a": "1"}
    assert (wd.Headers(A="1") == {"a": "1"}) is False


def test_not_hashable() -> None:
    with pytest.raises(TypeError):
        hash(Headers())


def test_str_and_serialize() -> None:
    headers = Headers([("Host", "example.com"), ("Upgrade", "websocket"), ("X-Name", "caf\xe9")])
    assert str(headers) == "Host: example.com\r\nUpgrade: websocket\r\nX-Name: caf\xe9\r\n\r\n"
    assert headers.serialize() == b"Host: example.com\r\nUpgrade: websocket\r\nX-Name: caf\xe9\r\n\r\n"
    w_headers = wd.Headers([("Host", "example.com"), ("Upgrade", "websocket"), ("X-Name", "caf\xe9")])
    assert str(headers) == str(w_headers)
    assert headers.serialize() == w_headers.serialize()


def test_output_preserves_case_and_order() -> None:
    headers = Headers()
    headers["sec-WebSocket-KEY"] = "k"
    headers["Host"] = "h"
    headers["SEC-websocket-key"] = "l"
    assert str(headers) == "sec-WebSocket-KEY: k\r\nHost: h\r\nSEC-websocket-key: l\r\n\r\n"


def test_repr() -> None:
    headers = Headers([("A", "1")])
    assert repr(headers) == "Headers([('A', '1')])" == repr(wd.Headers([("A", "1")]))


def test_headers_like_alias() -> None:
    value: HeadersLike = {"A": "1"}
    assert isinstance(Headers(value), Headers)


# Property tests

names = st.from_regex(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,20}", fullmatch=True)
values = st.from_regex(r"[\t\x20-\x7e\x80-\xff]{0,40}", fullmatch=True)
pairs = st.lists(st.tuples(names, values), max_size=20)


@given(pairs)
def test_round_trip_through_pairs(items: list[tuple[str, str]]) -> None:
    headers = Headers(items)
    assert list(headers.raw_items()) == items
    assert Headers(headers.raw_items()) == headers
    assert Headers(headers) == headers
    assert headers.copy() == headers
    assert headers.serialize() == "".join(f"{n}: {v}\r\n" for n, v in items).encode("latin-1") + b"\r\n"
    assert headers.serialize() == wd.Headers(items).serialize()


@given(pairs)
def test_lookups_match_model(items: list[tuple[str, str]]) -> None:
    headers = Headers(items)
    model: dict[str, list[str]] = {}
    for name, value in items:
        model.setdefault(name.lower(), []).append(value)
    assert list(headers) == list(model)
    for name, expected in model.items():
        assert headers.get_all(name.upper()) == expected
        if len(expected) == 1:
            assert headers[name] == expected[0]
        else:
            with pytest.raises(MultipleValuesError):
                headers[name]


@given(pairs, names)
def test_delete_matches_model(items: list[tuple[str, str]], victim: str) -> None:
    headers = Headers(items)
    if victim.lower() in headers:
        del headers[victim]
    remaining = [(n, v) for n, v in items if n.lower() != victim.lower()]
    assert list(headers.raw_items()) == remaining
    assert headers == Headers(remaining)

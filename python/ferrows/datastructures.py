"""HTTP headers as a case-insensitive multi-dict.

HTTP header names are case-insensitive (RFC 9110 §5.1) and a name may occur
several times (§5.3), so neither a :class:`dict` nor a list of pairs fits
alone. :class:`Headers` keeps both views: the pairs in their original order
and case, for serialising, and the values grouped by lower-case name, for
lookups.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Protocol

from .exceptions import InvalidHeaderValue

__all__ = [
    "Headers",
    "HeadersLike",
    "MultipleValuesError",
]


class MultipleValuesError(LookupError):
    """``headers[name]`` was used for a header that occurs more than once.

    Use :meth:`Headers.get_all` to read every value. It derives from
    :exc:`LookupError` rather than :exc:`KeyError` so that ``headers.get()``
    does not silently hide the ambiguity.
    """

    def __str__(self) -> str:
        # Show the header name the way KeyError shows a missing key.
        if len(self.args) == 1:
            return repr(self.args[0])
        return super().__str__()


# RFC 9110 §5.5: field-value = *( HTAB / SP / VCHAR / obs-text ). Anything
# else, above all CR, LF and NUL, could split a header in two on the wire.
_VALID_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")

# RFC 9110 §5.1 and §5.6.2: a field name is a token.
_VALID_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class Headers(MutableMapping[str, str]):
    """HTTP headers: case-insensitive names, possibly repeated.

    While no name repeats, it behaves like a :class:`dict` whose keys
    ignore case. Repeated names follow these rules:

    - ``headers[name]`` returns the value, raises :exc:`KeyError` if there
      is none and :exc:`MultipleValuesError` if there are several;
    - ``headers[name] = value`` **adds** a value; it never replaces one;
    - ``del headers[name]`` removes every value of that name;
    - :meth:`get_all` and :meth:`raw_items` give access to every value.

    Iteration, ``len()`` and ``in`` see each distinct name once, in lower
    case. Serialising keeps each name as it was given, and the original
    order.

    Values are :class:`str`. Non-ASCII bytes, which HTTP tolerates without
    defining an encoding, are carried as ISO-8859-1 characters, which maps
    bytes to characters one to one and back.

    Args:
        *args: Initial headers: another :class:`Headers`, a mapping, an
            object with ``keys()`` and ``__getitem__``, or an iterable of
            ``(name, value)`` pairs.
        **kwargs: More headers, given as keywords.

    Raises:
        InvalidHeaderValue: If a value contains a character that HTTP
            forbids in field values, such as CR, LF or NUL.
        ValueError: If a name isn't a valid HTTP token.
    """

    __slots__ = ("_index", "_packed", "_pairs", "_source")

    def __init__(self, *args: HeadersLike, **kwargs: str) -> None:
        # Every (name, value) pair as given, in order.
        self._pairs: list[tuple[str, str]] | None = []
        # Lower-case name -> its values, in order.
        self._index: dict[str, list[str]] | None = {}
        # Or, instead of both, every name and value in one string: see _pack().
        self._packed: str | None = None
        # The packed string these headers were made from, while they are
        # unchanged: see _from_packed().
        self._source: str | None = None
        self.update(*args, **kwargs)

    # Storage

    @property
    def _items(self) -> list[tuple[str, str]]:
        if self._pairs is None:
            self._unpack()
        return self._pairs  # type: ignore[return-value]

    @_items.setter
    def _items(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs, self._packed, self._source = pairs, None, None

    @property
    def _values(self) -> dict[str, list[str]]:
        if self._index is None:
            self._unpack()
        return self._index  # type: ignore[return-value]

    @_values.setter
    def _values(self, index: dict[str, list[str]]) -> None:
        self._index, self._packed, self._source = index, None, None

    @classmethod
    def _from_packed(cls, packed: str) -> Headers:
        """Headers in their packed form (see :meth:`_pack`), as the core
        returns those of a parsed request or of the 101 it built: nothing is
        split or indexed until the headers are read.

        The core checked every name and value against the HTTP grammar.
        While the headers stay unchanged, :attr:`_source` is ``packed``
        itself, so that what was computed from it (the 101's bytes on the
        wire, the handshake checks) is known to still hold.
        """
        headers = cls.__new__(cls)
        headers._pairs = headers._index = None
        headers._packed = headers._source = packed
        return headers

    def _pack(self) -> None:
        """Keep the headers in one string until they are used again.

        The headers of a handshake are read while it happens and seldom
        after, but live as long as the connection: a list of pairs, the
        lower-case index and their strings cost about 2 KiB per connection,
        their packed form a fifth of that. Any later use unpacks them, at
        the cost of a split.
        """
        if self._source is not None:
            # Unchanged since made from this string: no need to join again.
            self._packed = self._source
            self._pairs = self._index = None
            return
        pairs = self._pairs
        if pairs is None or not pairs:
            return
        # NUL cannot be in a valid name or value; if one slipped in through
        # set_insecure(), the count below catches it and nothing is packed.
        packed = "\0".join([part for pair in pairs for part in pair])
        if packed.count("\0") != 2 * len(pairs) - 1:
            return
        self._packed = self._source = packed
        self._pairs = self._index = None

    def _unpack(self) -> None:
        parts = (self._packed or "").split("\0")
        pairs = list(zip(parts[::2], parts[1::2], strict=True)) if self._packed else []
        index: dict[str, list[str]] = {}
        for name, value in pairs:
            index.setdefault(name.lower(), []).append(value)
        self._pairs, self._index, self._packed = pairs, index, None

    # Rendering

    def __str__(self) -> str:
        """Render the header block of an HTTP message, empty line included."""
        return "".join(f"{name}: {value}\r\n" for name, value in self._items) + "\r\n"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"

    def serialize(self) -> bytes:
        """Encode the header block as it is sent on the wire.

        ISO-8859-1 is the inverse of how received headers are decoded, so
        received headers are sent back byte for byte.
        """
        return str(self).encode("iso-8859-1")

    def copy(self) -> Headers:
        """Return an independent copy: changing one never changes the other."""
        other = type(self)()
        other._items = list(self._items)
        other._values = {name: list(values) for name, values in self._values.items()}
        return other

    # Mapping

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, key: str) -> str:
        values = self._values[key.lower()]
        if len(values) > 1:
            raise MultipleValuesError(key)
        return values[0]

    def __setitem__(self, key: str, value: str) -> None:
        # Values often come from user input (a cookie, a token...), so check
        # them against header injection. Accept an int or similar from
        # callers who write ``headers["Content-Length"] = len(body)``.
        value = str(value)
        if not _VALID_VALUE.fullmatch(value):
            raise InvalidHeaderValue(key, value)
        if not _VALID_NAME.fullmatch(key):
            raise ValueError(f"invalid header name: {key!r}")
        self.set_insecure(key, value)

    def __delitem__(self, key: str) -> None:
        lower = key.lower()
        del self._values[lower]
        # Linear, but headers are few and deletions rare (this also forgets
        # the source string: the headers changed).
        self._items = [(name, value) for name, value in self._items if name.lower() != lower]

    def __eq__(self, other: object) -> bool:
        # Like websockets: equal when the same names have the same values in
        # the same order per name; the case of names and the interleaving of
        # different names don't matter. Other mappings are never equal.
        if not isinstance(other, Headers):
            return NotImplemented
        return self._values == other._values

    def clear(self) -> None:
        """Remove every header."""
        self._items = []
        self._values = {}

    def update(self, *args: HeadersLike, **kwargs: str) -> None:
        """Add headers, keeping the values already present.

        Since ``headers[name] = value`` appends, so does this method: a name
        given here and already present ends up with several values.

        Args:
            *args: At most one: headers to add, in any form the constructor
                accepts. A :class:`Headers` contributes all its values.
            **kwargs: More headers, given as keywords.

        Raises:
            TypeError: If more than one positional argument is given, as
                :meth:`dict.update` and websockets' ``Headers`` refuse it.
            InvalidHeaderValue: If a value contains a forbidden character.
            ValueError: If a name isn't a valid HTTP token.
        """
        if len(args) > 1:
            raise TypeError(f"update expected at most 1 positional argument, got {len(args)}")
        for arg in args:
            pairs: Iterable[tuple[str, str]]
            if isinstance(arg, Headers):
                pairs = arg.raw_items()
            elif isinstance(arg, Mapping) or hasattr(arg, "keys"):
                mapping: SupportsKeysAndGetItem = arg  # type: ignore[assignment]
                # Such objects need not be iterable: only keys() is promised.
                pairs = [(key, mapping[key]) for key in mapping.keys()]  # noqa: SIM118
            else:
                pairs = arg
            for name, value in pairs:
                self[name] = value
        for name, value in kwargs.items():
            self[name] = value

    # Multiple values

    def get_all(self, key: str) -> list[str]:
        """Return every value of a header, oldest first.

        Args:
            key: Header name, in any case.

        Returns:
            A new list, empty when the header is absent.
        """
        return list(self._values.get(key.lower(), ()))

    def raw_items(self) -> Iterator[tuple[str, str]]:
        """Iterate over every ``(name, value)`` pair, in order and original case."""
        return iter(self._items)

    @classmethod
    def _trusted(cls, pairs: list[tuple[str, str]]) -> Headers:
        """Headers that take ownership of ``pairs``, already checked against
        the HTTP grammar: the core's parser validates every name and value it
        returns, and a handshake response is built from valid parts."""
        headers = cls()
        values = headers._index = {}
        for name, value in pairs:
            values.setdefault(name.lower(), []).append(value)
        headers._pairs = pairs
        return headers

    def set_insecure(self, key: str, value: str) -> None:
        """Add a header without validating it.

        For parsers that have already checked the name and value against
        the HTTP grammar; checking twice would only cost time.

        Args:
            key: Header name.
            value: Header value.
        """
        self._values.setdefault(key.lower(), []).append(value)
        self._items.append((key, value))
        self._source = None


class SupportsKeysAndGetItem(Protocol):
    """Any object that :class:`Headers` can read like a mapping.

    Like :class:`dict`, :class:`Headers` only needs ``keys()`` and
    ``__getitem__`` from such an argument.
    """

    def keys(self) -> Iterable[str]: ...

    def __getitem__(self, key: str) -> str: ...


HeadersLike = Headers | Mapping[str, str] | Iterable[tuple[str, str]] | SupportsKeysAndGetItem
"""What functions taking headers accept: see :class:`Headers`' constructor."""

"""Events of a :class:`~ferrows.protocol.Protocol` in ``assemble`` mode.

Besides whole messages, which are plain :class:`str` and :class:`bytes`,
:meth:`~ferrows.protocol.Protocol.events_received` then returns these small
typed objects, one class per kind, as wsproto does, instead of frames whose
opcode every caller has to compare:

* :class:`Fragment` ``(data, fin)``: with ``fragments=True``, one frame of
  a fragmented message, as it arrives: its text decoded as far as it goes
  (:class:`str`) or its :class:`bytes`; ``fin`` on the last one.
* :class:`PingReceived` ``(data)``: a ping; the pong is already queued.
* :class:`PongReceived` ``(data)``: a pong.
* :class:`CloseReceived` ``(data)``: a close frame, with its raw payload;
  the reply is already queued, and
  :attr:`~ferrows.protocol.Protocol.close_rcvd` holds the code and reason.
* :class:`ProtocolViolation` ``(code)``: the peer broke the protocol;
  :attr:`~ferrows.protocol.Protocol.parser_exc` says how, and
  :meth:`~ferrows.protocol.Protocol.fail_pending` sends the close frame with
  ``code``.

They are built by the Rust core, so that reading them costs no Python code.
"""

from __future__ import annotations

from ._core import CloseReceived, Fragment, PingReceived, PongReceived, ProtocolViolation

__all__ = ["CloseReceived", "Fragment", "PingReceived", "PongReceived", "ProtocolViolation"]

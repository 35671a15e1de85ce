"""Mail sources: everything that yields :class:`RawMessage` records.

A source is anything with a ``name`` and an ``iter_messages()``; the IMAP source and the local
file sources implement the same protocol, so the rest of the pipeline never knows which it got.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from ..records import RawMessage


@runtime_checkable
class MessageSource(Protocol):
    @property
    def name(self) -> str:
        """Where the messages come from, e.g. ``mbox:/path`` or ``imap:shop/INBOX``."""
        ...

    def iter_messages(self) -> Iterator[RawMessage]:
        """Yield each message once, in source order; a per-message read error is yielded as
        a RawMessage with empty ``data`` so the caller can report it and go on."""
        ...

"""The commonest request head, read in one compiled step (layer 3, no I/O).

Nearly every connection a Socket.IO server accepts begins with one small
request head that arrives whole in the first read: the WebSocket handshake
(``GET /socket.io/?EIO=4&transport=websocket`` with ``Upgrade``) or a polling
``GET``. The built-in server's general reader (``httptools``) reports such a
head in a dozen callbacks, each a Python call; :func:`head_scanner` returns, when
``socketwire._speedups`` was built, a function that reads it in one call and
gives the same result.

The scanner accepts only a strict subset of RFC 9112 and returns None for
anything else, in which case the caller hands the same bytes to ``httptools``,
which then decides everything, errors included. Accepted:

* the request line ``GET <target> HTTP/1.1`` CRLF, with single spaces and an
  origin-form target (``/`` then RFC 3986's unreserved and reserved characters
  and ``%``, without ``#``);
* header lines ``name:`` optional whitespace, a value, CRLF: a token name of at
  most 64 characters, a non-empty value of visible ASCII characters with inner
  spaces and tabs, nothing after it before the CRLF (no obs-fold, no obs-text,
  no bare CR or LF);
* at most ``max_headers`` lines, the whole head (up to the empty line) within
  ``max_head_size`` bytes and within ``data``;
* no header that concerns a body or its framing (``Content-Length``,
  ``Transfer-Encoding``, ``Expect``, ``Proxy-Connection``) and no name given
  twice (``add_header`` merges repeats; the general path does that).

The result is ``(method, target, headers, end, keep_alive, upgrade)``: the
method (always ``"GET"``), the target, the headers as ``add_header`` builds them
(names lower-cased and interned, the values of ``SHARED_HEADER_VALUES`` interned
when short), the offset just past the head, whether the connection stays open
after the answer (no ``close`` token in ``Connection``) and whether the request
asks for an upgrade (an ``Upgrade`` header and an ``upgrade`` token in
``Connection``), exactly as ``httptools``' ``should_keep_alive`` and
``should_upgrade`` answer. ``tests/http/test_head.py`` holds the two readers to
that, input by input.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TypeAlias

from socketwire.http.request import SHARED_HEADER_VALUES, SHARED_VALUE_MAX_LEN

__all__ = ["Head", "HeadScanner", "head_scanner"]

#: ``(method, target, headers, end, keep_alive, upgrade)``, see the module's docstring.
Head: TypeAlias = tuple[str, str, dict[str, str], int, bool, bool]
#: A scanner: the head at the start of ``data``, or None.
HeadScanner: TypeAlias = Callable[[bytes], Head | None]


def head_scanner(max_head_size: int, max_headers: int) -> HeadScanner | None:
    """The compiled scanner with these limits, or None when ``socketwire._speedups``
    was not built or ``SOCKETWIRE_NO_SPEEDUPS`` is set (every head then goes to
    the general reader)."""
    if os.environ.get("SOCKETWIRE_NO_SPEEDUPS"):
        return None
    try:
        from socketwire._speedups import scan_head
    except ImportError:
        return None
    return functools.partial(
        scan_head, SHARED_HEADER_VALUES, SHARED_VALUE_MAX_LEN, max_head_size, max_headers
    )

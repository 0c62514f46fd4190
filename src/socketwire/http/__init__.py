"""The HTTP layer shared by the two front doors (layer 3).

The built-in server (:mod:`socketwire.serve`) and the ASGI app
(:mod:`socketwire.asgi`) read requests in different ways, but hand the Engine.IO
runtime the same kind of request and answer it by the same rules:

* :mod:`socketwire.http.request`: the request (header names, repeated headers,
  the lazily parsed query, body limits, answer-once and abort bookkeeping, the
  500 fallback);
* :mod:`socketwire.http.response`: what goes back (status lines, response
  headers with Content-Length, for HTTP/1.1 and for ASGI).
"""

from __future__ import annotations

__all__: list[str] = []

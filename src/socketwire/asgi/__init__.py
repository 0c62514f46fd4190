"""The ASGI front door (layer 3).

``ASGIApp`` serves a ``socketwire.Server`` from any ASGI 3 server (uvicorn,
granian, hypercorn...) instead of the built-in one of ``socketwire.serve``::

    sio = socketwire.Server()
    app = socketwire.asgi.ASGIApp(sio, other_asgi_app=my_web_app)
    # uvicorn module:app

HTTP requests and WebSocket connections become the ports of
``socketwire.engine.ports`` (``socketwire.asgi.request``,
``socketwire.asgi.websocket``), kept by the rules shared with the built-in server
(``socketwire.http``); the Engine.IO runtime answers them exactly as it answers
the built-in server. The ASGI server runs the WebSocket protocol and frames the
messages itself, so the WebSocket port hands it the packets of each message,
which one writer task per connection passes to the ASGI ``send`` in order.
"""

from __future__ import annotations

from socketwire.asgi.app import ASGIApp
from socketwire.asgi.types import ASGIApplication, Message, Receive, Scope, Send
from socketwire.asgi.websocket import HIGH_WATER, LOW_WATER

__all__ = [
    "HIGH_WATER",
    "LOW_WATER",
    "ASGIApp",
    "ASGIApplication",
    "Message",
    "Receive",
    "Scope",
    "Send",
]

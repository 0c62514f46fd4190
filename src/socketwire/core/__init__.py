"""The sans-I/O protocol core (layer 0): no asyncio, no sockets, no clock reads.

Engine.IO packets and sessions (``engineio``), the Socket.IO codecs (``socketio``),
WebSocket framing (``websocket``), the cluster wire formats (``cluster``), the
notepack.io value codec (``notepack``) and deadline queues (``timers``).  Every
layer above drives these; none of them imports anything above.
"""

__all__: list[str] = []

"""Configuration: the server's options are keyword arguments.

They are Node's options in snake_case, durations in seconds:

- ``path``: where the server answers (the client must use the same ``path``);
- ``ping_interval`` / ``ping_timeout``: the heartbeat; the client learns both in
  the handshake and drops the connection if the server stays silent too long;
- ``max_http_buffer_size``: the largest message (or polling request body) a
  client may send; a bigger one closes the connection;
- ``transports``: the transports allowed (``"polling"``, ``"websocket"``);
- ``cors``: the CORS policy for browsers on other origins.

The client must agree on the path::

    const socket = io("https://api.example.com", { path: "/realtime" });
    socket.on("config", (config) => console.log(config));

On connection the server tells the client the settings it runs with.
"""

from __future__ import annotations

from typing import Any

import socketwire

DEFAULTS: dict[str, Any] = {
    "path": "/realtime",
    "ping_interval": 10.0,
    "ping_timeout": 5.0,
    "max_http_buffer_size": 100_000,
    "transports": ["polling", "websocket"],
    "cors": {"origin": "https://app.example.com", "credentials": True},
}


def create_server(**options: Any) -> socketwire.Server:
    config = {**DEFAULTS, **options}
    sio = socketwire.Server(**config)

    @sio.on("connection")
    def on_connection(socket: socketwire.Socket) -> None:
        socket.emit(
            "config",
            {
                "path": sio.path,
                "pingInterval": sio.engine.ping_interval,
                "pingTimeout": sio.engine.ping_timeout,
                "maxHttpBufferSize": sio.engine.max_http_buffer_size,
                "transports": list(sio.engine.transports),
                "transport": socket.transport,
            },
        )

    @sio.on("size")
    def size(socket: socketwire.Socket, payload: str) -> int:
        return len(payload)

    return sio


if __name__ == "__main__":
    create_server().run(3000)

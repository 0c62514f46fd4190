"""Engine.IO v4 without I/O (layer 0): packets, polling payloads, the server session."""

__all__: list[str] = []

"""Wire formats spoken between the servers of a cluster (layer 0: sans-I/O)."""

__all__: list[str] = []

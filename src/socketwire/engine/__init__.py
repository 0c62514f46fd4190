"""The asyncio Engine.IO v4 runtime (layer 1), usable on its own like Node's ``engine.io`` package."""

__all__: list[str] = []

from collections.abc import Callable
from typing import Any

def apply_mask(
    data: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview, /
) -> bytes: ...
def scan_events(
    loads: Callable[[bytes], Any],
    reserved: frozenset[str],
    data: bytes,
    max_message_size: int,
    validate_utf8: bool = True,
    /,
) -> list[Any] | None: ...
def scan_packets(
    loads: Callable[[bytes], Any],
    reserved: frozenset[str],
    data: bytes,
    max_message_size: int,
    validate_utf8: bool = True,
    /,
) -> list[Any] | None: ...
def ack_frame(ack_id: int, body: bytes, /) -> bytes | None: ...
def message_frame(text: bytes, mask: bytes, /) -> bytes: ...
def scan_head(
    shared_values: frozenset[str],
    shared_max_len: int,
    max_head_size: int,
    max_headers: int,
    data: bytes,
    /,
) -> tuple[str, str, dict[str, str], int, bool, bool] | None: ...

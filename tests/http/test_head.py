"""``socketwire.http.head``: the compiled head scanner against ``httptools``, input by input.

Whatever the scanner accepts, ``httptools`` (the general reader) must accept
too and read the same way: the method, the target, the headers as
``add_header`` builds them, where the head ends, ``should_keep_alive`` and
``should_upgrade``. What the scanner refuses (None) goes to ``httptools``
anyway, so refusing is always safe; the tests also check that the heads real
clients send are accepted, or the fast path would never run.
"""

from __future__ import annotations

import random
import sys

import httptools
import pytest

from socketwire.http.head import Head, HeadScanner, head_scanner
from socketwire.http.request import SHARED_HEADER_VALUES, SHARED_VALUE_MAX_LEN, add_header

_scanner = head_scanner(64 * 1024, 100)
pytestmark = pytest.mark.skipif(_scanner is None, reason="socketwire._speedups not built")


def scan(data: bytes) -> Head | None:
    assert _scanner is not None
    return _scanner(data)


class _Reader:
    """What the built-in server's httptools callbacks collect."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.complete = False
        self.keep_alive = self.upgrade = False
        self.parser = httptools.HttpRequestParser(self)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        add_header(self.headers, name, value)

    def on_message_complete(self) -> None:
        # Asked here, as the server does: llhttp forgets a message's flags
        # once its callback has returned.
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        self.upgrade = self.parser.should_upgrade()


def general(data: bytes) -> Head | None:
    """The general reader's view of the head at the start of ``data``, in the
    scanner's form, or None when it refuses it or the request is not complete
    (and body-less) at the end of its head."""
    reader = _Reader()
    parser = reader.parser
    end = len(data)
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade as exc:
        end = exc.args[0]
    except httptools.HttpParserError:
        return None
    if not reader.complete:
        return None
    return (
        parser.get_method().decode("ascii"),
        reader.url.decode("latin-1"),
        reader.headers,
        end,
        reader.keep_alive,
        reader.upgrade,
    )


def agree(data: bytes) -> Head | None:
    """Check the scanner against httptools on ``data``; the scanner's result."""
    got = scan(data)
    if got is None:
        return None
    end = got[3]
    # The head alone, so that httptools stops where the scanner says it ends
    # (bytes after it belong to the next request or the WebSocket).
    expected = general(data[:end])
    assert expected is not None, data
    if not got[5]:
        assert expected[3] == end, data
    assert got == expected, data
    # Names, and the shared values, are interned: the same objects as add_header's.
    for name, value in got[2].items():
        other = next(n for n in expected[2] if n == name)
        assert name is other
        if name in SHARED_HEADER_VALUES and len(value) < SHARED_VALUE_MAX_LEN:
            assert value is expected[2][name]
    return got


WEBSOCKET = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n"
    b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)
BROWSER = (
    b"GET /socket.io/?EIO=4&transport=websocket&sid=AbC-dEf_0123456789xyz HTTP/1.1\r\n"
    b"Host: example.com\r\nConnection: Upgrade\r\nPragma: no-cache\r\n"
    b"Cache-Control: no-cache\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    b" Chrome/131.0.0.0 Safari/537.36\r\n"
    b"Upgrade: websocket\r\nOrigin: https://example.com\r\nSec-WebSocket-Version: 13\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n"
    b"Cookie: io=abc; theme=dark\r\n"
    b"Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)
POLLING = (
    b"GET /socket.io/?EIO=4&transport=polling&t=PQx3a1b HTTP/1.1\r\nHost: localhost:3000\r\n"
    b"Accept: */*\r\nConnection: keep-alive\r\n\r\n"
)
CURL = b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
MINIMAL = b"GET / HTTP/1.1\r\n\r\n"
CORPUS = [WEBSOCKET, BROWSER, POLLING, CURL, MINIMAL]


@pytest.mark.parametrize("data", CORPUS)
def test_the_heads_clients_send_are_read_as_httptools_reads_them(data: bytes) -> None:
    got = agree(data)
    assert got is not None
    assert got[3] == len(data)


def test_a_websocket_handshake() -> None:
    got = agree(WEBSOCKET + b"\x81\x82abcd")
    assert got is not None
    method, target, headers, end, keep_alive, upgrade = got
    assert (method, target) == ("GET", "/socket.io/?EIO=4&transport=websocket")
    assert headers["sec-websocket-key"] == "dGhlIHNhbXBsZSBub25jZQ=="
    assert headers["connection"] == "Upgrade" and headers["upgrade"] is sys.intern("websocket")
    assert end == len(WEBSOCKET) and keep_alive and upgrade


@pytest.mark.parametrize(
    ("connection", "keep_alive", "upgrade"),
    [
        (b"Upgrade", True, True),
        (b"upgrade", True, True),
        (b"keep-alive, Upgrade", True, True),
        (b"Upgrade,keep-alive", True, True),
        (b"close", False, False),
        (b"CLOSE", False, False),
        (b"Upgrade, close", False, True),
        (b"keep-alive", True, False),
        (b"closed", True, False),
        (b"upgraded", True, False),
        (b"foo, upgrade", True, True),
        (b"foo upgrade", True, False),
        (b"close foo", True, False),
        (b", ,upgrade", True, True),
        (b"upgrade ,\tclose", False, True),
    ],
)
def test_connection_tokens_decide_keep_alive_and_upgrade(
    connection: bytes, keep_alive: bool, upgrade: bool
) -> None:
    data = b"GET /x HTTP/1.1\r\nUpgrade: websocket\r\nConnection: " + connection + b"\r\n\r\n"
    got = agree(data)
    assert got is not None
    assert (got[4], got[5]) == (keep_alive, upgrade)


def test_no_upgrade_without_the_upgrade_header() -> None:
    got = agree(b"GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n")
    assert got is not None and got[5] is False


@pytest.mark.parametrize(
    "data",
    [
        # Not the request line read here.
        b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        b"HEAD / HTTP/1.1\r\n\r\n",
        b"get / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET http://a/ HTTP/1.1\r\n\r\n",
        b"GET * HTTP/1.1\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET /  HTTP/1.1\r\n\r\n",
        b"GET /a#b HTTP/1.1\r\n\r\n",
        b"GET /a\xff HTTP/1.1\r\n\r\n",
        b"GET /a{b} HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\n\r\n",
        # Incomplete.
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r",
        b"GET / HTTP/1.1\r\nHost: a",
        # Header lines outside the strict grammar.
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost:a \r\n\r\n",
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: \r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\n: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nX(y): a\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X" * 65 + b": a\r\n\r\n",
        # A body, its framing, an expectation: the general reader's.
        b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        b"GET / HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        b"GET / HTTP/1.1\r\nProxy-Connection: close\r\n\r\n",
        # A repeated name (merged by add_header).
        b"GET / HTTP/1.1\r\nCookie: a=1\r\ncookie: b=2\r\n\r\n",
    ],
)
def test_what_the_scanner_leaves_to_httptools(data: bytes) -> None:
    assert scan(data) is None


def test_the_limits_are_kept() -> None:
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n"
    assert agree(many) is not None
    assert scan(many.replace(b"\r\n\r\n", b"\r\nX-100: v\r\n\r\n")) is None
    assert _scanner is not None
    small = head_scanner(len(CURL), 100)
    assert small is not None
    assert small(CURL) is not None and small(CURL + b"more") is not None
    smaller = head_scanner(len(CURL) - 1, 100)
    assert smaller is not None and smaller(CURL) is None


def test_pipelined_bytes_are_not_read() -> None:
    got = agree(CURL + POLLING)
    assert got is not None and got[3] == len(CURL)


def test_arguments_are_checked() -> None:
    from socketwire._speedups import scan_head

    with pytest.raises(TypeError):
        scan_head(frozenset(), 256, 65536, 100, bytearray(CURL))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scan_head(set(), 256, 65536, 100, CURL)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scan_head(frozenset(), 256, 65536, 100)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        scan_head(frozenset(), "256", 65536, 100, CURL)  # type: ignore[arg-type]


# -- every byte everywhere ------------------------------------------------------------------

_BYTES = [bytes([b]) for b in range(256)]


def _checked(scanner: HeadScanner, data: bytes) -> int:
    """1 when the scanner read ``data`` (and agreed with httptools), else 0."""
    if scanner(data) is None:
        return 0
    agree(data)
    return 1


def test_every_byte_at_every_position_of_a_head() -> None:
    # Each byte of a head replaced by each of the 256 values, and each inserted
    # before it; every result the scanner gives must be httptools' own.
    assert _scanner is not None
    base = b"GET /a?b=c HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n"
    read = 0
    for i in range(len(base)):
        for b in _BYTES:
            read += _checked(_scanner, base[:i] + b + base[i + 1 :])
            read += _checked(_scanner, base[:i] + b + base[i:])
    # About a fifth of the 33,280 variants are still strict heads (7,037).
    assert read > 5000


def test_truncations_and_random_mutations_of_real_heads() -> None:
    assert _scanner is not None
    rng = random.Random(20261206)
    read = 0
    for head in CORPUS:
        for i in range(len(head) + 1):
            assert _checked(_scanner, head[:i]) == (i == len(head))
        for _ in range(3000):
            data = bytearray(head)
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(data))
                op = rng.randrange(3)
                if op == 0:
                    data[i] = rng.choice(b" \t\r\n:,;=%#?/\x00\x7f\x80\xffaZ09-")
                elif op == 1:
                    data.insert(i, rng.randrange(256))
                else:
                    del data[i]
            read += _checked(_scanner, bytes(data))
    assert read > 1000


def test_no_scanner_without_the_compiled_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCKETWIRE_NO_SPEEDUPS", "1")
    assert head_scanner(65536, 100) is None
    monkeypatch.delenv("SOCKETWIRE_NO_SPEEDUPS")
    assert head_scanner(65536, 100) is not None
    # Not built: the import fails, and every head goes to httptools.
    monkeypatch.setitem(sys.modules, "socketwire._speedups", None)
    assert head_scanner(65536, 100) is None

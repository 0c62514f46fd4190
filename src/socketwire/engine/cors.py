"""Cross-origin resource sharing for Engine.IO requests (layer 1).

Node's socket.io hands its ``cors`` option to the ``cors`` npm middleware; this
module gives the same behaviour with Python names:

* ``origin``: ``True`` reflects the request's Origin, ``False`` disables CORS,
  ``"*"`` (the default once ``cors`` is given) allows any, another ``str`` is sent
  as is, a compiled regex or a list (of strings and regexes) reflects the Origin
  when it matches, a callable ``(origin) -> bool | str`` decides per request.
* ``credentials`` (``Access-Control-Allow-Credentials: true``), ``methods``
  (default ``GET,HEAD,PUT,PATCH,POST,DELETE``), ``allowed_headers`` (default:
  reflect ``Access-Control-Request-Headers``), ``exposed_headers``, ``max_age``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

OriginOption: TypeAlias = (
    "bool | str | re.Pattern[str] | Sequence[str | re.Pattern[str]] | Callable[[str | None], Any]"
)


def _join(value: str | Sequence[str] | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return ",".join(value)


@dataclass(slots=True)
class CorsPolicy:
    """The ``cors`` option, normalised."""

    origin: Any = "*"
    credentials: bool = False
    methods: str | Sequence[str] | None = "GET,HEAD,PUT,PATCH,POST,DELETE"
    allowed_headers: str | Sequence[str] | None = None
    exposed_headers: str | Sequence[str] | None = None
    max_age: int | None = None

    @classmethod
    def from_option(cls, option: Any) -> CorsPolicy | None:
        """Build from the server's ``cors`` option (None/False: no CORS headers)."""
        if option is None or option is False:
            return None
        if option is True:
            return cls(origin=True)
        if isinstance(option, CorsPolicy):
            return option
        if isinstance(option, Mapping):
            known = {
                "origin",
                "credentials",
                "methods",
                "allowed_headers",
                "exposed_headers",
                "max_age",
            }
            unknown = set(option) - known
            if unknown:
                raise TypeError(f"unknown cors options: {sorted(unknown)}")
            return cls(**option)
        raise TypeError("cors must be a dict of options, True, or None")

    def _allowed_origin(self, origin: str | None) -> tuple[str | None, bool]:
        """Returns (Access-Control-Allow-Origin value, whether to add Vary: Origin)."""
        rule = self.origin
        if callable(rule) and not isinstance(rule, re.Pattern):
            rule = rule(origin)
        if rule is True:
            return origin, True
        if rule is False or rule is None:
            return None, False
        if isinstance(rule, str):
            return rule, rule != "*"
        if isinstance(rule, re.Pattern):
            return (origin if origin is not None and rule.search(origin) else None), True
        for item in rule:
            if isinstance(item, re.Pattern):
                if origin is not None and item.search(origin):
                    return origin, True
            elif item == origin:
                return origin, True
        return None, True

    def allows(self, origin: str | None) -> bool:
        """Whether ``origin`` passes the policy (used for WebSocket handshakes,
        which browsers send cross-origin without asking)."""
        if origin is None:
            return True
        allowed, _ = self._allowed_origin(origin)
        return allowed is not None and (allowed == "*" or allowed == origin)

    def headers(self, method: str, request_headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """Response headers for a request (preflight when ``method`` is OPTIONS)."""
        allowed, vary = self._allowed_origin(request_headers.get("origin"))
        out: list[tuple[str, str]] = []
        if allowed is not None:
            out.append(("Access-Control-Allow-Origin", allowed))
        if vary:
            out.append(("Vary", "Origin"))
        if allowed is None:
            return out
        if self.credentials:
            out.append(("Access-Control-Allow-Credentials", "true"))
        if method == "OPTIONS":
            methods = _join(self.methods)
            if methods:
                out.append(("Access-Control-Allow-Methods", methods))
            headers = _join(self.allowed_headers)
            if headers is None:
                headers = request_headers.get("access-control-request-headers")
                if headers:
                    out.append(("Vary", "Access-Control-Request-Headers"))
            if headers:
                out.append(("Access-Control-Allow-Headers", headers))
            if self.max_age is not None:
                out.append(("Access-Control-Max-Age", str(self.max_age)))
        exposed = _join(self.exposed_headers)
        if exposed:
            out.append(("Access-Control-Expose-Headers", exposed))
        return out


__all__ = [
    "CorsPolicy",
    "OriginOption",
]

"""Connection state recovery across a Redis cluster (layer 1, asyncio).

Node's classic Redis adapter keeps no recovery state: a client that comes back
on another server, or after its server restarted, starts a new session. With
``create_adapter(..., recovery=True)`` (and the server's
``connection_state_recovery``), socketwire's Redis adapter keeps sessions and
the broadcasts they may miss in Redis, so any server of the cluster restores
them. Node servers of the same cluster are unaffected (they keep their own
sessions, in memory, as always).

**What Redis holds, per namespace** (keys under ``<key>-recovery#{<nsp>}#``, one
hash slot):

* ``session#<pid>``: a hash ``{d: [sid, pid, rooms, data], s: start}`` written
  when a socket disconnects for a recoverable reason, expiring after
  ``max_disconnection_duration``;
* ``order``: a sorted set of broadcast offsets scored by their position in the
  cluster, ``data`` a hash of their messages, both trimmed to ``max_length``
  entries and expiring after ``max_disconnection_duration`` without a broadcast;
* ``seq``: the counter that numbers positions;
* ``live#<uid>``: a hash of the sessions of server ``uid``'s connected sockets
  (``d:<pid>``, ``s:<pid>``: the same session and start), and ``servers``: the
  set of uids that keep one (see *Servers that die* below).

**How offsets are ordered.** A server cannot wait for Redis before delivering
a broadcast locally (an ``emit`` never waits, and local delivery must go on
while Redis is away), so it names the offset itself (its uid and a counter,
``recovery_format.make_offset``) and lets Redis order it: one Lua script
increments ``seq``, stores the message under that position and publishes it,
atomically. The position order is therefore the order in which every
subscriber receives the messages. Broadcasts without an offset (a Node server,
the Node emitter) get one from each socketwire server that receives them, from
the last offset before them (``recovery_format.foreign_offset``); every server
records them with the same script, the first one wins, at the anchor's
position plus a fraction, so they sort right after it.

**Restoring.** A CONNECT with ``{pid, offset}`` runs one script that takes the
session, finds the offset's position and returns every message after it; the
adapter keeps those the session's rooms would have received. A CONNECT with a
``pid`` and no offset (a client that received no broadcast before it lost its
connection, socket.io#5538) uses the session's ``start``: the position when the
socket connected, read in order with the server's own broadcasts. The script
also publishes a fence on the server's own response channel: broadcasts
received after the fence and before the socket joins its rooms are added to
what it missed, so nothing falls between the stored history and live delivery.

**Servers that die.** A server killed (SIGKILL, a crash, a lost host) writes
no session when its sockets go. So each server also keeps, while its sockets
are connected, their sessions in its ``live#<uid>`` hash: written when a socket
connects (once its ``connection`` handlers ran) and when it joins or leaves a
room, compared again at every heartbeat (``socket.data`` that changed is
written then), deleted when it disconnects. The heartbeat (every third of the
window, at most every 10 s) keeps the hash for ``max_disconnection_duration``
past its last beat. The restore script that finds no ``session#<pid>`` looks
for the pid in the hash of every server of ``servers`` that has no subscriber
left on its response channel (``PUBSUB NUMSUB``: Redis drops a dead process's
connections at once): a server that lives keeps its sockets, as when a client
comes back before its server saw it go, and the client starts a new session.
``socket.data`` changed since the last heartbeat, and rooms joined less than a
loop turn before the death, are not in what is recovered. A server cut from
Redis while its clients are cut from it too looks dead: a client of it that
comes back elsewhere is restored there, and the old server's copy disconnects
when it times out.

**Limits.** Recovery needs the classic pattern subscription (every server sees
every broadcast, to compute the same offsets). A broadcast without an offset is
recorded when a server receives it, so one sent within a round trip of a
restore may be missed by it; one received before any socketwire server of the
namespace published a recorded broadcast cannot be named (each server
publishes an invisible *anchor* when it starts, to keep that window short).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from socketwire.core.cluster.recovery_format import StoredSession, encode_session
from socketwire.errors import LocalProtocolError

if TYPE_CHECKING:
    import asyncio

    from socketwire.adapters.redis import Bus

__all__ = ["RedisRecoveryStore"]

log = logging.getLogger("socketwire.adapters.redis")

#: Broadcasts kept per namespace, by default.
DEFAULT_MAX_LENGTH: Final = 10_000

# KEYS: order, data; ARGV[1] = max length, ARGV[2] = lifetime (ms).
_TRIM: Final = """
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if excess > 0 then
  local old = redis.call('ZPOPMIN', KEYS[1], excess)
  for i = 1, #old, 2 do redis.call('HDEL', KEYS[2], old[i]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
"""

# Record (and publish) a broadcast of this server.
# KEYS: order, data, seq; ARGV: max length, lifetime, offset, message, channel ('' = local).
_RECORD: Final = (
    """
local n = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[1], n, ARGV[3])
"""
    + _TRIM
    + """
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[4]) end
return n
"""
)

# Record a broadcast without an offset, once for the whole cluster, right after its anchor.
# KEYS: order, data; ARGV: max length, lifetime, offset, message, anchor, fraction.
_RECORD_FOREIGN: Final = (
    """
if redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4]) == 0 then return 0 end
local s = redis.call('ZSCORE', KEYS[1], ARGV[5])
if not s then
  redis.call('HDEL', KEYS[2], ARGV[3])
  return 0
end
redis.call('ZADD', KEYS[1], tonumber(s) + tonumber(ARGV[6]), ARGV[3])
"""
    + _TRIM
    + """
return 1
"""
)

# Take a session and what it missed; publish the fence in the same step. A session
# that no disconnection wrote may be in the live hash of a server that died.
# KEYS: session, order, data, servers; ARGV: offset ('' = the session's start),
# fence channel, fence, pid, live hash prefix, response channel prefix, own uid.
_RESTORE: Final = """
redis.call('PUBLISH', ARGV[2], ARGV[3])
local sess = redis.call('HMGET', KEYS[1], 'd', 's')
if sess[1] then
  redis.call('DEL', KEYS[1])
else
  local d, s = 'd:' .. ARGV[4], 's:' .. ARGV[4]
  for _, uid in ipairs(redis.call('SMEMBERS', KEYS[4])) do
    if uid ~= ARGV[7] then
      local live = ARGV[5] .. uid
      local subscribed = redis.call('PUBSUB', 'NUMSUB', ARGV[6] .. uid .. '#')[2]
      if subscribed == 0 then
        if redis.call('EXISTS', live) == 0 then
          redis.call('SREM', KEYS[4], uid)
        else
          local got = redis.call('HMGET', live, d, s)
          if got[1] then
            redis.call('HDEL', live, d, s)
            sess = got
            break
          end
        end
      end
    end
  end
  if not sess[1] then return nil end
end
local pos
if ARGV[1] ~= '' then pos = redis.call('ZSCORE', KEYS[2], ARGV[1]) else pos = sess[2] end
if not pos then return {sess[1]} end
local offsets = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. pos, '+inf')
local messages = {}
for i = 1, #offsets, 1000 do
  local chunk = {}
  for j = i, math.min(i + 999, #offsets) do chunk[#chunk + 1] = offsets[j] end
  local got = redis.call('HMGET', KEYS[3], unpack(chunk))
  for j = 1, #got do messages[#messages + 1] = got[j] end
end
return {sess[1], offsets, messages}
"""


# A server's heartbeat: it keeps a live hash. KEYS: servers, live; ARGV: uid, lifetime (ms).
_BEAT: Final = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
"""


class RedisRecoveryStore:
    """The Redis commands of one namespace's recovery state (see the module docstring).

    Every command goes through the bus's one ordered queue, so each runs in Redis
    after the broadcasts this server issued before it.
    """

    def __init__(
        self, bus: Bus, key: str, nsp: str, lifetime: float, max_length: int = DEFAULT_MAX_LENGTH
    ) -> None:
        prefix = f"{key}-recovery#{{{nsp}}}#"
        self.bus = bus
        self.session_prefix = prefix + "session#"
        self.order = prefix + "order"
        self.data = prefix + "data"
        self.seq = prefix + "seq"
        self.live_prefix = prefix + "live#"
        self.servers = prefix + "servers"
        self.lifetime_ms = max(1, int(lifetime * 1000))
        self.max_length = max_length
        #: Seconds between two heartbeats of a server's live hash.
        self.beat_interval = min(10.0, lifetime / 3)

    def record(self, offset: str, message: bytes, channel: str | None) -> None:
        """Record a broadcast of this server and publish it on ``channel`` (None: local)."""
        self.bus.command(
            "EVAL",
            _RECORD,
            3,
            self.order,
            self.data,
            self.seq,
            self.max_length,
            self.lifetime_ms,
            offset,
            message,
            channel or "",
            size=len(message),
        )

    def record_foreign(self, offset: str, message: bytes, anchor: str, count: int) -> None:
        """Record a broadcast without an offset (once, whichever server is first)."""
        self.bus.command(
            "EVAL",
            _RECORD_FOREIGN,
            2,
            self.order,
            self.data,
            self.max_length,
            self.lifetime_ms,
            offset,
            message,
            anchor,
            # Strictly between the anchor's position and the next one's.
            repr(count / (count + 1)),
            size=len(message),
        )

    def position(self) -> asyncio.Future[Any] | None:
        """The position of the latest broadcast (a reply of ``[offset, score]`` or ``[]``)."""
        return self.bus.command("ZREVRANGE", self.order, 0, 0, "WITHSCORES")

    def persist(self, session: StoredSession, start: str | None) -> None:
        """Keep a disconnected socket's session for ``lifetime``."""
        blob = storable(session)
        key = self.session_prefix + session.pid
        fields: tuple[Any, ...] = ("d", blob) if start is None else ("d", blob, "s", start)
        self.bus.command("HSET", key, *fields, size=len(blob))
        self.bus.command("PEXPIRE", key, self.lifetime_ms)

    def restore(
        self,
        pid: str,
        offset: str | None,
        fence_channel: str,
        fence: bytes,
        uid: str,
        response_prefix: str,
    ) -> asyncio.Future[Any] | None:
        """Take the session of ``pid`` (stored at its disconnection, or left by a
        server that died, ``uid`` being this server and ``response_prefix`` the
        namespace's response channel before a uid): the reply is None (no
        session), ``[blob]`` (offset unknown) or ``[blob, offsets, messages]``."""
        return self.bus.command(
            "EVAL",
            _RESTORE,
            4,
            self.session_prefix + pid,
            self.order,
            self.data,
            self.servers,
            offset or "",
            fence_channel,
            fence,
            pid,
            self.live_prefix,
            response_prefix,
            uid,
        )

    # -- the sessions of connected sockets ----------------------------------------------

    def beat(self, uid: str) -> None:
        """Keep server ``uid``'s live hash (and its place in ``servers``) for the
        window past the next beat."""
        lifetime = self.lifetime_ms + int(self.beat_interval * 1000)
        self.bus.command("EVAL", _BEAT, 2, self.servers, self.live_prefix + uid, uid, lifetime)

    def keep_live(self, uid: str, blob: bytes, pid: str, start: str | None) -> None:
        """Write a connected socket's session in server ``uid``'s live hash."""
        fields: tuple[Any, ...] = (f"d:{pid}", blob)
        if start is not None:
            fields += (f"s:{pid}", start)
        key = self.live_prefix + uid
        self.bus.command("HSET", key, *fields, size=len(blob))
        # A hash that the last beat found empty has no lifetime yet.
        self.bus.command("PEXPIRE", key, self.lifetime_ms + int(self.beat_interval * 1000))

    def drop_live(self, uid: str, pid: str) -> None:
        """A socket of server ``uid`` disconnected: its live session goes."""
        self.bus.command("HDEL", self.live_prefix + uid, f"d:{pid}", f"s:{pid}")

    def leave(self, uid: str) -> None:
        """Server ``uid`` stops: its live hash goes (its sockets are gone already)."""
        self.bus.command("DEL", self.live_prefix + uid)
        self.bus.command("SREM", self.servers, uid)


def storable(session: StoredSession, *, quiet: bool = False) -> bytes:
    """The session's blob; without ``socket.data`` when msgpack cannot hold it
    (logged unless ``quiet``)."""
    try:
        return encode_session(session)
    except LocalProtocolError as exc:
        if not quiet:
            log.warning(
                "socket.data of %s not storable (%s): session kept without it", session.sid, exc
            )
        return encode_session(StoredSession(session.sid, session.pid, session.rooms, None))

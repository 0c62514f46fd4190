"""A real Redis Cluster for the tests: six ``redis-server`` processes on free ports of
127.0.0.1, three masters with one replica each, made a cluster by
``redis-cli --cluster create``. Files live in a temporary directory.

``cluster-node-timeout`` is one second, so that a killed master's replica takes
over within a few seconds (the failover test).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.waits import scaled

NODES = 6
NODE_TIMEOUT_MS = 1000


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port free on 127.0.0.1 whose cluster bus port (+10000) is free too: below
    the kernel's ephemeral range, where the bus port would pass 65535."""
    while True:
        port = random.randrange(20000, 30000)
        if _free(port) and _free(port + 10000):
            return port


def cli(port: int, *args: str) -> str:
    """``redis-cli -p port args`` (its output)."""
    out = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        timeout=scaled(10),
        check=False,
    )
    return out.stdout.decode()


def info(port: int) -> dict[str, str]:
    """``CLUSTER INFO`` of one node as a dict (empty if it does not answer)."""
    fields: dict[str, str] = {}
    for line in cli(port, "cluster", "info").splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            fields[key] = value
    return fields


class RedisClusterProcesses:
    """Six redis-server processes in cluster mode (see the module docstring)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="socketwire-redis-cluster-"))
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def ports(self) -> list[int]:
        return list(self.procs)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self) -> None:
        for exe in ("redis-server", "redis-cli"):
            if shutil.which(exe) is None:
                raise RuntimeError(f"{exe} is not installed (scripts/bootstrap.sh installs it)")
        while len(self.procs) < NODES:
            self._start_node(free_port())
        out = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            timeout=scaled(60),
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout.decode()}")
        self.wait(lambda: all(self.state_ok(p) for p in self.ports), "cluster_state:ok")
        # A replica takes over only once it has synced with its master.
        self.wait(lambda: all(self.synced(p) for p in self.replicas()), "replicas in sync")

    def _start_node(self, port: int) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir()
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(node_dir),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert proc.stdout is not None
        for raw in proc.stdout:
            if b"Ready to accept connections" in raw:
                # Its log is no longer read: it must not fill the pipe.
                proc.stdout.close()
                self.procs[port] = proc
                return
        proc.stdout.close()
        proc.wait()  # the port was taken meanwhile: another one

    @staticmethod
    def wait(check: object, what: str, timeout: float = 30.0) -> None:
        """Poll ``check()`` (a state of the Redis processes) until true, bounded."""
        assert callable(check)
        deadline = time.monotonic() + scaled(timeout)
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis Cluster: no {what} after {timeout} s")
            time.sleep(0.05)

    @staticmethod
    def state_ok(port: int) -> bool:
        return info(port).get("cluster_state") == "ok"

    @staticmethod
    def synced(port: int) -> bool:
        return "master_link_status:up" in cli(port, "info", "replication")

    def role(self, port: int) -> str:
        for line in cli(port, "role").splitlines()[:1]:
            return line.strip()
        return ""

    def masters(self) -> list[int]:
        return [p for p in self.ports if self.role(p) == "master"]

    def replicas(self) -> list[int]:
        return [p for p in self.ports if self.role(p) == "slave"]

    def live(self) -> list[int]:
        return [p for p in self.ports if self.procs[p].poll() is None]

    def master_of_slot_owner(self, key: str, via: int | None = None) -> int:
        """The port of the master that owns ``key``'s slot, as node ``via`` (by
        default the first live one) sees it."""
        live = via if via is not None else self.live()[0]
        slot = int(cli(live, "cluster", "keyslot", key).strip())
        for line in cli(live, "cluster", "nodes").splitlines():
            parts = line.split()
            if "master" not in parts[2] or "fail" in parts[2]:
                continue
            for span in parts[8:]:
                low, _, high = span.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return int(parts[1].split("@")[0].rsplit(":", 1)[1])
        raise RuntimeError(f"no master owns the slot of {key!r}")

    def replica_of(self, master: int) -> int:
        """The port of a replica of ``master``."""
        for port in self.replicas():
            text = cli(port, "info", "replication")
            if f"master_port:{master}" in text:
                return port
        raise RuntimeError(f"no replica of {master}")

    def kill(self, port: int) -> None:
        """SIGKILL one node (as a crash would)."""
        proc = self.procs[port]
        proc.kill()
        proc.wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

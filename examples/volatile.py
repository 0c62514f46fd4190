"""Sending volatile messages.

A volatile message may be dropped: if the client's transport cannot take it right
now (a polling client between two requests, a WebSocket whose buffer is full, a
connection being upgraded), it is not queued. That suits a stream where only the
latest value matters, such as a feed of tweets pushed every 100 ms::

    socket.on("bieber tweet", (tweet) => render(tweet));

The server starts one feed task per client on connection and cancels it when
the client disconnects.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import socketwire

log = logging.getLogger(__name__)

INTERVAL = 0.1  # seconds between two tweets
TWEETS = (
    "Never say never",
    "Baby, baby, baby, oh",
    "Is it too late now to say sorry?",
)
TASK_PREFIX = "bieber-tweets-"


def get_bieber_tweet(n: int) -> dict[str, Any]:
    return {"id": n, "text": TWEETS[n % len(TWEETS)]}


async def push_tweets(socket: socketwire.Socket) -> None:
    for n in itertools.count():
        socket.volatile.emit("bieber tweet", get_bieber_tweet(n))
        await asyncio.sleep(INTERVAL)


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)

    @sio.on("connection")
    def on_connection(socket: socketwire.Socket) -> None:
        tweets = asyncio.create_task(push_tweets(socket), name=TASK_PREFIX + socket.id)

        @socket.on("disconnect")
        def stop_tweets(reason: str) -> None:
            log.info("%s gone (%s): no more tweets", socket.id, reason)
            tweets.cancel()

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)

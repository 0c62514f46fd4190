"use strict";
// examples/namespaces.py: /chat and /news multiplexed over one connection.
const { client, waitFor, out, run } = require("./_common");

run(async () => {
  const chat = client("chat", "/chat");
  const news = client("news", "/news"); // same Manager, so the same connection
  await Promise.all([waitFor(chat, "connect"), waitFor(news, "connect")]);
  await waitFor(news, "item");
  await waitFor(chat, "a message", { count: 2 });
  out({ client: "chat", same_manager: chat.io === news.io, engine: chat.io.engine.id });

  // A second client on /chat: everyone in /chat (the first one too) hears about it.
  const other = client("other", "/chat", { forceNew: true });
  await waitFor(other, "a message", { count: 2 });
  await waitFor(chat, "a message", { count: 3 });
  out({ client: "other", engine: other.io.engine.id });
});

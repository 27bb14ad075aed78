// Found by the convergence test (seeds 23 and 41): Node's WebSocket (undici,
// Node 20) fires only `error`, never `close`, when the connection fails during
// the handshake, and nothing at all when the peer closes before answering; in
// both cases statecast.js waited for a `close` forever ("connecting").
// Run: node --experimental-websocket --test Tests/EndToEndTests/js/

import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";

import { StateCastClient } from "../../../web/statecast.js";

// A WebSocket that fails its handshake the way undici does: `error` while
// still CONNECTING (readyState 0), and no `close` event after it.
class HandshakeFailingSocket {
  static created = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    HandshakeFailingSocket.created.push(this);
  }
  close() {}
}

function client(WebSocket, timers, extra = {}) {
  return new StateCastClient({
    url: "ws://127.0.0.1:1/",
    WebSocket,
    setTimeout: (fn, ms) => { const t = { fn, ms, cleared: false }; timers.push(t); return t; },
    clearTimeout: (t) => { t.cleared = true; },
    random: () => 0.5,
    backoff: { jitter: 0 },
    ...extra,
  });
}

const live = (timers) => timers.filter((t) => !t.cleared);

test("an error during the handshake without a close event still schedules a reconnect", () => {
  const timers = [];
  const viewer = client(HandshakeFailingSocket, timers);
  viewer.connect();
  HandshakeFailingSocket.created.at(-1).onerror?.({ type: "error" });
  assert.equal(viewer.status.state, "reconnecting");
  assert.deepEqual(live(timers).map((t) => t.ms), [2000], "only the reconnect timer");
  const before = HandshakeFailingSocket.created.length;
  live(timers)[0].fn();
  assert.equal(HandshakeFailingSocket.created.length, before + 1, "a second attempt was made");
});

test("a browser-style error followed by close reconnects once, not twice", () => {
  const timers = [];
  const viewer = client(HandshakeFailingSocket, timers);
  viewer.connect();
  const socket = HandshakeFailingSocket.created.at(-1);
  const onclose = socket.onclose;
  socket.readyState = 3; // browsers close the socket before firing error
  socket.onerror?.({ type: "error" });
  onclose({ code: 1006, reason: "" });
  assert.deepEqual(live(timers).map((t) => t.ms), [2000]);
  assert.equal(viewer.status.state, "reconnecting");
});

test("an attempt that reports nothing at all is given up after connectTimeoutMs", () => {
  const timers = [];
  const viewer = client(HandshakeFailingSocket, timers, { connectTimeoutMs: 5000 });
  viewer.connect();
  const socket = HandshakeFailingSocket.created.at(-1);
  assert.deepEqual(live(timers).map((t) => t.ms), [5000]);
  live(timers)[0].fn();
  assert.equal(viewer.status.state, "reconnecting");
  assert.equal(socket.onclose, null, "the abandoned socket is detached");
  assert.deepEqual(live(timers).filter((t) => t.ms !== 5000).map((t) => t.ms), [2000]);
});

test("an attempt that opens clears its connect deadline", () => {
  const timers = [];
  const viewer = client(HandshakeFailingSocket, timers);
  viewer.connect();
  HandshakeFailingSocket.created.at(-1).onopen?.({});
  assert.equal(viewer.status.state, "connected");
  assert.deepEqual(live(timers), []);
});

const noWebSocket = typeof globalThis.WebSocket !== "function" && "node 20 has a WebSocket only with --experimental-websocket";

for (const [what, onConnection] of [
  ["cut after the request", (sock) => sock.on("data", () => sock.destroy())],
  ["closed before the request", (sock) => sock.destroy()],
]) {
  test(`with node's own WebSocket, a connection ${what} is retried`, { timeout: 10000, skip: noWebSocket }, async () => {
    let connections = 0;
    const server = net.createServer((sock) => {
      connections += 1;
      onConnection(sock);
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address();
    const viewer = new StateCastClient({
      url: `ws://127.0.0.1:${port}/`, backoff: { initialMs: 50, jitter: 0 }, connectTimeoutMs: 300,
    });
    viewer.connect();
    const deadline = Date.now() + 8000;
    while (connections < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    viewer.disconnect();
    server.close();
    assert.ok(connections >= 2, `only ${connections} connection attempt(s): the client never retried`);
  });
}

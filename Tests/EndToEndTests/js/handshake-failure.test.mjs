// Found by the convergence test (seed 23): Node's WebSocket (undici, Node 20)
// fires only `error`, never `close`, when the connection fails during the
// handshake, and statecast.js waited for a `close` forever ("connecting").
// Run: node --test Tests/EndToEndTests/js/

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

test("an error during the handshake without a close event still schedules a reconnect", () => {
  const timers = [];
  const statuses = [];
  const client = new StateCastClient({
    url: "ws://127.0.0.1:1/",
    WebSocket: HandshakeFailingSocket,
    setTimeout: (fn, ms) => timers.push({ fn, ms }),
    clearTimeout: () => {},
    random: () => 0.5,
    onStatus: (status) => statuses.push(status.state),
  });
  client.connect();
  const socket = HandshakeFailingSocket.created.at(-1);
  socket.onerror?.({ type: "error" });
  assert.equal(client.status.state, "reconnecting");
  assert.equal(timers.length, 1);
  assert.equal(timers[0].ms, 2000);
  timers[0].fn();
  assert.equal(HandshakeFailingSocket.created.length, 2, "a second attempt was made");
});

test("a browser-style error followed by close reconnects once, not twice", () => {
  const timers = [];
  class BrowserSocket extends HandshakeFailingSocket {}
  const client = new StateCastClient({
    url: "ws://127.0.0.1:1/", WebSocket: BrowserSocket,
    setTimeout: (fn, ms) => timers.push({ fn, ms }), clearTimeout: () => {}, random: () => 0.5,
  });
  client.connect();
  const socket = HandshakeFailingSocket.created.at(-1);
  const onclose = socket.onclose;
  socket.readyState = 3; // browsers close the socket before firing error
  socket.onerror?.({ type: "error" });
  onclose({ code: 1006, reason: "" });
  assert.equal(timers.length, 1);
});

const noWebSocket = typeof globalThis.WebSocket !== "function" && "node 20 has a WebSocket only with --experimental-websocket";

test("with node's own WebSocket, a connection cut during the handshake is retried", { timeout: 10000, skip: noWebSocket }, async () => {
  let connections = 0;
  const server = net.createServer((sock) => {
    connections += 1;
    sock.on("data", () => sock.destroy());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  const client = new StateCastClient({ url: `ws://127.0.0.1:${port}/`, backoff: { initialMs: 50, jitter: 0 } });
  client.connect();
  const deadline = Date.now() + 8000;
  while (connections < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  client.disconnect();
  server.close();
  assert.ok(connections >= 2, `only ${connections} connection attempt(s): the client never retried`);
});

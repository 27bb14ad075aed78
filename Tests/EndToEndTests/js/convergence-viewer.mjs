// A statecast.js viewer under node, driven by the convergence test
// (Tests/EndToEndTests/python/convergence/viewers.py). Not a node:test file.
//
//   node --experimental-websocket convergence-viewer.mjs URL [URL …]
//
// Prints one JSON line per event on stdout:
//   {"event":"connecting","url":"ws://…?since=…&epoch=…"}   each connection attempt (the resume position it asks for)
//   {"event":"state","seq":S,"epoch":E,"type":T,"state":{…}}   each applied change
//   {"event":"drop","reason":"…"}                             each dropped message or rejected field
//   {"event":"status","state":"connected"}                    each connection state
//   {"event":"alive","state":"connected","seq":S}             every 5 s
// Commands on stdin, one per line:
//   reconnect   disconnect() (close 1000), then connect() again: resumes from the state held
//   quit        disconnect() and exit

import { createInterface } from "node:readline";
import { connect } from "../../../web/statecast.js";

const urls = process.argv.slice(2);
if (urls.length === 0) {
  process.stderr.write("usage: convergence-viewer.mjs URL [URL …]; give the host's ws:// URL\n");
  process.exit(2);
}
if (typeof globalThis.WebSocket !== "function") {
  process.stderr.write("this node has no WebSocket; run node 22+, or node 20 with --experimental-websocket\n");
  process.exit(2);
}

const print = (event) => process.stdout.write(JSON.stringify(event) + "\n");

let viewer = null;
viewer = connect({
  url: urls.length === 1 ? urls[0] : urls,
  backoff: { initialMs: 200, factor: 1.5, maxMs: 1000, jitter: 0.2 },
  failoverDelayMs: 100,
  connectTimeoutMs: 3000,
  onState(session, change) {
    print({ event: "state", seq: change.seq, epoch: viewer?.state.epoch ?? null, type: change.type, state: session });
  },
  onStatus(status) {
    if (status.state === "connecting" && viewer !== null) print({ event: "connecting", url: viewer.nextURL() });
    print({ event: "status", state: status.state });
  },
  onDrop(reason) {
    print({ event: "drop", reason });
  },
});
// The first attempt started inside connect(), before `viewer` was assigned.
print({ event: "connecting", url: viewer.url });

// A sign of life every 5 s, so a report can tell a stuck connection from a stuck process.
setInterval(() => print({ event: "alive", state: viewer.status.state, seq: viewer.state.seq }), 5000).unref();

createInterface({ input: process.stdin }).on("line", (line) => {
  const command = line.trim();
  if (command === "reconnect") {
    viewer.disconnect();
    viewer.connect();
  } else if (command === "quit") {
    viewer.disconnect();
    setTimeout(() => process.exit(0), 100);
  } else if (command !== "") {
    process.stderr.write(`unknown command "${command}"; use reconnect or quit\n`);
  }
}).on("close", () => {
  viewer.disconnect();
  setTimeout(() => process.exit(0), 100);
});

// Unit tests of web/statecast.js (the module every host serves at /statecast.js).
// Run: node --test Tests/EndToEndTests/js/
// No sockets, no real timers: the client gets a fake WebSocket, fake timers and a fixed random.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

import {
  DEFAULT_BACKOFF, backoffBaseDelay, backoffDelay, backoffRange,
  jsonType, typeAccepts, parseSchema, deriveSchema, filterConfig,
  viewerURL, resumeURL, ViewerState, StateCastClient, connect, jsonEqual,
} from "../../../web/statecast.js";

const SCHEDULE = [2000, 3000, 4500, 6750, 10125, 15000, 15000, 15000];

// A small deterministic PRNG (mulberry32), so the jitter tests are repeatable.
function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("backoff", () => {
  test("without jitter the schedule is exactly 2, 3, 4.5, 6.75, 10.125, 15, 15 … s", () => {
    assert.deepEqual(SCHEDULE.map((_, i) => backoffDelay(i, { jitter: 0 })), SCHEDULE);
    assert.deepEqual(SCHEDULE.map((_, i) => backoffDelay(i, { jitter: false })), SCHEDULE);
    assert.deepEqual(SCHEDULE.map((_, i) => backoffBaseDelay(i)), SCHEDULE);
    assert.equal(backoffDelay(1000, { jitter: 0 }), 15000);
  });

  test("jitter is on by default, ±20 %", () => {
    assert.equal(DEFAULT_BACKOFF.jitter, 0.2);
    assert.equal(backoffDelay(0, undefined, () => 0), 1600);
    assert.equal(backoffDelay(0, {}, () => 0.5), 2000);
    assert.equal(backoffDelay(5, {}, () => 0), 12000);
    assert.equal(backoffDelay(5, {}, () => 1), 18000);
    assert.deepEqual(backoffRange(5), [12000, 18000]);
  });

  test("jittered delays stay within ±20 % of the schedule and spread over the range", () => {
    const random = seeded(42);
    SCHEDULE.forEach((base, failure) => {
      const delays = Array.from({ length: 500 }, () => backoffDelay(failure, {}, random));
      const [low, high] = backoffRange(failure);
      assert.equal(low, base * 0.8);
      assert.equal(high, base * 1.2);
      for (const d of delays) assert.ok(d >= low && d <= high, `${d} outside [${low}, ${high}]`);
      // Uniform: both halves of the range are used, and the mean stays near the base.
      assert.ok(delays.some((d) => d < base * 0.9) && delays.some((d) => d > base * 1.1));
      const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
      assert.ok(Math.abs(mean - base) < base * 0.03, `mean ${mean} far from ${base}`);
    });
  });

  test("a custom schedule and jitter are honoured", () => {
    const options = { initialMs: 100, factor: 2, maxMs: 1000, jitter: 0.5 };
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => backoffBaseDelay(i, options)), [100, 200, 400, 800, 1000, 1000]);
    assert.equal(backoffDelay(1, options, () => 0), 100);
    assert.equal(backoffDelay(1, options, () => 1), 300);
  });
});

describe("whitelist", () => {
  test("jsonType names JSON types, arrays and null included", () => {
    assert.deepEqual([1, 2.5, "x", true, null, [], {}].map(jsonType),
      ["number", "number", "string", "boolean", "null", "array", "object"]);
  });

  test("a derived schema types every number as number and null as any", () => {
    const schema = deriveSchema({ speed: 1, gain: 0.5, mode: "wave", on: true, list: [1], obj: { a: 1 }, later: null });
    assert.deepEqual(Object.fromEntries(schema), {
      speed: "number", gain: "number", mode: "string", on: "boolean", list: "array", obj: "object", later: "any",
    });
    // A field first seen as 1 accepts 2.5; a null field accepts anything.
    const { accepted, rejected } = filterConfig(schema, { speed: 2.5, later: "now set" });
    assert.deepEqual({ ...accepted }, { speed: 2.5, later: "now set" });
    assert.deepEqual(rejected, []);
  });

  test("filterConfig rejects unknown keys and wrong types, keeping the rest", () => {
    const schema = deriveSchema({ speed: 1, mode: "wave", list: [], obj: {} });
    const { accepted, rejected } = filterConfig(schema, {
      speed: "fast", mode: "sine", debug: true, list: {}, obj: [], extra: null,
    });
    assert.deepEqual({ ...accepted }, { mode: "sine" });
    assert.deepEqual(rejected.map((r) => r.key), ["speed", "debug", "list", "obj", "extra"]);
    assert.match(rejected[0].reason, /expected number, got string/);
    assert.match(rejected[1].reason, /not in the schema/);
    assert.match(rejected[2].reason, /expected array, got object/);
  });

  test("explicit schemas: flat, wrapped in fields, Map, or name:type specs", () => {
    const expected = { speed: "number", count: "integer", mode: "string", anything: "any" };
    assert.deepEqual(Object.fromEntries(parseSchema(expected)), expected);
    assert.deepEqual(Object.fromEntries(parseSchema({ fields: expected })), expected);
    assert.deepEqual(Object.fromEntries(parseSchema(new Map(Object.entries(expected)))), expected);
    assert.deepEqual(Object.fromEntries(parseSchema(["speed:number", "count: Integer", "mode:string", "anything:any"])), expected);
    // A flat schema may still declare a field called "fields".
    assert.deepEqual(Object.fromEntries(parseSchema({ fields: "array" })), { fields: "array" });
    assert.throws(() => parseSchema({ speed: "float" }), /unknown type "float"/);
    assert.throws(() => parseSchema(["speed"]), /NAME:TYPE/);
  });

  test("integer accepts whole numbers only; number rejects nothing numeric", () => {
    assert.ok(typeAccepts("integer", 3));
    assert.ok(typeAccepts("integer", 3.0));
    assert.ok(!typeAccepts("integer", 3.5));
    assert.ok(typeAccepts("number", 3.5));
    assert.ok(!typeAccepts("number", "3"));
    assert.ok(typeAccepts("any", null));
    assert.ok(!typeAccepts("object", null));
  });
});

describe("URLs", () => {
  test("viewerURL derives ws:// or wss:// from the page and passes the token on", () => {
    assert.equal(viewerURL({ href: "http://192.168.1.20:9876/" }), "ws://192.168.1.20:9876/");
    assert.equal(viewerURL({ href: "https://example.test/viewer/index.html#x" }), "wss://example.test/");
    assert.equal(viewerURL("http://127.0.0.1:9876/?token=s3cr%20t&other=1"), "ws://127.0.0.1:9876/?token=s3cr+t");
    assert.equal(new URL(viewerURL("http://h:1/?token=a%26b")).searchParams.get("token"), "a&b");
  });

  test("resumeURL adds since and epoch, replaces old ones and keeps the token", () => {
    const base = "ws://127.0.0.1:9876/?token=abc";
    assert.equal(resumeURL(base, { since: 1795432000124, epoch: "9f2c0b1e77a4d310" }),
      "ws://127.0.0.1:9876/?token=abc&since=1795432000124&epoch=9f2c0b1e77a4d310");
    assert.equal(resumeURL("ws://h:1/?since=5&epoch=old&token=t", { since: 7, epoch: "new" }),
      "ws://h:1/?token=t&since=7&epoch=new");
    assert.equal(resumeURL("ws://h:1/", { since: 7, epoch: null }), "ws://h:1/?since=7");
    assert.equal(resumeURL("ws://h:1/?since=5&epoch=e", {}), "ws://h:1/");
    assert.equal(resumeURL("ws://h:1/", { since: null, epoch: "e" }), "ws://h:1/");
  });
});

const FULL = {
  type: "session_update", seq: 100, epoch: "9f2c0b1e77a4d310",
  payload: { name: "Mixer", data: { points: [1, 2] }, config: { gain: 0.5, mode: "wave", later: null }, metadata: {} },
};

describe("applying envelopes", () => {
  test("session_update replaces the state and remembers seq and epoch", () => {
    const state = new ViewerState();
    const change = state.applyText(JSON.stringify(FULL));
    assert.equal(change.type, "session_update");
    assert.deepEqual(change.changedKeys, ["name", "data", "config", "metadata"]);
    assert.equal(change.previous, null);
    assert.deepEqual(state.session, FULL.payload);
    assert.deepEqual(state.position, { since: 100, epoch: "9f2c0b1e77a4d310" });

    const next = { ...FULL, seq: 101, payload: { ...FULL.payload, name: "Mixer 2" } };
    const second = state.applyEnvelope(next);
    assert.deepEqual(second.changedKeys, ["name"]);
    assert.equal(state.session.name, "Mixer 2");
    assert.equal(state.seq, 101);
  });

  test("config_update merges whitelisted keys of the expected type and drops the rest", () => {
    const state = new ViewerState();
    state.applyEnvelope(FULL);
    const drops = [];
    const change = state.applyText(
      '{"type":"config_update","seq":101,"payload":{"gain":0.8,"mode":7,"debug":true,"later":[1]}}', (d) => drops.push(d));
    assert.equal(change.type, "config_update");
    assert.deepEqual(change.changedKeys, ["gain", "later"]);
    assert.deepEqual(state.session.config, { gain: 0.8, mode: "wave", later: [1] });
    assert.deepEqual(change.rejected.map((r) => r.key), ["mode", "debug"]);
    assert.equal(drops.length, 2);
    assert.equal(state.counters.rejectedFields, 2);
    assert.equal(state.seq, 101);
    // The earlier state object is left as it was (callers may keep it).
    assert.equal(change.previous.config.gain, 0.5);
    // data and metadata are untouched.
    assert.deepEqual(state.session.data, FULL.payload.data);
  });

  test("a config_update whose keys are all rejected changes nothing but advances seq", () => {
    const state = new ViewerState();
    state.applyEnvelope(FULL);
    assert.equal(state.applyText('{"type":"config_update","seq":102,"payload":{"gain":"loud"}}'), null);
    assert.equal(state.session.config.gain, 0.5);
    assert.equal(state.seq, 102);
  });

  test("the whitelist is re-derived from each full state", () => {
    const state = new ViewerState();
    state.applyEnvelope(FULL);
    assert.equal(state.applyText('{"type":"config_update","seq":101,"payload":{"newKey":1}}'), null);
    state.applyEnvelope({ ...FULL, seq: 102, payload: { ...FULL.payload, config: { newKey: 0 } } });
    assert.deepEqual(state.applyText('{"type":"config_update","seq":103,"payload":{"newKey":1}}').changedKeys, ["newKey"]);
  });

  test("an explicit schema wins over the derived one", () => {
    const state = new ViewerState({ schema: { gain: "integer" } });
    state.applyEnvelope(FULL);
    assert.equal(state.applyText('{"type":"config_update","payload":{"gain":0.8,"mode":"x"}}'), null);
    assert.deepEqual(state.applyText('{"type":"config_update","payload":{"gain":3}}').changedKeys, ["gain"]);
    assert.deepEqual(state.session.config, { gain: 3, mode: "wave", later: null });
  });

  test("config_update before any state, unknown types, malformed JSON and bad envelopes are dropped", () => {
    const state = new ViewerState();
    const drops = [];
    const drop = (d) => drops.push(d);
    assert.equal(state.applyText('{"type":"config_update","seq":1,"payload":{"gain":1}}', drop), null);
    assert.equal(state.session, null);
    assert.equal(state.seq, null);
    for (const text of [
      "not json", "[1,2]", '{"payload":{}}', '{"type":"session_update","payload":[]}',
      '{"type":"session_update","payload":{"name":1,"config":{}}}', '{"type":"session_update","payload":{"name":"x"}}',
      '{"type":"config_update","payload":"x"}', '{"type":"session_update","seq":"7","payload":{"name":"x","config":{}}}',
    ]) {
      assert.equal(state.applyText(text, drop), null, text);
    }
    assert.equal(state.applyText('{"type":"hello","payload":{}}', drop), null);
    assert.equal(state.session, null);
    assert.deepEqual(
      { malformed: state.counters.malformed, unknown: state.counters.unknownTypes, early: state.counters.configBeforeState },
      { malformed: 8, unknown: 1, early: 1 });
    assert.equal(drops.length, 10);
  });

  test("unknown members are ignored and an old host without seq or epoch works", () => {
    const state = new ViewerState();
    const change = state.applyText('{"type":"session_update","extra":1,"payload":{"name":"Old","data":1,"config":{"a":1},"metadata":{}}}');
    assert.equal(change.seq, null);
    assert.deepEqual(state.position, { since: null, epoch: null });
    assert.equal(state.applyText('{"type":"config_update","payload":{"a":2}}').session.config.a, 2);
  });

  test("a __proto__ key is data, never a prototype change", () => {
    const state = new ViewerState();
    state.applyText('{"type":"session_update","payload":{"name":"p","data":null,"config":{"__proto__":{"x":1}},"metadata":{}}}');
    state.applyText('{"type":"config_update","payload":{"__proto__":{"polluted":true}}}');
    assert.equal(Object.getPrototypeOf(state.session.config), Object.prototype);
    assert.deepEqual(Object.keys(state.session.config), ["__proto__"]);
    assert.equal(({}).polluted, undefined);

    // A key the config did not have yet, let through by an explicit schema.
    const explicit = new ViewerState({ schema: JSON.parse('{"__proto__":"object"}') });
    explicit.applyText('{"type":"session_update","payload":{"name":"p","data":null,"config":{},"metadata":{}}}');
    const change = explicit.applyText('{"type":"config_update","payload":{"__proto__":{"polluted":true}}}');
    assert.deepEqual(change.changedKeys, ["__proto__"]);
    assert.equal(Object.getPrototypeOf(explicit.session.config), Object.prototype);
    assert.equal(explicit.session.config.polluted, undefined);
    assert.deepEqual(Object.keys(explicit.session.config), ["__proto__"]);
  });

  test("jsonEqual compares deeply", () => {
    assert.ok(jsonEqual({ a: [1, { b: null }] }, { a: [1, { b: null }] }));
    assert.ok(!jsonEqual({ a: 1 }, { a: 1, b: 2 }));
    assert.ok(!jsonEqual([1], { 0: 1 }));
  });
});

// ---------------------------------------------------------------------------
// The client, on a fake WebSocket and fake timers
// ---------------------------------------------------------------------------

function harness(options = {}) {
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.closedWith = null;
      sockets.push(this);
    }
    close(code, reason) { this.closedWith = { code, reason }; }
    // Host side:
    open() { this.onopen?.({}); }
    send(envelope) { this.onmessage?.({ data: typeof envelope === "string" ? envelope : JSON.stringify(envelope) }); }
    sendBinary() { this.onmessage?.({ data: new ArrayBuffer(4) }); }
    drop(code = 1006) { this.onclose?.({ code, reason: "" }); }
  }
  const timers = [];
  let now = 1_000_000;
  const statuses = [];
  const states = [];
  const client = new StateCastClient({
    url: "ws://127.0.0.1:9876/?token=t",
    WebSocket: FakeSocket,
    setTimeout: (fn, ms) => { const t = { fn, ms, cleared: false }; timers.push(t); return t; },
    clearTimeout: (t) => { t.cleared = true; },
    now: () => now,
    random: () => 0.5,
    onStatus: (s) => statuses.push(s),
    onState: (session, change) => states.push({ session, change }),
    ...options,
  });
  const pending = () => timers.filter((t) => !t.cleared && !t.fired);
  const fire = () => {
    const live = pending();
    assert.equal(live.length, 1, "exactly one reconnect timer is pending");
    live[0].fired = true;
    now += live[0].ms;
    live[0].fn();
  };
  return { client, sockets, timers, statuses, states, pending, fire, last: () => sockets.at(-1) };
}

describe("StateCastClient", () => {
  test("connects, reports status and applies envelopes", () => {
    const h = harness();
    h.client.connect();
    assert.equal(h.sockets.length, 1);
    assert.equal(h.last().url, "ws://127.0.0.1:9876/?token=t");
    assert.equal(h.client.status.state, "connecting");
    h.last().open();
    assert.equal(h.client.status.state, "connected");
    h.last().send(FULL);
    h.last().send({ type: "config_update", seq: 101, payload: { gain: 0.9 } });
    assert.equal(h.states.length, 2);
    assert.equal(h.states[1].session.config.gain, 0.9);
    assert.deepEqual(h.states[1].change.changedKeys, ["gain"]);
    assert.deepEqual(h.statuses.map((s) => s.state), ["connecting", "connected"]);
  });

  test("binary frames are dropped without a state change", () => {
    const drops = [];
    const h = harness({ onDrop: (d) => drops.push(d) });
    h.client.connect();
    h.last().open();
    h.last().sendBinary();
    assert.equal(h.states.length, 0);
    assert.deepEqual(drops, ["binary message dropped"]);
  });

  test("an unintended close reconnects on the exact schedule with jitter off, resuming with since and epoch", () => {
    const h = harness({ backoff: { jitter: 0 } });
    h.client.connect();
    h.last().open();
    h.last().send(FULL);
    h.last().send({ type: "config_update", seq: 105, payload: { gain: 0.7 } });
    h.last().drop(1001);

    const delays = [];
    for (let i = 0; i < 7; i++) {
      const status = h.client.status;
      assert.equal(status.state, "reconnecting");
      assert.equal(status.retryAt - 1_000_000 - delays.reduce((a, b) => a + b, 0), status.delayMs);
      delays.push(h.pending()[0].ms);
      h.fire();
      assert.equal(h.client.status.state, "connecting");
      assert.equal(h.last().url, "ws://127.0.0.1:9876/?token=t&since=105&epoch=9f2c0b1e77a4d310");
      h.last().drop(1006); // the host is still down
    }
    assert.deepEqual(delays, [2000, 3000, 4500, 6750, 10125, 15000, 15000]);
    assert.equal(h.sockets.length, 8);

    // A successful connection resets the schedule.
    h.fire();
    h.last().open();
    assert.equal(h.client.status.state, "connected");
    h.last().drop(1001);
    assert.equal(h.pending()[0].ms, 2000);
  });

  test("reconnect delays are jittered within ±20 % by default", () => {
    const h = harness({ random: seeded(7) });
    h.client.connect();
    h.last().drop();
    for (let i = 0; i < 8; i++) {
      const [low, high] = backoffRange(i);
      const ms = h.pending()[0].ms;
      assert.ok(ms >= low && ms <= high, `attempt ${i}: ${ms} outside [${low}, ${high}]`);
      assert.notEqual(ms, backoffBaseDelay(i));
      h.fire();
      h.last().drop();
    }
  });

  test("disconnect closes with 1000 and never reconnects", () => {
    const h = harness();
    h.client.connect();
    h.last().open();
    const socket = h.last();
    h.client.disconnect();
    assert.deepEqual(socket.closedWith, { code: 1000, reason: "viewer closed" });
    socket.drop(1000); // the close event after our own close
    assert.equal(h.pending().length, 0);
    assert.equal(h.sockets.length, 1);
    assert.equal(h.client.status.state, "disconnected");
    assert.equal(h.client.status.code, 1000);
  });

  test("disconnect while waiting to reconnect cancels the timer; connect starts again", () => {
    const h = harness();
    h.client.connect();
    h.last().drop(1006);
    assert.equal(h.pending().length, 1);
    h.client.disconnect();
    assert.equal(h.pending().length, 0);
    assert.equal(h.client.status.state, "disconnected");
    h.client.connect();
    assert.equal(h.sockets.length, 2);
    assert.equal(h.client.status.state, "connecting");
  });

  test("a close with code 1000 from the host still reconnects (only the viewer's own 1000 is final)", () => {
    const h = harness();
    h.client.connect();
    h.last().open();
    h.last().drop(1000);
    assert.equal(h.client.status.state, "reconnecting");
    assert.equal(h.pending().length, 1);
  });

  test("reconnectNow skips the wait, and does nothing when connected", () => {
    const h = harness({ backoff: { jitter: 0 } });
    h.client.connect();
    h.last().open();
    h.client.reconnectNow();
    assert.equal(h.sockets.length, 1);
    h.last().drop(1006);
    h.client.reconnectNow();
    assert.deepEqual(h.pending().map((t) => t.ms), [10000], "no reconnect timer, only the new attempt's connect deadline");
    assert.equal(h.sockets.length, 2);
    assert.equal(h.client.status.state, "connecting");
  });

  test("with several URLs a failure moves to the next one soon, resuming there; backoff once all failed", () => {
    const h = harness({ url: ["ws://a:9876/", "ws://b:9876/"], backoff: { jitter: 0 } });
    h.client.connect();
    assert.equal(h.last().url, "ws://a:9876/");
    h.last().open();
    h.last().send({ type: "session_update", seq: 7, epoch: "e", payload: { name: "n", data: {}, config: {}, metadata: {} } });
    h.last().drop(1006);
    assert.equal(h.pending()[0].ms, 250);
    h.fire();
    assert.equal(h.last().url, "ws://b:9876/?since=7&epoch=e");
    h.last().drop(1006);
    assert.equal(h.pending()[0].ms, 2000, "both failed in a row: the normal backoff");
    h.fire();
    assert.equal(h.last().url, "ws://a:9876/?since=7&epoch=e");
    h.last().open();
    assert.deepEqual(h.client.urls, ["ws://a:9876/", "ws://b:9876/"]);
  });

  test("resume can be turned off", () => {
    const h = harness({ resume: false });
    h.client.connect();
    h.last().open();
    h.last().send(FULL);
    h.last().drop(1001);
    h.fire();
    assert.equal(h.last().url, "ws://127.0.0.1:9876/?token=t");
  });

  test("connect() without a URL uses the page's location", () => {
    const saved = globalThis.location;
    globalThis.location = { href: "https://phone.test:8443/?token=xyz" };
    try {
      const seen = [];
      const client = connect({ WebSocket: class { constructor(url) { seen.push(url); } close() {} } });
      assert.deepEqual(seen, ["wss://phone.test:8443/?token=xyz"]);
      client.disconnect();
    } finally {
      if (saved === undefined) delete globalThis.location; else globalThis.location = saved;
    }
  });
});

test("the host embeds web/ itself: Sources/HostBroadcaster/web is web/, not a copy", () => {
  // SwiftPM embeds Sources/HostBroadcaster/web/{index.html,statecast.js} (Package.swift, embedInCode);
  // test_browser.py checks the served bytes. A copy there instead of the link would drift from web/.
  const root = fileURLToPath(new URL("../../../", import.meta.url));
  assert.equal(realpathSync(`${root}Sources/HostBroadcaster/web`), realpathSync(`${root}web`));
  for (const name of ["statecast.js", "index.html"]) {
    assert.equal(readFileSync(`${root}Sources/HostBroadcaster/web/${name}`, "utf8"), readFileSync(`${root}web/${name}`, "utf8"));
  }
});

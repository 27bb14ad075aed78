// statecast.js: the StateCast viewer protocol (v1) for web pages.
//
// A dependency-free ES module, served by every statecast-host at /statecast.js.
// It connects to the host over WebSocket, keeps a copy of the session, and
// reconnects by itself (2 s, ×1.5 per failure, at most 15 s, ±20 % jitter),
// resuming with ?since=SEQ&epoch=EPOCH so that a short outage costs at most
// one small catch-up message.
//
//   import { connect } from "/statecast.js";
//   const viewer = connect({
//     onState(session, change) { render(session); },
//     onStatus(status) { show(status.state); },   // connecting, connected, reconnecting, disconnected
//   });
//   // later: viewer.disconnect();                 // close code 1000, never reconnects
//
// The pure parts (backoff, whitelist, URLs, applying envelopes) are exported
// too, so apps and tests can use them without a socket.

/** Default reconnect schedule: 2 s, ×1.5 per failure, at most 15 s, ±20 % jitter. */
export const DEFAULT_BACKOFF = Object.freeze({ initialMs: 2000, factor: 1.5, maxMs: 15000, jitter: 0.2 });

/** Close code of an intentional close (the user quit); never followed by a reconnect. */
export const NORMAL_CLOSURE = 1000;

/** The field types a schema may name (`any` accepts every value, `null` included). */
export const FIELD_TYPES = Object.freeze(["number", "integer", "string", "boolean", "object", "array", "any"]);

// ---------------------------------------------------------------------------
// Reconnect backoff
// ---------------------------------------------------------------------------

function backoffOptions(options) {
  const merged = { ...DEFAULT_BACKOFF, ...(options || {}) };
  if (merged.jitter === false || merged.jitter === null || merged.jitter === undefined) merged.jitter = 0;
  if (merged.jitter === true) merged.jitter = DEFAULT_BACKOFF.jitter;
  merged.jitter = Math.min(Math.max(Number(merged.jitter) || 0, 0), 1);
  return merged;
}

/**
 * The delay in ms before reconnect attempt `failure` (0-based), before jitter:
 * 2000, 3000, 4500, 6750, 10125, 15000, 15000, … with the defaults.
 */
export function backoffBaseDelay(failure, options) {
  const { initialMs, factor, maxMs } = backoffOptions(options);
  const n = Math.max(0, Math.floor(failure));
  let delay = initialMs;
  for (let i = 0; i < n && delay < maxMs; i++) delay *= factor;
  return Math.min(delay, maxMs);
}

/** The [lowest, highest] delay in ms that jitter can give for attempt `failure`. */
export function backoffRange(failure, options) {
  const { jitter } = backoffOptions(options);
  const base = backoffBaseDelay(failure, options);
  return [base * (1 - jitter), base * (1 + jitter)];
}

/**
 * The delay in ms before reconnect attempt `failure` (0-based): the base delay
 * scaled by a uniform factor in [1 - jitter, 1 + jitter]. `random` returns a
 * number in [0, 1), like Math.random. With `jitter: 0` (or false) the delay is exact.
 */
export function backoffDelay(failure, options, random = Math.random) {
  const { jitter } = backoffOptions(options);
  const base = backoffBaseDelay(failure, options);
  if (jitter === 0) return base;
  const r = Math.min(Math.max(Number(random()) || 0, 0), 1);
  return base * (1 + (2 * r - 1) * jitter);
}

// ---------------------------------------------------------------------------
// Whitelist
// ---------------------------------------------------------------------------

/** The JSON type name of a value: null, boolean, number, string, array or object. */
export function jsonType(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  const type = typeof value;
  if (type === "boolean" || type === "number" || type === "string" || type === "object") return type;
  return "undefined";
}

/** Whether `value` has the field type `type` (one of FIELD_TYPES). */
export function typeAccepts(type, value) {
  switch (type) {
    case "any": return true;
    case "number": return typeof value === "number" && Number.isFinite(value);
    case "integer": return typeof value === "number" && Number.isInteger(value);
    default: return jsonType(value) === type;
  }
}

/**
 * A schema (a Map from config key to field type) from an object such as
 * {"speed": "number", "mode": "string"}, the same wrapped as {"fields": {…}},
 * a Map, or an array of "name:type" specs. Throws a TypeError naming the
 * problem for an unknown type.
 */
export function parseSchema(spec) {
  const schema = new Map();
  const add = (name, type) => {
    const lowered = String(type).trim().toLowerCase();
    if (!FIELD_TYPES.includes(lowered)) {
      throw new TypeError(`schema field "${name}" has the unknown type "${type}"; use one of ${FIELD_TYPES.join(", ")}`);
    }
    schema.set(String(name), lowered);
  };
  if (spec instanceof Map) {
    for (const [name, type] of spec) add(name, type);
  } else if (Array.isArray(spec)) {
    for (const item of spec) {
      const text = String(item);
      const colon = text.lastIndexOf(":");
      if (colon < 0) throw new TypeError(`schema field spec "${text}" has no ":"; write NAME:TYPE, e.g. speed:number`);
      add(text.slice(0, colon).trim(), text.slice(colon + 1));
    }
  } else if (spec && typeof spec === "object") {
    let members = spec;
    const keys = Object.keys(spec);
    if (keys.length === 1 && keys[0] === "fields" && jsonType(spec.fields) === "object") members = spec.fields;
    for (const name of Object.keys(members)) add(name, members[name]);
  } else {
    throw new TypeError("a schema is an object such as {\"speed\": \"number\"}, a Map, or an array of \"name:type\"");
  }
  return schema;
}

/**
 * The schema implied by a full state's config: every number is "number"
 * (never "integer": JSON does not tell 1 from 1.0), a null is "any" (there is
 * no type to learn), everything else its own JSON type.
 */
export function deriveSchema(config) {
  const schema = new Map();
  if (jsonType(config) !== "object") return schema;
  for (const key of Object.keys(config)) {
    const type = jsonType(config[key]);
    schema.set(key, type === "null" ? "any" : type);
  }
  return schema;
}

/**
 * Splits a config_update payload into the members `schema` accepts and the
 * rejected ones: { accepted: {…}, rejected: [{ key, reason }] }.
 */
export function filterConfig(schema, update) {
  const accepted = Object.create(null);
  const rejected = [];
  for (const key of Object.keys(update)) {
    const value = update[key];
    const type = schema.get(key);
    if (type === undefined) {
      rejected.push({ key, reason: `config key "${key}" rejected: not in the schema` });
    } else if (!typeAccepts(type, value)) {
      rejected.push({ key, reason: `config key "${key}" rejected: expected ${type}, got ${jsonType(value)}` });
    } else {
      accepted[key] = value;
    }
  }
  return { accepted, rejected };
}

// ---------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------

/**
 * The host's WebSocket URL for a page served by the host: ws:// for http://,
 * wss:// for https://, same host and port, path "/". A `token` in the page's
 * query is passed on.
 */
export function viewerURL(location = globalThis.location) {
  if (!location) throw new TypeError("viewerURL needs a location (the page's window.location, or a URL)");
  const page = new URL(String(location.href ?? location));
  const url = new URL("/", page);
  url.protocol = page.protocol === "https:" ? "wss:" : "ws:";
  const token = page.searchParams.get("token");
  if (token !== null) url.searchParams.set("token", token);
  return url.toString();
}

/**
 * `base` with the resume query: since=SEQ (and epoch=EPOCH when known) set,
 * any earlier since/epoch replaced, other parameters (such as token) kept.
 * Without a seq, `base` without since/epoch.
 */
export function resumeURL(base, position = {}) {
  const url = new URL(String(base));
  url.searchParams.delete("since");
  url.searchParams.delete("epoch");
  const { since, epoch } = position;
  if (since !== null && since !== undefined && Number.isFinite(Number(since))) {
    url.searchParams.set("since", String(since));
    if (epoch !== null && epoch !== undefined && epoch !== "") url.searchParams.set("epoch", String(epoch));
  }
  return url.toString();
}

// ---------------------------------------------------------------------------
// Applying envelopes
// ---------------------------------------------------------------------------

function isObject(value) {
  return jsonType(value) === "object";
}

function setOwn(target, key, value) {
  // defineProperty, so a key such as "__proto__" is data, not a prototype change.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function copyObject(source) {
  const copy = {};
  for (const key of Object.keys(source)) setOwn(copy, key, source[key]);
  return copy;
}

/** Deep JSON equality. */
export function jsonEqual(a, b) {
  if (a === b) return true;
  const ta = jsonType(a);
  if (ta !== jsonType(b)) return false;
  if (ta === "array") return a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  if (ta === "object") {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((key) => Object.prototype.hasOwnProperty.call(b, key) && jsonEqual(a[key], b[key]));
  }
  return false;
}

/**
 * The viewer's copy of the host's session and the rules for applying
 * envelopes to it (protocol §3), with no I/O.
 *
 * - session_update replaces the state and remembers seq and epoch.
 * - config_update merges only the keys the whitelist accepts (the explicit
 *   schema, else the one derived from the last full state's config).
 * - config_update before any session_update, unknown types, malformed JSON
 *   and invalid envelopes are dropped and counted, never thrown.
 * - seq and epoch follow every envelope after the first full state, a
 *   config_update of which nothing was accepted included (its position has
 *   been seen), so a resume never asks for it again.
 * - Under an explicit schema, each rejected key is reported once through
 *   `warn` (the host sends a field this viewer will never show).
 */
export class ViewerState {
  /**
   * `schema`: an explicit whitelist (anything parseSchema takes); omit it to derive one.
   * `warn(message)`: told once per key the explicit schema rejects.
   */
  constructor({ schema, warn } = {}) {
    this.explicitSchema = schema === undefined || schema === null ? null : parseSchema(schema);
    this.warn = warn ?? null;
    this.reportedRejections = new Set();
    this.derivedSchema = null;
    /** The current session ({name, data, config, metadata}), or null before the first full state. */
    this.session = null;
    /** The seq of the last envelope applied (or seen, after the first full state), or null. */
    this.seq = null;
    /** The epoch (host run) of what this state holds, or null. */
    this.epoch = null;
    /** What was received, applied and dropped. */
    this.counters = {
      received: 0, sessionUpdates: 0, configUpdates: 0, malformed: 0, unknownTypes: 0,
      configBeforeState: 0, rejectedFields: 0,
    };
  }

  /** The whitelist in force (a Map), or null before the first full state without a schema. */
  get schema() {
    return this.explicitSchema ?? this.derivedSchema;
  }

  /** The position to resume from: { since, epoch }. */
  get position() {
    return { since: this.seq, epoch: this.epoch };
  }

  /**
   * Applies one text message. Returns the change, or null if it changed
   * nothing; `dropped` (when given) is called with a reason for anything dropped.
   */
  applyText(text, dropped) {
    this.counters.received += 1;
    let envelope;
    try {
      envelope = JSON.parse(text);
    } catch (error) {
      this.counters.malformed += 1;
      dropped?.(`malformed JSON dropped (${error.message})`);
      return null;
    }
    return this.#apply(envelope, dropped);
  }

  /** Applies one already parsed envelope; see applyText. */
  applyEnvelope(envelope, dropped) {
    this.counters.received += 1;
    return this.#apply(envelope, dropped);
  }

  #apply(envelope, dropped) {
    const malformed = (why) => {
      this.counters.malformed += 1;
      dropped?.(`invalid envelope dropped: ${why}`);
      return null;
    };
    if (!isObject(envelope)) return malformed(`expected a JSON object, got ${jsonType(envelope)}`);
    if (typeof envelope.type !== "string") return malformed("no string member \"type\"");
    const seq = envelope.seq;
    if (seq !== undefined && !(typeof seq === "number" && Number.isInteger(seq))) {
      return malformed(`"seq" is ${jsonType(seq)}, not an integer`);
    }
    const payload = envelope.payload;

    if (envelope.type === "session_update") {
      if (!isObject(payload)) return malformed(`session_update payload is ${jsonType(payload)}, not an object`);
      if (typeof payload.name !== "string") return malformed("session_update payload has no string \"name\"");
      if (!isObject(payload.config)) return malformed("session_update payload has no object \"config\"");
      if (payload.metadata !== undefined && !isObject(payload.metadata)) {
        return malformed("session_update payload's \"metadata\" is not an object");
      }
      const session = {
        name: payload.name,
        data: payload.data === undefined ? null : payload.data,
        config: copyObject(payload.config),
        metadata: payload.metadata === undefined ? {} : payload.metadata,
      };
      const previous = this.session;
      const changedKeys = ["name", "data", "config", "metadata"].filter(
        (member) => previous === null || !jsonEqual(previous[member], session[member]),
      );
      this.session = session;
      this.derivedSchema = deriveSchema(session.config);
      if (seq !== undefined) this.seq = seq;
      this.epoch = typeof envelope.epoch === "string" ? envelope.epoch : null;
      this.counters.sessionUpdates += 1;
      return { type: "session_update", seq: seq ?? null, changedKeys, rejected: [], previous, session };
    }

    if (envelope.type === "config_update") {
      if (!isObject(payload)) return malformed(`config_update payload is ${jsonType(payload)}, not an object`);
      if (this.session === null) {
        this.counters.configBeforeState += 1;
        dropped?.("config_update before any session_update ignored");
        return null;
      }
      const { accepted, rejected } = filterConfig(this.schema, payload);
      this.counters.rejectedFields += rejected.length;
      for (const r of rejected) dropped?.(r.reason);
      if (this.explicitSchema !== null) {
        for (const r of rejected) {
          if (this.reportedRejections.has(r.key)) continue;
          this.reportedRejections.add(r.key);
          this.warn?.(`${r.reason}; add "${r.key}" to the schema with the type the host sends to follow it`);
        }
      }
      if (seq !== undefined) this.seq = seq;
      if (typeof envelope.epoch === "string") this.epoch = envelope.epoch;
      const changedKeys = Object.keys(accepted);
      if (changedKeys.length === 0) return null;
      const previous = this.session;
      const config = copyObject(previous.config);
      for (const key of changedKeys) setOwn(config, key, accepted[key]);
      this.session = { ...previous, config };
      this.counters.configUpdates += 1;
      return { type: "config_update", seq: seq ?? null, changedKeys, rejected, previous, session: this.session };
    }

    this.counters.unknownTypes += 1;
    dropped?.(`unknown message type "${envelope.type}" ignored`);
    return null;
  }
}

// ---------------------------------------------------------------------------
// The connection
// ---------------------------------------------------------------------------

/**
 * A viewer connection with automatic reconnect and resume.
 *
 * Options (all optional):
 * - url: the host's ws:// or wss:// URL (default: viewerURL(location), i.e. the page's own host),
 *   or an array of URLs (a host and its relays): when one fails the client moves to the
 *   next after failoverDelayMs; the backoff applies once every URL failed in a row
 * - failoverDelayMs: pause before trying the next URL (default 250, jittered like the backoff)
 * - connectTimeoutMs: give up a connection attempt that has not opened after this long (default 10000)
 * - schema: an explicit whitelist for config_update (see parseSchema); default: derived
 * - onState(session, change): after every applied change
 * - onStatus(status): on every connection change; status is
 *   { state: "connecting" | "connected" | "reconnecting" | "disconnected",
 *     attempt, delayMs, retryAt, code, reason }
 * - onDrop(reason): a message or field was dropped (for debugging)
 * - onWarn(message): a key the explicit schema rejects, once per key (default: console.warn)
 * - backoff: { initialMs, factor, maxMs, jitter } (jitter 0 or false: exact delays)
 * - resume: send since/epoch when reconnecting (default true)
 * - WebSocket, setTimeout, clearTimeout, random, now: injectable for tests
 */
export class StateCastClient {
  #options;
  #socket = null;
  #timer = null;
  #connectTimer = null;
  #failures = 0;
  #index = 0;
  #failedInRow = 0;
  #intentional = false;
  #status = { state: "disconnected", attempt: 0, delayMs: null, retryAt: null, code: null, reason: "" };

  constructor(options = {}) {
    const o = { ...options };
    o.WebSocket ??= globalThis.WebSocket;
    o.setTimeout ??= globalThis.setTimeout.bind(globalThis);
    o.clearTimeout ??= globalThis.clearTimeout.bind(globalThis);
    o.random ??= Math.random;
    o.now ??= Date.now;
    o.resume ??= true;
    o.backoff = backoffOptions(o.backoff);
    o.url ??= viewerURL();
    o.urls = (Array.isArray(o.url) ? o.url : [o.url]).map(String);
    if (o.urls.length === 0) throw new TypeError("options.url is an empty list: give at least one ws:// URL");
    o.url = o.urls[0];
    o.failoverDelayMs ??= 250;
    o.connectTimeoutMs ??= 10000;
    if (typeof o.WebSocket !== "function") throw new TypeError("no WebSocket implementation: pass options.WebSocket");
    this.#options = o;
    /** The applied state; `state.session` is the current session. */
    o.onWarn ??= (message) => globalThis.console?.warn(`statecast: ${message}`);
    this.state = new ViewerState({ schema: o.schema, warn: o.onWarn });
  }

  /** The URL this client connects (or will connect) to, without the resume query. */
  get url() {
    return this.#options.urls[this.#index];
  }

  /** Every URL this client may use, in order. */
  get urls() {
    return [...this.#options.urls];
  }

  /** The current session, or null before the first full state. */
  get session() {
    return this.state.session;
  }

  /** The last status reported to onStatus. */
  get status() {
    return { ...this.#status };
  }

  /** The URL of the next connection attempt (with since/epoch once a state is held). */
  nextURL() {
    if (!this.#options.resume || this.state.seq === null) return resumeURL(this.url, {});
    return resumeURL(this.url, this.state.position);
  }

  /** Opens the connection (again, after disconnect()). Does nothing while connected or connecting. */
  connect() {
    this.#intentional = false;
    if (this.#socket !== null) return this;
    this.#cancelTimer();
    this.#open();
    return this;
  }

  /**
   * While waiting to reconnect, tries at once (for example when the page
   * becomes visible again or the network comes back). Otherwise does nothing.
   */
  reconnectNow() {
    if (this.#intentional || this.#socket !== null || this.#timer === null) return this;
    this.#cancelTimer();
    this.#open();
    return this;
  }

  /** Closes with code 1000 and stops reconnecting. */
  disconnect() {
    this.#intentional = true;
    this.#cancelTimer();
    const socket = this.#socket;
    if (socket !== null) {
      this.#socket = null;
      this.#detach(socket);
      try {
        socket.close(NORMAL_CLOSURE, "viewer closed");
      } catch {
        // Already closing: nothing to do.
      }
    }
    this.#setStatus({ state: "disconnected", delayMs: null, retryAt: null, code: NORMAL_CLOSURE, reason: "closed by the viewer" });
    return this;
  }

  #open() {
    const o = this.#options;
    this.#setStatus({ state: "connecting", attempt: this.#failures, delayMs: null, retryAt: null });
    let socket;
    try {
      socket = new o.WebSocket(this.nextURL());
    } catch (error) {
      this.#scheduleReconnect(null, String(error && error.message ? error.message : error));
      return;
    }
    this.#socket = socket;
    // Node's WebSocket (undici) reports nothing at all when the connection is
    // closed before the handshake answer (a proxy in front of a restarting host
    // does that): without a deadline the client would stay connecting forever.
    this.#connectTimer = o.setTimeout(() => {
      this.#connectTimer = null;
      if (this.#socket === socket) this.#abandon(socket, "the handshake did not complete in time");
    }, o.connectTimeoutMs);
    socket.onopen = () => {
      if (this.#socket !== socket) return;
      this.#clearConnectTimer();
      this.#failures = 0;
      this.#failedInRow = 0;
      this.#setStatus({ state: "connected", attempt: 0, delayMs: null, retryAt: null, code: null, reason: "" });
    };
    socket.onmessage = (event) => {
      if (this.#socket !== socket) return;
      if (typeof event.data !== "string") {
        this.state.counters.received += 1;
        this.state.counters.malformed += 1;
        o.onDrop?.("binary message dropped");
        return;
      }
      const change = this.state.applyText(event.data, o.onDrop);
      if (change !== null) o.onState?.(change.session, change);
    };
    socket.onerror = () => {
      // Browsers close the socket and follow with a close event, where reconnecting
      // is decided. Node's WebSocket (undici) fires only this error when the
      // handshake fails on the network and stays CONNECTING: take it as the close.
      if (this.#socket !== socket || socket.readyState !== 0) return;
      this.#abandon(socket, "the connection failed during the handshake");
    };
    socket.onclose = (event) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#detach(socket);
      if (this.#intentional) return;
      this.#scheduleReconnect(event?.code ?? null, event?.reason ?? "");
    };
  }

  #detach(socket) {
    this.#clearConnectTimer();
    socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
  }

  /** Gives up a connection attempt that will report nothing more, and schedules the next one. */
  #abandon(socket, reason) {
    this.#socket = null;
    this.#detach(socket);
    try {
      socket.close();
    } catch {
      // Nothing to close.
    }
    if (!this.#intentional) this.#scheduleReconnect(null, reason);
  }

  #clearConnectTimer() {
    if (this.#connectTimer !== null) {
      this.#options.clearTimeout(this.#connectTimer);
      this.#connectTimer = null;
    }
  }

  #scheduleReconnect(code, reason) {
    const o = this.#options;
    let delayMs;
    this.#failedInRow += 1;
    if (o.urls.length > 1) this.#index = (this.#index + 1) % o.urls.length;
    if (o.urls.length > 1 && this.#failedInRow < o.urls.length) {
      // Another URL has not failed yet in this round: try it soon (resuming there).
      const jitter = o.backoff.jitter ? 1 + o.backoff.jitter * (2 * o.random() - 1) : 1;
      delayMs = Math.round(o.failoverDelayMs * jitter);
    } else {
      delayMs = backoffDelay(this.#failures, o.backoff, o.random);
      this.#failedInRow = 0;
      this.#failures += 1;
    }
    this.#setStatus({
      state: "reconnecting", attempt: this.#failures, delayMs, retryAt: o.now() + delayMs, code, reason,
    });
    this.#timer = o.setTimeout(() => {
      this.#timer = null;
      if (!this.#intentional && this.#socket === null) this.#open();
    }, delayMs);
  }

  #cancelTimer() {
    if (this.#timer !== null) {
      this.#options.clearTimeout(this.#timer);
      this.#timer = null;
    }
  }

  #setStatus(changes) {
    this.#status = { ...this.#status, ...changes };
    this.#options.onStatus?.(this.status);
  }
}

/** Creates a StateCastClient with `options` (see StateCastClient) and connects it. */
export function connect(options = {}) {
  return new StateCastClient(options).connect();
}

// web/statecast.js against Tests/Fixtures/viewer-position-cases.json, the cases the
// Swift ViewerState runs too (Tests/ViewerClientTests/ViewerPositionFixtureTests.swift).
// Run: node --test Tests/EndToEndTests/js/

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { ViewerState, jsonEqual } from "../../../web/statecast.js";

const fixture = JSON.parse(readFileSync(new URL("../../Fixtures/viewer-position-cases.json", import.meta.url), "utf8"));

test("the fixture file is read", () => {
  assert.ok(fixture.cases.length >= 6);
});

for (const c of fixture.cases) {
  test(c.name, () => {
    const state = new ViewerState({ schema: c.schema ?? undefined });
    for (const message of c.messages) state.applyEnvelope(message);
    assert.equal(state.seq, c.expect.seq);
    assert.equal(state.epoch, c.expect.epoch);
    const config = state.session === null ? null : state.session.config;
    assert.ok(jsonEqual(config, c.expect.config), `config ${JSON.stringify(config)} != ${JSON.stringify(c.expect.config)}`);
  });
}

test("under an explicit schema a rejected key is reported once, naming the key and the fix", () => {
  const warnings = [];
  const state = new ViewerState({ schema: { speed: "number" }, warn: (m) => warnings.push(m) });
  state.applyEnvelope({ type: "session_update", seq: 1, payload: { name: "n", config: { speed: 1 } } });
  state.applyEnvelope({ type: "config_update", seq: 2, payload: { gain: 1 } });
  state.applyEnvelope({ type: "config_update", seq: 3, payload: { gain: 2, speed: 2 } });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /"gain"/);
  assert.match(warnings[0], /add "gain" to the schema/);
});

test("a derived schema does not warn", () => {
  const warnings = [];
  const state = new ViewerState({ warn: (m) => warnings.push(m) });
  state.applyEnvelope({ type: "session_update", seq: 1, payload: { name: "n", config: { speed: 1 } } });
  state.applyEnvelope({ type: "config_update", seq: 2, payload: { gain: 1 } });
  assert.equal(warnings.length, 0);
});

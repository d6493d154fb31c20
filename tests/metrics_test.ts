// The metrics registry, its server and statecast's monitor. Expositions are parsed by Python's
// prometheus_client (./_prometheus.ts), not by a regex of ours.
import assert from "node:assert/strict";
import { MetricsRegistry, serveMetrics } from "../lib/metrics.ts";
import { failureReason, Monitor, UNHEALTHY_AFTER_FAILURES } from "../lib/_monitor.ts";
import type { RoundSummary } from "../lib/engine.ts";
import { emptyRoundSummary } from "../lib/round.ts";
import { StatecastError } from "../lib/errors.ts";
import { parseExposition, sampleValue } from "./_prometheus.ts";

function summary(over: Partial<RoundSummary> = {}): RoundSummary {
  return {
    ...emptyRoundSummary(),
    scanned: 1,
    processed: 1,
    committed: true,
    elapsedMs: 12,
    ...over,
  };
}

Deno.test("MetricsRegistry.render() writes counters, gauges and histograms a real parser reads", async () => {
  const registry = new MetricsRegistry();
  const rounds = registry.counter("x_rounds_total", "Rounds.\nSecond line \\ too.", ["outcome"]);
  rounds.inc({ outcome: "ok" });
  rounds.inc({ outcome: "ok" }, 2);
  rounds.inc({ outcome: 'a "quoted"\\ name\nwith a break' });
  const keys = registry.gauge("x_keys", "Keys.", ["target"]);
  keys.set(41, { target: "kafka/t" });
  const plain = registry.gauge("x_plain", "No labels.");
  plain.set(0.5);
  const duration = registry.histogram("x_duration_seconds", "Duration.", { buckets: [0.1, 1] });
  for (const v of [0.05, 0.5, 0.5, 7]) duration.observe(v);
  const families = await parseExposition(await registry.render());

  assert.deepEqual(families.map((f) => [f.name, f.type]), [
    ["x_rounds", "counter"],
    ["x_keys", "gauge"],
    ["x_plain", "gauge"],
    ["x_duration_seconds", "histogram"],
  ]);
  assert.equal(families[0]!.help, "Rounds.\nSecond line \\ too.");
  assert.equal(sampleValue(families, "x_rounds_total", { outcome: "ok" }), 3);
  assert.equal(
    sampleValue(families, "x_rounds_total", { outcome: 'a "quoted"\\ name\nwith a break' }),
    1,
  );
  assert.equal(sampleValue(families, "x_keys", { target: "kafka/t" }), 41);
  assert.equal(sampleValue(families, "x_plain"), 0.5);
  assert.equal(sampleValue(families, "x_duration_seconds_bucket", { le: "0.1" }), 1);
  assert.equal(sampleValue(families, "x_duration_seconds_bucket", { le: "1" }), 3);
  assert.equal(sampleValue(families, "x_duration_seconds_bucket", { le: "+Inf" }), 4);
  assert.equal(sampleValue(families, "x_duration_seconds_count"), 4);
  assert.equal(sampleValue(families, "x_duration_seconds_sum"), 8.05);
});

Deno.test("MetricsRegistry refuses a counter going down, a bad name and an unknown label", () => {
  const registry = new MetricsRegistry();
  const c = registry.counter("ok_total", "x", ["a"]);
  assert.throws(() => c.inc({ a: "1" }, -1), RangeError);
  assert.throws(() => c.inc({ b: "1" }), RangeError);
  assert.throws(() => registry.gauge("bad-name", "x"), RangeError);
  assert.throws(() => registry.gauge("ok_total", "x"), TypeError);
});

Deno.test("serveMetrics() serves /metrics and /healthz (200, then 503 with its reason) on 127.0.0.1", async () => {
  const registry = new MetricsRegistry();
  registry.counter("y_total", "Y.").inc();
  let health = { ok: true, reason: "watching" };
  await using server = await serveMetrics({ port: 0, registry, health: () => health });
  assert.equal(server.hostname, "127.0.0.1");
  const base = `http://127.0.0.1:${server.port}`;
  const metrics = await fetch(`${base}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  assert.equal(sampleValue(await parseExposition(await metrics.text()), "y_total"), 1);

  const ok = await fetch(`${base}/healthz`);
  assert.deepEqual([ok.status, await ok.text()], [200, "ok: watching\n"]);
  health = { ok: false, reason: "the source folder is gone" };
  const bad = await fetch(`${base}/healthz`);
  assert.deepEqual([bad.status, await bad.text()], [503, "unhealthy: the source folder is gone\n"]);
  const missing = await fetch(`${base}/nope`);
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
});

Deno.test("serveMetrics() names the address when the port is taken", async () => {
  const registry = new MetricsRegistry();
  await using first = await serveMetrics({
    port: 0,
    registry,
    health: () => ({ ok: true, reason: "" }),
  });
  await assert.rejects(
    serveMetrics({ port: first.port, registry, health: () => ({ ok: true, reason: "" }) }),
    (e: Error) => e instanceof StatecastError && e.message.includes(`127.0.0.1:${first.port}`),
  );
});

Deno.test("Monitor.health() turns unhealthy after failed rounds in a row, and healthy again", () => {
  const monitor = new Monitor();
  assert.equal(monitor.health().ok, true, "catching up");
  monitor.watching(true, "watching");
  monitor.round(summary());
  assert.match(monitor.health().reason, /^watching; last round ok/);
  const refused = new Error("Connection error: connect ECONNREFUSED 127.0.0.1:9");
  for (let i = 1; i < UNHEALTHY_AFTER_FAILURES; i++) {
    monitor.round(summary({ applyError: refused, committed: false }));
    const h = monitor.health();
    assert.equal(h.ok, true, `a retry is within bounds after ${i} failure(s)`);
    assert.match(h.reason, /the last round failed, retrying/);
  }
  monitor.roundError(refused);
  const down = monitor.health();
  assert.equal(down.ok, false);
  assert.match(down.reason, /^3 rounds in a row failed .*ECONNREFUSED 127\.0\.0\.1:9$/);
  assert.doesNotMatch(down.reason, /\n/);
  monitor.round(summary({ failed: [{ path: "a.csv", error: new Error("x") }] }));
  assert.equal(monitor.health().ok, true, "a failed file is data to fix, not ill health");
});

Deno.test("Monitor.health() is unhealthy while not watching, or when the lock was lost", () => {
  const monitor = new Monitor();
  monitor.watching(false, 'the source folder "data" is gone');
  assert.deepEqual(monitor.health(), { ok: false, reason: 'the source folder "data" is gone' });
  monitor.watching(true, "watching");
  assert.equal(monitor.health().ok, true);
  monitor.lockLost();
  assert.equal(monitor.health().ok, false);
});

Deno.test("Monitor counts rounds and failed files by reason; a round that looked at a file clears it", async () => {
  let keysRead = 0;
  const monitor = new Monitor({
    files: () => 2,
    inDoubt: () => 0,
    keys: () => {
      keysRead++;
      return Promise.resolve([{ target: "t", keys: 5 }]);
    },
  });
  const parse = new StatecastError('Cannot parse "a.csv" line 3: x', { path: "a.csv", line: 3 });
  monitor.round(summary({
    upserts: 4,
    failed: [{ path: "a.csv", error: parse }, { path: "b.csv", error: parse, blockedBy: "a.csv" }],
  }));
  let families = await parseExposition(await monitor.registry.render());
  assert.equal(sampleValue(families, "statecast_rounds_total", { outcome: "files_failed" }), 1);
  assert.equal(sampleValue(families, "statecast_rounds_total", { outcome: "ok" }), 0);
  assert.equal(sampleValue(families, "statecast_upserts_total"), 4);
  assert.equal(sampleValue(families, "statecast_failed_files", { reason: "invalid" }), 1);
  assert.equal(sampleValue(families, "statecast_failed_files", { reason: "waiting" }), 1);
  assert.equal(sampleValue(families, "statecast_keys", { target: "t" }), 5);
  assert.equal(sampleValue(families, "statecast_files"), 2);
  assert.equal(sampleValue(families, "statecast_round_duration_seconds_count"), 1);

  // A live round that looked at b.csv only: a.csv still fails.
  monitor.round(summary(), (path) => path === "b.csv");
  families = await parseExposition(await monitor.registry.render());
  assert.equal(sampleValue(families, "statecast_failed_files", { reason: "invalid" }), 1);
  assert.equal(sampleValue(families, "statecast_failed_files", { reason: "waiting" }), 0);
  await monitor.registry.render();
  assert.equal(keysRead, 2, "keys are read from the store once per round, not per scrape");
});

Deno.test("failureReason() tells invalid, unreadable, waiting and refused files apart", () => {
  const errno = Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" });
  const cases: Array<[unknown, string | undefined, string]> = [
    [new StatecastError("x", { line: 2 }), undefined, "invalid"],
    [new StatecastError("x", { cause: errno }), undefined, "unreadable"],
    [new StatecastError("x", { refused: true }), undefined, "refused"],
    [new StatecastError("x", { line: 2 }), "b.csv", "waiting"],
    [new TypeError("user code"), undefined, "error"],
  ];
  for (const [error, blockedBy, reason] of cases) {
    const failure = blockedBy === undefined
      ? { path: "a", error }
      : { path: "a", error, blockedBy };
    assert.equal(failureReason(failure), reason);
  }
});

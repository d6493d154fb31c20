// What `status` prints, from a report: counts read as English (1 file, 1 key; 2 files, 0 keys).
import assert from "node:assert/strict";
import { counted, formatStatus, type StatusReport } from "../lib/_status.ts";

Deno.test("counted() is singular for 1 only", () => {
  assert.deepEqual([0, 1, 2].map((n) => counted(n, "target")), [
    "0 targets",
    "1 target",
    "2 targets",
  ]);
});

Deno.test("formatStatus() says 1 file and 1 key, not 1 files and 1 keys", () => {
  const report: StatusReport = {
    app: "job",
    state: "file:state.db",
    running: null,
    targets: [{ target: "kafka:k/rows", keys: 1, files: 1, retracting: 0, inDoubt: 0 }],
    files: [{
      path: "a.csv",
      state: "ok",
      keys: { "kafka:k/rows": 1 },
      lastRun: null,
      memo: null,
      error: null,
    }],
  };
  assert.deepEqual(formatStatus(report, { detailed: false }).slice(2), [
    "1 file",
    "target kafka:k/rows: 1 key from 1 file",
    "  a.csv: 1 key, never committed, ok",
  ]);
});

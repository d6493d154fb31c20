// The words a user meets before anything runs: a mistyped option, a state path without `file:`,
// a broker address without a port. Each message says what to type instead.
import assert from "node:assert/strict";
import { usageProblem } from "../lib/app.ts";
import { parseBrokers } from "../lib/kafka_target.ts";
import { StateStore, stateUrlProblem } from "../lib/state_store.ts";

Deno.test("usageProblem() accepts every option of --help, in each of its forms", () => {
  for (
    const argv of [
      [],
      ["--live", "--dry-run", "--allow-deletes", "-q"],
      ["-L", "status"],
      ["--state", "file:x.db", "--env-file=.env.prod", "--log-format", "json"],
      ["--reset"],
      ["-hV"],
    ]
  ) {
    assert.equal(usageProblem(argv), undefined, argv.join(" "));
  }
});

Deno.test("usageProblem() names an unknown option and the one that was probably meant", () => {
  assert.equal(usageProblem(["--dryrun"]), "unknown option --dryrun; did you mean --dry-run?");
  assert.equal(usageProblem(["--dry"]), "unknown option --dry; did you mean --dry-run?");
  assert.equal(
    usageProblem(["--env_file", "x"]),
    "unknown option --env_file; did you mean --env-file?",
  );
  assert.equal(usageProblem(["--quite"]), "unknown option --quite; did you mean --quiet?");
  assert.equal(usageProblem(["--frobnicate"]), "unknown option --frobnicate");
  assert.equal(usageProblem(["-x"]), "unknown option -x");
});

Deno.test("usageProblem() says how to give a value, and that a flag takes none", () => {
  assert.equal(usageProblem(["--state"]), "--state needs a value: --state file:path/to/state.db");
  assert.equal(
    usageProblem(["--state", "--quiet"]),
    '--state needs a value, got the option "--quiet": --state file:path/to/state.db ' +
      "(or --state=--quiet if that is the value)",
  );
  assert.equal(
    usageProblem(["--quiet=3"]),
    "--quiet takes no value: write --quiet alone, not --quiet=3",
  );
});

Deno.test("stateUrlProblem() suggests file: for a bare path, and StateStore.open() refuses it", async () => {
  assert.equal(
    stateUrlProblem("state.db"),
    'the state store "state.db" is not a URL; for a local file write "file:state.db"',
  );
  assert.equal(
    stateUrlProblem("/var/lib/job/state.db"),
    'the state store "/var/lib/job/state.db" is not a URL; for a local file write "file:/var/lib/job/state.db"',
  );
  for (const ok of ["file:state.db", ":memory:", "libsql://db.example?authToken=x", "http://h/"]) {
    assert.equal(stateUrlProblem(ok), undefined, ok);
  }
  await assert.rejects(StateStore.open("state.db"), /write "file:state\.db"/);
});

Deno.test("parseBrokers() splits host:port addresses and says what to write for one without a port", () => {
  assert.deepEqual(parseBrokers("a:9092, b:9093,"), ["a:9092", "b:9093"]);
  assert.deepEqual(parseBrokers("[::1]:9092"), ["[::1]:9092"]);
  assert.throws(
    () => parseBrokers("127.0.0.1"),
    {
      name: "TypeError",
      message: 'KAFKA_BOOTSTRAP_SERVERS=127.0.0.1: "127.0.0.1" has no port; write host:port, ' +
        "e.g. KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 (comma-separated for several brokers)",
    },
  );
  assert.throws(
    () => parseBrokers("a:9092,b"),
    /"b" has no port; write host:port, e\.g\. KAFKA_BOOTSTRAP_SERVERS=b:9092/,
  );
  assert.throws(() => parseBrokers("a:99999"), /"a:99999" does not end in a port from 1 to 65535/);
  assert.throws(() => parseBrokers(" , "), /KAFKA_BOOTSTRAP_SERVERS is empty: write host:port/);
  assert.throws(() => parseBrokers("x", "BROKERS"), /^TypeError: BROKERS=x: "x" has no port/);
});

Deno.test("usageProblem() accepts --rerun (repeated, inline) and drop's --yes", () => {
  for (
    const argv of [
      ["--rerun", "orders/*.csv", "--rerun=b.csv,c.csv"],
      ["drop", "--yes", "--dry-run", "-v"],
      ["drop", "-y"],
    ]
  ) {
    assert.equal(usageProblem(argv), undefined, argv.join(" "));
  }
  assert.equal(usageProblem(["--rerun"]), "--rerun needs a value: --rerun 'orders/*.csv'");
});

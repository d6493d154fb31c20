// SASL PLAIN over SSL, end to end: main.ts with KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD against
// the SASL_SSL listener of the broker that scripts/kafka started (a certificate from a throwaway CA,
// trusted through DENO_CERT), read back with kcat on the plaintext listener. A wrong password
// fails fast, and no password is ever printed.
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type SaslSettings, saslSettings } from "./_kafka_readback.ts";
import { pipeline, type Run } from "./_pipeline.ts";

/** The listener's settings, or a failure that says how to get them. */
async function sasl(): Promise<SaslSettings> {
  const settings = await saslSettings();
  assert.ok(
    settings,
    "no SASL_SSL settings in .cache/kafka/sasl-PORT.env (PORT: KAFKA_PORT, else the port of " +
      "KAFKA_BOOTSTRAP_SERVERS): run scripts/kafka up; a broker started by an older " +
      "scripts/kafka has no SASL_SSL listener: scripts/kafka down && scripts/kafka up",
  );
  const colon = settings.brokers.lastIndexOf(":");
  const [hostname, port] = [settings.brokers.slice(0, colon), settings.brokers.slice(colon + 1)];
  try {
    (await Deno.connect({ hostname, port: Number(port) })).close();
  } catch (e) {
    assert.fail(
      `nothing listens on the SASL_SSL address ${settings.brokers} (${e}): the broker was ` +
        "started without it; restart it: scripts/kafka down && scripts/kafka up",
    );
  }
  return settings;
}

/** Environment for main.ts: the SASL_SSL listener, the user, the CA trusted by Deno. */
function saslEnv(s: SaslSettings, password = s.password): Record<string, string> {
  return {
    KAFKA_BOOTSTRAP_SERVERS: s.brokers,
    KAFKA_SASL_USERNAME: s.username,
    KAFKA_SASL_PASSWORD: password,
    DENO_CERT: s.caFile,
  };
}

function assertNoSecret(r: Run, ...secrets: string[]) {
  for (const secret of secrets) {
    assert.ok(!r.stdout.includes(secret), "a password is on stdout");
    assert.ok(!r.stderr.includes(secret), "a password is on stderr");
  }
}

/** Runs `run` and fails (rather than hangs) if it takes longer than `ms`. */
async function within<T>(ms: number, what: string, run: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([run(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// `unset` applies after `env`: the cases that trust the CA through DENO_CERT unset only the others.
const OTHER_TRUST = ["NODE_EXTRA_CA_CERTS"];
const SASL_VARS = ["KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"];

Deno.test("main.ts sends over SASL PLAIN + TLS with KAFKA_SASL_USERNAME/PASSWORD", async () => {
  const s = await sasl();
  await using p = await pipeline("sasl");
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  const r = await p.ok({ env: saslEnv(s), unset: OTHER_TRUST });
  assert.match(r.stderr, /1 files scanned, 0 unchanged, 0 failed; 2 upserts/);
  assertNoSecret(r, s.password);
  assert.deepEqual(await p.fresh(), ['k1={"id":"k1","v":"1"}', 'k2={"id":"k2","v":"2"}']);
  // Nothing of the credentials is kept in the state store.
  for (const name of await readdir(p.dir)) {
    if (name === "data") continue;
    const bytes = await readFile(join(p.dir, name));
    assert.ok(!bytes.includes(s.password), `the password is in ${name}`);
  }
  // Changing brokers or credentials re-sends nothing: the plaintext listener, no SASL.
  const again = await p.ok({ unset: SASL_VARS });
  assert.match(again.stderr, /1 files scanned, 1 unchanged/);
  assert.deepEqual(await p.fresh(), []);
});

Deno.test("main.ts over SASL_SSL refuses a broker certificate from a CA it does not trust", async () => {
  const s = await sasl();
  await using p = await pipeline("sasl-untrusted");
  await p.write("a.csv", "id,v\nk1,1\n");
  const env = saslEnv(s);
  delete env.DENO_CERT;
  const unset = ["DENO_CERT", ...OTHER_TRUST];
  const r = await within(30_000, "main.ts", () => p.run({ env, unset }));
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /certificate/);
  assertNoSecret(r, s.password);
  assert.deepEqual(await p.fresh(), []);
});

Deno.test("main.ts with a wrong SASL password fails fast and prints no password", async () => {
  const s = await sasl();
  await using p = await pipeline("sasl-wrong");
  await p.write("a.csv", "id,v\nk1,1\n");
  const wrong = `wrong-${crypto.randomUUID()}`;
  const started = performance.now();
  const r = await within(
    30_000,
    "main.ts",
    () => p.run({ env: saslEnv(s, wrong), unset: OTHER_TRUST }),
  );
  const elapsed = performance.now() - started;
  assert.notEqual(r.code, 0, r.stderr);
  assert.match(r.stderr, /SASL PLAIN authentication failed: Authentication failed/);
  assert.ok(elapsed < 20_000, `took ${Math.round(elapsed)} ms`);
  assertNoSecret(r, wrong, s.password);
  assert.deepEqual(await p.fresh(), []);
});

Deno.test("main.ts --log-format json with a wrong SASL password prints no password", async () => {
  const s = await sasl();
  await using p = await pipeline("sasl-json");
  await p.write("a.csv", "id,v\nk1,1\n");
  const wrong = `wrong-${crypto.randomUUID()}`;
  const r = await within(
    30_000,
    "main.ts",
    () => p.run({ env: saslEnv(s, wrong), unset: OTHER_TRUST, args: ["--log-format", "json"] }),
  );
  assert.notEqual(r.code, 0, r.stderr);
  const lines = r.stderr.trim().split("\n").map((line) => JSON.parse(line));
  assert.ok(
    lines.some((l) => l.level === "error" && /SASL PLAIN authentication failed/.test(l.msg)),
    r.stderr,
  );
  assertNoSecret(r, wrong, s.password);
});

// SASL over TLS, end to end: main.ts run with `--env-file <a credentials file>` and nothing else,
// against the SASL_SSL listener of the broker that scripts/kafka started (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512; a certificate from a throwaway CA, trusted through KAFKA_SSL_CA in the file),
// under Deno and Bun, with kafkajs and @platformatic/kafka; read back with kcat on the plaintext
// listener. A wrong password fails fast, names the user and the mechanism, and no password is
// ever printed.
import assert from "node:assert/strict";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { brokerPort, type SaslCredentials, saslCredentials } from "./_kafka_readback.ts";
import type { SaslMechanismName } from "./_kafka_readback.ts";
import { type Pipeline, pipeline, type Run, type RunOptions } from "./_pipeline.ts";

const MECHANISMS: readonly SaslMechanismName[] = ["plain", "scram-sha-256", "scram-sha-512"];

/** The credentials file of `mechanism`, or a failure that says how to get it. */
async function credentials(mechanism: SaslMechanismName): Promise<SaslCredentials> {
  const found = await saslCredentials(mechanism);
  const port = brokerPort();
  assert.ok(
    found,
    `no credentials file .cache/kafka/sasl-${mechanism}-${port}.env (the port: KAFKA_PORT, else ` +
      "the port of KAFKA_BOOTSTRAP_SERVERS): run scripts/kafka up; a broker started by an older " +
      `scripts/kafka has no SCRAM: KAFKA_PORT=${port} scripts/kafka down && scripts/kafka up`,
  );
  const colon = found.brokers.lastIndexOf(":");
  try {
    const hostname = found.brokers.slice(0, colon);
    (await Deno.connect({ hostname, port: Number(found.brokers.slice(colon + 1)) })).close();
  } catch (e) {
    assert.fail(
      `nothing listens on the SASL_SSL address ${found.brokers} (${e}): the broker was ` +
        `started without it; restart it: KAFKA_PORT=${port} scripts/kafka down && scripts/kafka up`,
    );
  }
  return found;
}

// What a job could otherwise pick up from the environment: the run must get all of it from the
// credentials file (the caller's KAFKA_BOOTSTRAP_SERVERS would win over the file's).
const FROM_THE_FILE = [
  "KAFKA_BOOTSTRAP_SERVERS",
  "KAFKA_SASL_MECHANISM",
  "KAFKA_SASL_USERNAME",
  "KAFKA_SASL_PASSWORD",
  "KAFKA_SSL",
  "KAFKA_SSL_CA",
  "DENO_CERT",
  "NODE_EXTRA_CA_CERTS",
];

/** main.ts with `--env-file c.file` and nothing else (`env` still wins over the file). */
function withFile(c: SaslCredentials, options: RunOptions = {}): RunOptions {
  const env = options.env ?? {};
  return {
    ...options,
    env,
    unset: FROM_THE_FILE.filter((name) => !(name in env)),
    args: ["--env-file", c.file, ...(options.args ?? [])],
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

/** One run through the credentials file of `mechanism` that sends two rows, read back by kcat. */
async function sendsThrough(
  p: Pipeline,
  mechanism: SaslMechanismName,
  runtime: "deno" | "bun",
  client: "kafkajs" | "platformatic" = "kafkajs",
): Promise<SaslCredentials> {
  const c = await credentials(mechanism);
  await p.write("a.csv", "id,v\nk1,1\nk2,2\n");
  const env = { KAFKA_CLIENT: client };
  const r = await p.ok(withFile(c, { runtime, env }));
  assert.match(r.stderr, /1 files scanned, 0 unchanged, 0 failed; 2 upserts/);
  assertNoSecret(r, c.password);
  assert.deepEqual(await p.fresh(), ['k1={"id":"k1","v":"1"}', 'k2={"id":"k2","v":"2"}']);
  return c;
}

for (
  const [mechanism, runtime, client] of [
    ["plain", "deno", "kafkajs"],
    ["plain", "bun", "kafkajs"],
    ["scram-sha-512", "deno", "kafkajs"],
    ["scram-sha-512", "bun", "kafkajs"],
    ["scram-sha-256", "deno", "kafkajs"],
    ["scram-sha-512", "bun", "platformatic"],
    ["scram-sha-256", "deno", "platformatic"],
  ] as const
) {
  Deno.test(`main.ts --env-file <${mechanism} credentials> sends under ${runtime} (${client})`, async () => {
    await using p = await pipeline(`sasl-${mechanism}-${runtime}-${client}`);
    await sendsThrough(p, mechanism, runtime, client);
  });
}

Deno.test("SASL credentials are not stored, and changing them re-sends nothing", async () => {
  await using p = await pipeline("sasl-store");
  const c = await sendsThrough(p, "scram-sha-512", "deno");
  for (const name of await readdir(p.dir)) {
    if (name === "data") continue;
    const bytes = await readFile(join(p.dir, name));
    assert.ok(!bytes.includes(c.password), `the password is in ${name}`);
  }
  // The plaintext listener, no SASL: the same rows, nothing sent.
  const again = await p.ok({ unset: ["KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"] });
  assert.match(again.stderr, /1 files scanned, 1 unchanged/);
  assert.deepEqual(await p.fresh(), []);
});

Deno.test("scripts/kafka wrote one private credentials file per mechanism", async () => {
  const scram = await credentials("scram-sha-512");
  for (const mechanism of MECHANISMS) {
    const c = await credentials(mechanism);
    assert.equal(c.mechanism, mechanism);
    assert.equal(c.brokers, scram.brokers);
    assert.equal((await stat(c.file)).mode & 0o777, 0o600, `${c.file} is not mode 0600`);
    assert.match(await readFile(c.caFile, "utf8"), /^-----BEGIN CERTIFICATE-----$/m);
    assert.ok(c.caFile.startsWith("/"), `KAFKA_SSL_CA=${c.caFile} is not absolute`);
  }
  assert.equal((await credentials("scram-sha-256")).password, scram.password);
  assert.notEqual((await credentials("plain")).username, scram.username);
});

Deno.test("scripts/kafka status names the credentials files and never the password", async () => {
  const script = new URL("../scripts/kafka", import.meta.url).pathname;
  const out = await new Deno.Command("bash", {
    args: [script, "status"],
    env: { KAFKA_PORT: brokerPort() },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  for (const mechanism of MECHANISMS) {
    const c = await credentials(mechanism);
    const line = text.split("\n").find((l) => l.includes(c.file));
    assert.ok(line?.includes("credentials"), `no "credentials" line with ${c.file}:\n${text}`);
    assertNoSecret({ code: 0, stdout: text, stderr: "" }, c.password);
  }
});

Deno.test("a .env with the CA's PEM itself, quoted over several lines, works as is", async () => {
  const c = await credentials("scram-sha-512");
  await using p = await pipeline("sasl-inline-pem");
  await p.write("a.csv", "id,v\nk1,1\n");
  const pem = (await readFile(c.caFile, "utf8")).trim();
  assert.ok(pem.split("\n").length > 3, "the CA's PEM is one line");
  const lines = (await readFile(c.file, "utf8")).split("\n");
  const env = lines.map((line) =>
    line.startsWith("KAFKA_SSL_CA=") ? `KAFKA_SSL_CA="${pem}"` : line
  );
  const file = join(p.dir, "inline.env");
  await writeFile(file, env.join("\n"), { mode: 0o600 });
  const r = await p.ok(withFile({ ...c, file }));
  assertNoSecret(r, c.password);
  assert.deepEqual(await p.fresh(), ['k1={"id":"k1","v":"1"}']);
});

Deno.test("main.ts over SASL_SSL refuses a broker certificate without KAFKA_SSL_CA", async () => {
  const c = await credentials("scram-sha-512");
  await using p = await pipeline("sasl-untrusted");
  await p.write("a.csv", "id,v\nk1,1\n");
  // A set variable wins over the file: an empty one means "no private CA", system CAs only.
  const r = await within(
    30_000,
    "main.ts",
    () => p.run(withFile(c, { env: { KAFKA_SSL_CA: "" } })),
  );
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /certificate/);
  assertNoSecret(r, c.password);
  assert.deepEqual(await p.fresh(), []);
});

for (const [mechanism, runtime] of [["scram-sha-512", "bun"], ["plain", "deno"]] as const) {
  Deno.test(`main.ts with a wrong ${mechanism} password names user and mechanism (${runtime})`, async () => {
    const c = await credentials(mechanism);
    await using p = await pipeline(`sasl-wrong-${mechanism}`);
    await p.write("a.csv", "id,v\nk1,1\n");
    const wrong = `wrong-${crypto.randomUUID()}`;
    const started = performance.now();
    const r = await within(
      30_000,
      "main.ts",
      () => p.run(withFile(c, { runtime, env: { KAFKA_SASL_PASSWORD: wrong } })),
    );
    const elapsed = performance.now() - started;
    assert.notEqual(r.code, 0, r.stderr);
    const upper = mechanism.toUpperCase();
    assert.ok(r.stderr.includes(`as "${c.username}" (SASL ${upper})`), r.stderr);
    assert.match(r.stderr, /authentication failed/i);
    assert.ok(elapsed < 20_000, `took ${Math.round(elapsed)} ms`);
    assertNoSecret(r, wrong, c.password);
    assert.deepEqual(await p.fresh(), []);
  });
}

Deno.test("main.ts --log-format json with a wrong SASL password prints no password", async () => {
  const c = await credentials("scram-sha-512");
  await using p = await pipeline("sasl-json");
  await p.write("a.csv", "id,v\nk1,1\n");
  const wrong = `wrong-${crypto.randomUUID()}`;
  const r = await within(
    30_000,
    "main.ts",
    () =>
      p.run(withFile(c, { env: { KAFKA_SASL_PASSWORD: wrong }, args: ["--log-format", "json"] })),
  );
  assert.notEqual(r.code, 0, r.stderr);
  const lines = r.stderr.trim().split("\n").map((line) => JSON.parse(line));
  assert.ok(
    lines.some((l) =>
      l.level === "error" && /SASL SCRAM.SHA.?512 authentication failed/.test(l.msg)
    ),
    r.stderr,
  );
  assertNoSecret(r, wrong, c.password);
});

import assert from "node:assert/strict";
import { kafka } from "../lib/mod.ts";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIBfzCCASWgAwIBAgIU\n-----END CERTIFICATE-----\n";
const SCRAM = {
  KAFKA_BOOTSTRAP_SERVERS: "kafka-1:9096",
  KAFKA_SASL_MECHANISM: "SCRAM-SHA-256",
  KAFKA_SASL_USERNAME: "app",
  KAFKA_SASL_PASSWORD: "secret",
};

Deno.test("connectOptionsFromEnv() takes KAFKA_SSL_CA as the PEM text itself", () => {
  const options = kafka.connectOptionsFromEnv({ ...SCRAM, KAFKA_SSL_CA: PEM });
  assert.deepEqual(options.tls, { ca: PEM });
  assert.deepEqual(options.sasl, {
    mechanism: "scram-sha-256",
    username: "app",
    password: "secret",
  });
});

Deno.test("connectOptionsFromEnv() reads KAFKA_SSL_CA as a file path", async () => {
  const file = await Deno.makeTempFile({ suffix: ".pem" });
  try {
    await Deno.writeTextFile(file, PEM);
    assert.deepEqual(kafka.connectOptionsFromEnv({ ...SCRAM, KAFKA_SSL_CA: file }).tls, {
      ca: PEM,
    });
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("connectOptionsFromEnv() refuses a PEM cut to its first line, saying to quote it", () => {
  assert.throws(
    () => kafka.connectOptionsFromEnv({ ...SCRAM, KAFKA_SSL_CA: "-----BEGIN CERTIFICATE-----" }),
    /KAFKA_SSL_CA holds a PEM certificate without its END CERTIFICATE line: in a \.env file, put the whole PEM in double quotes/,
  );
});

Deno.test("connectOptionsFromEnv(): KAFKA_SSL=false with a SASL user is SASL without TLS (a SASL_PLAINTEXT listener)", () => {
  const plaintext = kafka.connectOptionsFromEnv({ ...SCRAM, KAFKA_SSL: "false" });
  assert.equal(plaintext.tls, undefined);
  assert.equal(plaintext.sasl?.mechanism, "scram-sha-256");
  assert.equal(kafka.connectOptionsFromEnv(SCRAM).tls, true, "a SASL user alone implies TLS");
  assert.equal(kafka.connectOptionsFromEnv({ ...SCRAM, KAFKA_SSL: "true" }).tls, true);
  assert.throws(
    () => kafka.connectOptionsFromEnv({ ...SCRAM, KAFKA_SSL: "false", KAFKA_SSL_CA: PEM }),
    /KAFKA_SSL=false turns TLS off, but KAFKA_SSL_CA is set/,
  );
  assert.throws(
    () => kafka.connectOptionsFromEnv({ KAFKA_SSL: "yes" }),
    /^TypeError: KAFKA_SSL must be true or false, got "yes"$/,
  );
});

Deno.test("connectOptionsFromEnv(): KAFKA_PRODUCE_PATH is direct or client, and refuses anything else", () => {
  assert.equal(kafka.connectOptionsFromEnv({}).producePath, undefined);
  assert.equal(kafka.connectOptionsFromEnv({ KAFKA_PRODUCE_PATH: "client" }).producePath, "client");
  assert.equal(kafka.connectOptionsFromEnv({ KAFKA_PRODUCE_PATH: "direct" }).producePath, "direct");
  assert.throws(
    () => kafka.connectOptionsFromEnv({ KAFKA_PRODUCE_PATH: "fast" }),
    /KAFKA_PRODUCE_PATH/,
  );
});

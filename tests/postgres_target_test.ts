// The table target's statements and error mapping, with a fake client that keeps what it was
// given. What a real server holds is checked end to end in postgres_e2e_test.ts.
import assert from "node:assert/strict";
import { collecting, Collector } from "../lib/_collector.ts";
import { ContextKey } from "../lib/context.ts";
import { StatecastError } from "../lib/errors.ts";
import { initFingerprints } from "../lib/fingerprint.ts";
import {
  type RowState,
  type SqlClient,
  type SqlQuery,
  type SqlRow,
  type TableState,
  TableTarget,
} from "../lib/postgres_target.ts";
import { type Change, type DeclaredState, setSourceLine } from "../lib/target.ts";

await initFingerprints();

const KEY = new ContextKey<SqlClient>("db");

/** Records every statement; `fail` makes the next transaction reject with it. */
class FakeClient implements SqlClient {
  transactions: Array<Array<[string, string[] | undefined]>> = [];
  fail: unknown;
  unsafe(): Promise<SqlRow[]> {
    return Promise.resolve([]);
  }
  async begin<T>(fn: (tx: SqlQuery) => Promise<T>): Promise<T> {
    const statements: Array<[string, string[] | undefined]> = [];
    const result = await fn({
      unsafe: (query, parameters) => {
        statements.push([query, parameters]);
        return Promise.resolve([]);
      },
    });
    if (this.fail !== undefined) throw this.fail;
    this.transactions.push(statements);
    return result;
  }
}

/** The states `rows` declare on `target`, as the engine would hand them to apply(). */
async function declared(target: TableTarget, rows: RowState[]) {
  const collector = new Collector("a.csv", "error");
  await collecting(collector, () => {
    for (const row of rows) target.declareTargetState(row);
    return Promise.resolve();
  });
  return [...collector.byTarget.get(target.id)!.values()].map((c) =>
    Object.assign(c.state, { fingerprint: c.fingerprint })
  );
}

function composite(client: SqlClient, options = {}) {
  return new TableTarget(KEY, client, "inv.stock", {
    columns: { region: "text", id: "integer", qty: "integer not null", note: "jsonb" },
    primaryKey: ["region", "id"],
    ...options,
  });
}

Deno.test("TableTarget's identity is the context key name and schema.table", () => {
  const client = new FakeClient();
  assert.equal(composite(client).id, "postgres:db/inv.stock");
  const plain = new TableTarget(KEY, client, "rows", { columns: { key: "text" } });
  assert.equal(plain.id, "postgres:db/public.rows");
});

Deno.test("TableTarget.apply() upserts and deletes in one transaction, every cell cast from text", async () => {
  const client = new FakeClient();
  const target = composite(client);
  const [state] = await declared(target, [
    { key: ["eu", 7], value: { qty: 3, note: { a: [1] } } },
  ]);
  const changes: Change<DeclaredState>[] = [
    { kind: "upsert", key: state!.key, state: state! },
    { kind: "delete", key: JSON.stringify(["us", "9"]) },
  ];
  const acked: number[] = [];
  await target.apply(changes as never, (n) => acked.push(n));
  const rows = (n: number, alias: string, prefix: string) =>
    `ROWS FROM (${
      Array.from({ length: n }, (_, i) => `json_array_elements_text($${i + 1}::text::json)`)
        .join(", ")
    }) AS ${alias}(${Array.from({ length: n }, (_, i) => `${prefix}${i}`).join(", ")})`;
  assert.deepEqual(client.transactions, [[
    [
      'INSERT INTO "inv"."stock" ("region", "id", "qty", "note") SELECT u.c0::text, ' +
      `u.c1::integer, u.c2::integer, u.c3::jsonb FROM ${rows(4, "u", "c")} ON CONFLICT ` +
      '("region", "id") DO UPDATE SET "qty" = EXCLUDED."qty", "note" = EXCLUDED."note"',
      ['["eu"]', '["7"]', '["3"]', '["{\\"a\\":[1]}"]'],
    ],
    [
      `DELETE FROM "inv"."stock" AS t USING ${rows(2, "d", "k")} ` +
      `WHERE t."region" = d.k0::text AND t."id" = d.k1::integer`,
      ['["us"]', '["9"]'],
    ],
  ]]);
  assert.deepEqual(acked, [2]);
});

Deno.test("TableTarget.apply(): one statement per batchSize rows, one transaction per transactionSize changes", async () => {
  const client = new FakeClient();
  const target = new TableTarget(KEY, client, "rows", {
    columns: { key: "text", value: "jsonb" },
    batchSize: 2,
    transactionSize: 3,
  });
  const states = await declared(target, [
    { key: "a", value: { value: { q: 'say "hi" \\ {x,y}' } } },
    { key: "b", value: { value: null } },
    { key: "c", value: {} },
  ]);
  const changes = [
    ...states.map((state) => ({ kind: "upsert", key: state.key, state })),
    { kind: "delete", key: "d" },
  ];
  const acked: number[] = [];
  await target.apply(changes as never, (n) => acked.push(n));
  assert.deepEqual(acked, [3, 1]);
  const [first, second] = client.transactions;
  assert.deepEqual(first!.map(([, parameters]) => parameters), [
    ['["a","b"]', JSON.stringify([JSON.stringify({ q: 'say "hi" \\ {x,y}' }), null])],
    ['["c"]', "[null]"],
  ]);
  assert.deepEqual(second, [[
    'DELETE FROM "public"."rows" WHERE "key" = ANY (ARRAY(' +
    "SELECT json_array_elements_text($1::text::json))::text[])",
    ['["d"]'],
  ]]);
});

Deno.test("TableTarget.apply(): a lone surrogate goes as U+FFFD, which the server accepts", async () => {
  const client = new FakeClient();
  const target = new TableTarget(KEY, client, "rows", { columns: { key: "text", value: "text" } });
  const states = await declared(target, [
    { key: "a", value: { value: "x\ud800y" } },
    { key: "b", value: { value: "\ud83d\ude42 and \\ud800 as text" } },
  ]);
  await target.apply(states.map((state) => ({ kind: "upsert", key: state.key, state })) as never);
  assert.deepEqual(client.transactions[0]![0]![1], [
    '["a","b"]',
    JSON.stringify(["x\ufffdy", "\u{1F642} and \\ud800 as text"]),
  ]);
});

Deno.test("TableTarget: a row's fingerprint follows its cells; NULL differs from an empty string", async () => {
  const target = composite(new FakeClient());
  const [a, b, c, d] = await declared(target, [
    { key: ["eu", 1], value: { qty: 1, note: null } },
    { key: ["eu", 2], value: { qty: 1, note: null } },
    { key: ["eu", 3], value: { qty: 1 } },
    { key: ["eu", 4], value: { qty: 1, note: "" } },
  ]);
  assert.notEqual(a!.fingerprint, b!.fingerprint, "the key is a cell");
  const same = await declared(target, [{ key: ["eu", 3], value: { qty: 1, note: "" } }]);
  assert.notEqual(c!.fingerprint, same[0]!.fingerprint);
  assert.equal(d!.key, '["eu","4"]');
});

Deno.test("TableTarget.declareTargetState() refuses unknown columns and keys of the wrong shape", async () => {
  const target = composite(new FakeClient());
  await assert.rejects(declared(target, [{ key: "eu", value: {} }]), /2 part\(s\)/);
  await assert.rejects(
    declared(target, [{ key: ["eu", 1], value: { nope: 1 } }]),
    /no column "nope"/,
  );
  await assert.rejects(
    declared(target, [{ key: ["eu", 1], value: { id: 2 } }]),
    /column "id" is "2" but the key says "1"/,
  );
});

/** Declares `rows` on `target` from "a.csv", row i on line i + 2; resolves to the error, if any. */
async function declaredAt(target: TableTarget, rows: RowState[]): Promise<unknown> {
  const collector = new Collector("a.csv", "error");
  try {
    await collecting(collector, () => {
      rows.forEach((row, i) => {
        setSourceLine(i + 2);
        target.declareTargetState(row);
      });
      return Promise.resolve();
    });
  } catch (error) {
    return error;
  }
  return undefined;
}

Deno.test("TableTarget.declareTargetState(): the key is in its column type's canonical form, the cells as given", async () => {
  const target = new TableTarget(KEY, new FakeClient(), "t", {
    columns: { region: "char(4)", id: "int", tag: "uuid", qty: "integer" },
    primaryKey: ["region", "id", "tag"],
  });
  const tag = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11";
  const [state] = await declared(target, [
    { key: ["eu  ", "007", tag], value: { qty: 3, id: 7, tag: tag.toLowerCase() } },
  ]);
  assert.equal(state!.key, JSON.stringify(["eu", "7", tag.toLowerCase()]));
  assert.deepEqual((state as unknown as TableState).cells, ["eu  ", "007", tag, "3"]);
});

Deno.test("TableTarget.declareTargetState(): two forms of one row in a file are a duplicate key naming both lines", async () => {
  const error = await declaredAt(composite(new FakeClient()), [
    { key: ["eu", "1"], value: { qty: 1 } },
    { key: ["us", "1"], value: { qty: 2 } },
    { key: ["eu", "01"], value: { qty: 3 } },
  ]);
  assert.ok(error instanceof StatecastError);
  assert.equal(
    error.message,
    String.raw`Duplicate key "[\"eu\",\"1\"]" in "a.csv": declared at line 2 and again at line 4`,
  );
});

Deno.test("TableTarget.declareTargetState(): a key that is not of its column's type fails its file, naming the column, the value and the line", async () => {
  const error = await declaredAt(composite(new FakeClient()), [
    { key: ["eu", "1"], value: { qty: 1 } },
    { key: ["eu", "1.5"], value: { qty: 2 } },
  ]);
  assert.ok(error instanceof StatecastError);
  assert.equal(
    error.message,
    'Key column "id" (integer) of table "inv.stock" cannot hold "1.5" in "a.csv" line 3: ' +
      "expected an integer",
  );
  assert.equal(error.path, "a.csv");
  assert.equal(error.line, 3);
});

Deno.test("TableTarget.apply(): a delete of a key stored in another form is dropped when the same row is upserted, by this apply or an earlier one", async () => {
  const client = new FakeClient();
  const target = composite(client);
  const [one, two] = await declared(target, [
    { key: ["eu", "01"], value: { qty: 1 } },
    { key: ["eu", "2"], value: { qty: 2 } },
  ]);
  const upsert = (state: typeof one) => ({ kind: "upsert", key: state!.key, state });
  const del = (...parts: string[]) => ({ kind: "delete", key: JSON.stringify(parts) });
  const acked: number[] = [];
  // Stored before keys were canonical: ["eu","01"] and ["eu","02"]; now ["eu","1"], ["eu","2"].
  await target.apply(
    [upsert(one), upsert(two), del("eu", "02"), del("eu", "3")] as never,
    (n) => acked.push(n),
  );
  assert.deepEqual(client.transactions[0]!.map(([, p]) => p!.join(" ")).slice(1), [
    '["eu"] ["3"]',
  ]);
  // A later apply (the round's deletes come last): "01" was upserted as ["eu","1"] by this
  // process; "04" and a key in its canonical form are deleted.
  await target.apply(
    [del("eu", "01"), del("eu", "04"), del("eu", "2")] as never,
    (n) => acked.push(n),
  );
  assert.deepEqual(client.transactions[1]!.map(([, p]) => p!.join(" ")), [
    '["eu","eu"] ["04","2"]',
  ]);
  assert.deepEqual(acked, [4, 3]);
});

Deno.test("TableTarget.apply(): data errors are refusals, connection errors are not", async () => {
  const client = new FakeClient();
  const target = composite(client);
  const [state] = await declared(target, [{ key: ["eu", 1], value: { qty: 1 } }]);
  const apply = () => target.apply([{ kind: "upsert", key: state!.key, state: state! }] as never);
  client.fail = Object.assign(new Error('invalid input syntax for type integer: "x"'), {
    code: "22P02",
  });
  const refused = await apply().catch((e) => e);
  assert.ok(refused instanceof StatecastError && refused.refused && !refused.retriable);
  assert.match(refused.message, /^PostgreSQL refused rows for table "inv\.stock": invalid input/);
  client.fail = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), {
    code: "ECONNREFUSED",
  });
  const down = await apply().catch((e) => e);
  assert.ok(down instanceof StatecastError && !down.refused && down.retriable);
});

Deno.test("TableTarget.apply(): two keys that are one row of the table (two spellings of one timestamp) are a refusal that says so", async () => {
  const client = new FakeClient();
  const target = composite(client);
  const [state] = await declared(target, [{ key: ["eu", 1], value: { qty: 1 } }]);
  client.fail = Object.assign(
    new Error("ON CONFLICT DO UPDATE command cannot affect row a second time"),
    { code: "21000" },
  );
  const error = await target.apply([{ kind: "upsert", key: state!.key, state: state! }] as never)
    .catch((e) => e);
  assert.ok(error instanceof StatecastError && error.refused && !error.retriable);
  assert.match(error.message, /cannot affect row a second time: two keys are the same row/);
  assert.match(error.message, /two spellings of one timestamp/);
});

Deno.test("TableTarget.apply(): a NUL character the server refuses (22P05) is a refusal that names it", async () => {
  const client = new FakeClient();
  const target = composite(client);
  const [state] = await declared(target, [{ key: ["eu", 1], value: { qty: 1 } }]);
  client.fail = Object.assign(new Error("unsupported Unicode escape sequence"), {
    code: "22P05",
  });
  const error = await target.apply([{ kind: "upsert", key: state!.key, state: state! }] as never)
    .catch((e) => e);
  assert.ok(error instanceof StatecastError && error.refused);
  assert.match(
    error.message,
    /unsupported Unicode escape sequence: a value holds the NUL character \(U\+0000, \\u0000\), which PostgreSQL text and jsonb cannot store/,
  );
});

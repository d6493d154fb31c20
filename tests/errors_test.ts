import assert from "node:assert/strict";
import { redactSecrets } from "../lib/errors.ts";

Deno.test("redactSecrets() hides the password of a URL, wherever the URL is in the text", () => {
  for (
    const [text, expected] of [
      ["http://alice:secret@host/", "http://alice:***@host/"],
      [
        'store "libsql://u:p%40ss@db.example:8080/x?tls=1": down',
        'store "libsql://u:***@db.example:8080/x?tls=1": down',
      ],
      ["wss://u:p@ss@host", "wss://u:***@host"], // a raw "@": parsers split at the last one
      ["a http://x:1@h b https://y:2@k c", "a http://x:***@h b https://y:***@k c"],
      [
        '{"message":"open \\"http://alice:secret@h/\\": no"}',
        '{"message":"open \\"http://alice:***@h/\\": no"}',
      ],
      ["http://alice:@host/", "http://alice:***@host/"],
    ] as const
  ) assert.equal(redactSecrets(text), expected);
});

Deno.test("redactSecrets() hides token and password parameters and keeps everything else", () => {
  assert.equal(
    redactSecrets("libsql://db?authToken=t0k&tls=1&password=pw#token=x"),
    "libsql://db?authToken=***&tls=1&password=***#token=x",
  );
  for (
    const text of [
      "http://host:8080/path",
      "http://alice@host/",
      "file:.statecast/state.db",
      "127.0.0.1:9092,127.0.0.1:9093",
      'Cannot parse "a.csv" line 7: expected 4 fields, got 5',
    ]
  ) assert.equal(redactSecrets(text), text);
});

// An in-memory target that records what the engine gave it, for engine-level tests. End-to-end
// tests use the real broker instead.
import { keyId } from "../lib/key_id.ts";
import type { Change, Target } from "../lib/target.ts";
import { StatecastError } from "../lib/errors.ts";
import { fingerprint } from "../lib/fingerprint.ts";

export interface Row {
  key: string;
  value: string;
}

export class RecordingTarget implements Target<Row> {
  readonly id = "memory:rows";
  batches: Array<Array<Change<Row>>> = [];
  failNext = false;
  /** Accept only this many changes of the next apply, then fail (a broker lost mid-batch). */
  failAfter: number | undefined;
  /** Values containing this are refused as a broker refuses a message that is too large. */
  refuse = "TOO-BIG";
  /** Called with every batch before it is taken (or refused). */
  onApply: ((changes: ReadonlyArray<Change<Row>>) => Promise<void>) | undefined;
  fingerprint(state: Row) {
    return fingerprint(state.value);
  }
  async apply(changes: ReadonlyArray<Change<Row>>): Promise<void> {
    await this.onApply?.(changes);
    if (this.failAfter !== undefined) {
      this.batches.push(changes.slice(0, this.failAfter));
      this.failAfter = undefined;
      return Promise.reject(new Error("broker lost mid-batch"));
    }
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error("broker down"));
    }
    if (changes.some((c) => c.kind === "upsert" && c.state.value.includes(this.refuse))) {
      return Promise.reject(
        new StatecastError("MESSAGE_TOO_LARGE", { refused: true }),
      );
    }
    this.batches.push([...changes]);
    return Promise.resolve();
  }
  /** Changes of the last round as "+key=value" / "-key", sorted. */
  last(): string[] {
    const batches = this.batches;
    this.batches = [];
    return batches.flat().map((c) =>
      c.kind === "upsert" ? `+${keyId(c.key)}=${c.state.value}` : `-${keyId(c.key)}`
    ).sort();
  }
}

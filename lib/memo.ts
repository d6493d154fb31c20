/**
 * The memo: what a component's last committed run looked like (size, mtime, content and logic
 * fingerprints), and the two checks that let a round skip it. A file whose stat and logic are
 * unchanged is skipped without being read; one whose stat changed but whose content hash is
 * equal is skipped without being parsed. Git's "racy clean" case is minded: a file modified
 * within {@linkcode RACY_WINDOW_MS} of the recorded scan keeps its stat even if rewritten, so
 * its content is hashed instead of trusting the stat.
 *
 * @module
 */
import type { Fingerprint } from "./fingerprint.ts";

/** The memo of one component. */
export interface ComponentRecord {
  size: number;
  mtimeMs: number;
  contentFingerprint: Fingerprint;
  /** The processing function, its version, statecast's state format and the mounted targets. */
  logicFingerprint: Fingerprint;
  /** When the stat was taken (ms since the epoch). */
  recordedAtMs: number;
}

/**
 * Within this many milliseconds of the recorded scan, a file's stat is not trusted (a file
 * rewritten within the clock's resolution keeps size and mtime): its content is hashed instead.
 */
export const RACY_WINDOW_MS = 2000;

/**
 * Whether a component can be skipped without reading it: same logic, same size and mtime, and
 * modified well before its stat was recorded. `logic` is undefined when the memo is off.
 *
 * @example
 * ```ts
 * import { unchangedByStat } from "./memo.ts";
 * const record = {
 *   size: 10, mtimeMs: 1_000, contentFingerprint: "a", logicFingerprint: "l", recordedAtMs: 60_000,
 * };
 * if (!unchangedByStat(record, { size: 10, mtimeMs: 1_000 }, "l")) throw new Error();
 * if (unchangedByStat({ ...record, recordedAtMs: 2_000 }, { size: 10, mtimeMs: 1_000 }, "l")) {
 *   throw new Error("racy: modified within the window of the recorded scan");
 * }
 * ```
 */
export function unchangedByStat(
  previous: ComponentRecord | undefined,
  item: { size: number; mtimeMs: number },
  logic: Fingerprint | undefined,
): boolean {
  return previous !== undefined && logic !== undefined && previous.logicFingerprint === logic &&
    previous.size === item.size && previous.mtimeMs === item.mtimeMs &&
    item.mtimeMs < previous.recordedAtMs - RACY_WINDOW_MS;
}

/** Whether a component whose content fingerprint is `content` can be skipped without parsing. */
export function unchangedByContent(
  previous: ComponentRecord | undefined,
  content: Fingerprint,
  logic: Fingerprint | undefined,
): boolean {
  return previous !== undefined && logic !== undefined && previous.logicFingerprint === logic &&
    previous.contentFingerprint === content;
}

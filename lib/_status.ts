/**
 * What `status` shows (private to the app): per target, its keys and files; per file, its keys,
 * when it last ran, its memo and, for a file that fails or waits, why. The JSON shape
 * ({@linkcode StatusReport}) is documented in README and kept stable: fields may be added, none
 * renamed or removed.
 *
 * @module
 */
import type { StateStore } from "./state_store.ts";

/** `status --json`: the whole answer. */
export interface StatusReport {
  app: string;
  /** The state store's URL, secrets hidden. */
  state: string;
  /** The run holding the app's lock, or null. */
  running: { pid: number; host: string; startedAt: string; heartbeatAt: string } | null;
  targets: Array<{
    target: string;
    /** Keys declared by the files. */
    keys: number;
    /** Files that declare at least one key. */
    files: number;
    /** Keys no file declares any more whose delete was not sent yet. */
    retracting: number;
    /** Keys sent but not committed: the next run sends them again. */
    inDoubt: number;
  }>;
  files: StatusFile[];
}

/** One file in {@linkcode StatusReport}. */
export interface StatusFile {
  path: string;
  /** "ok", "failed" (it publishes nothing until fixed) or "waiting" (on another file). */
  state: "ok" | "failed" | "waiting";
  /** Keys per target, as last committed. */
  keys: Record<string, number>;
  /** When the file was last run or checked and committed (ISO 8601), or null if never. */
  lastRun: string | null;
  /** The memo as committed: a file whose size and mtime match is not read again. */
  memo: {
    size: number;
    mtime: string;
    contentFingerprint: string;
    logicFingerprint: string;
  } | null;
  /** Why it fails or waits, or null. */
  error: {
    reason: string;
    message: string;
    line: number | null;
    blockedBy: string | null;
    at: string;
  } | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** `n` and `noun`, plural unless `n` is 1: `1 target`, `3 keys`. */
export function counted(n: number, noun: string): string {
  return `${n} ${n === 1 ? noun : `${noun}s`}`;
}

/** Whether `path` is one of `wanted` or under one of them (a folder); every path when empty. */
function selected(path: string, wanted: readonly string[]): boolean {
  if (wanted.length === 0) return true;
  return wanted.some((w) => {
    const p = w.replace(/^\.\//, "").replace(/\/+$/, "");
    return p === "" || p === "." || path === p || path.startsWith(p + "/");
  });
}

/** Reads the status of `app` from the store; `paths` narrows the files (files or folders). */
export async function statusReport(
  store: StateStore,
  app: string,
  paths: readonly string[] = [],
): Promise<StatusReport> {
  const components = await store.loadComponents(app);
  const keyCounts = await store.fileTargetKeyCounts(app);
  const failures = await store.failures(app);
  const retracting = await store.retractingCounts(app);
  const inDoubt = await store.loadInDoubt(app);
  const holder = await store.lockHolder(app);
  const all = [...new Set([...components.keys(), ...failures.keys()])].sort();
  const files = all.filter((p) => selected(p, paths)).map((path): StatusFile => {
    const row = components.get(path);
    const failure = failures.get(path);
    return {
      path,
      state: failure === undefined ? "ok" : failure.reason === "waiting" ? "waiting" : "failed",
      keys: Object.fromEntries(keyCounts.get(path) ?? []),
      lastRun: row === undefined ? null : iso(row.recordedAtMs),
      memo: row === undefined ? null : {
        size: row.size,
        mtime: iso(row.mtimeMs),
        contentFingerprint: row.contentFingerprint,
        logicFingerprint: row.logicFingerprint,
      },
      error: failure === undefined ? null : {
        reason: failure.reason,
        message: failure.message,
        line: failure.line ?? null,
        blockedBy: failure.blockedBy ?? null,
        at: iso(failure.atMs),
      },
    };
  });
  const declared = new Map((await store.targets(app)).map((t) => [t.target, t]));
  const targetNames = [...new Set([...declared.keys(), ...retracting.keys(), ...inDoubt.keys()])];
  return {
    app,
    state: store.url,
    running: holder === undefined ? null : {
      pid: holder.pid,
      host: holder.host,
      startedAt: iso(holder.startedAtMs),
      heartbeatAt: iso(holder.heartbeatMs),
    },
    targets: targetNames.sort().map((target) => ({
      target,
      keys: declared.get(target)?.keys ?? 0,
      files: declared.get(target)?.components ?? 0,
      retracting: retracting.get(target) ?? 0,
      inDoubt: inDoubt.get(target)?.size ?? 0,
    })),
    files,
  };
}

/**
 * The report as text lines. Without `detailed`, at most 50 files (failing ones always); with
 * it (paths were named), every selected file with its memo and error.
 */
export function formatStatus(
  report: StatusReport,
  options: { detailed: boolean; holder?: string },
): string[] {
  const lines = [`app ${report.app}, state ${report.state}`];
  lines.push(report.running === null ? "not running" : `running: ${options.holder ?? ""}`);
  const failing = report.files.filter((f) => f.state !== "ok").length;
  lines.push(
    `${counted(report.files.length, "file")}${
      failing > 0 ? `, ${failing} failing or waiting` : ""
    }`,
  );
  for (const t of report.targets) {
    lines.push(
      `target ${t.target}: ${counted(t.keys, "key")} from ${counted(t.files, "file")}` +
        (t.retracting + t.inDoubt > 0
          ? ` (${t.retracting} retracting, ${t.inDoubt} in doubt)`
          : ""),
    );
  }
  const shown = options.detailed
    ? report.files
    : report.files.filter((f, i) => i < 50 || f.state !== "ok");
  for (const f of shown) {
    const keys = Object.values(f.keys).reduce((a, b) => a + b, 0);
    const ran = f.lastRun === null ? "never committed" : `last run ${f.lastRun}`;
    lines.push(`  ${f.path}: ${counted(keys, "key")}, ${ran}, ${f.state}`);
    if (f.error !== null) {
      const where = f.error.line === null ? "" : ` line ${f.error.line}`;
      lines.push(`    ${f.error.reason}${where} (since ${f.error.at}): ${f.error.message}`);
    }
    if (options.detailed && f.memo !== null) {
      lines.push(
        `    memo: ${f.memo.size} bytes, mtime ${f.memo.mtime}, content ` +
          `${f.memo.contentFingerprint}, logic ${f.memo.logicFingerprint}`,
      );
    }
  }
  if (shown.length < report.files.length) {
    lines.push(`  ... and ${report.files.length - shown.length} more (status PATH shows them)`);
  }
  return lines;
}

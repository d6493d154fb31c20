/**
 * What an operator watches from outside (private to the app): statecast's metrics, fed by the
 * rounds and the watcher, and the health verdict of `/healthz`.
 *
 * @module
 */
import type { ComponentFailure, RoundSummary } from "./engine.ts";
import { errorMessage, redactSecrets, StatecastError } from "./errors.ts";
import { type Health, MetricsRegistry } from "./metrics.ts";

/** Consecutive failed rounds (a target failed, or a round could not run) that are unhealthy. */
export const UNHEALTHY_AFTER_FAILURES = 3;

/** Upper bounds of the round duration histogram, in seconds. */
const DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** Why a file failed, as the `reason` label of `statecast_failed_files`. */
export type FailureReason = "invalid" | "unreadable" | "waiting" | "refused" | "error";

/** How a round ended, as the `outcome` label of `statecast_rounds_total`. */
export type RoundOutcome = "ok" | "files_failed" | "deletes_refused" | "target_failed" | "error";

/** What the monitor reads when scraped (costly to keep up to date round by round). */
export interface MonitorSources {
  /** Files with committed state. */
  files(): number;
  /** Keys sent but not committed yet. */
  inDoubt(): number;
  /** Keys per target, from the store. */
  keys(): Promise<ReadonlyArray<{ target: string; keys: number }>>;
}

/** Why a file failed: a parse error, a read error, a handover that waits, a refused message. */
export function failureReason(failure: ComponentFailure): FailureReason {
  if (failure.blockedBy !== undefined) return "waiting";
  const error = failure.error;
  if (error instanceof StatecastError) {
    if (error.refused) return "refused";
    if (error.line !== undefined) return "invalid";
    const code = (error.cause as { code?: unknown } | undefined)?.code;
    if (typeof code === "string") return "unreadable";
    if (error.cause instanceof SyntaxError) return "invalid";
  }
  return "error";
}

/** The outcome of a round, for `statecast_rounds_total`. */
export function roundOutcome(summary: RoundSummary): RoundOutcome {
  if (summary.applyError !== undefined) return "target_failed";
  if (summary.refused !== undefined) return "deletes_refused";
  if (summary.failed.length > 0) return "files_failed";
  return "ok";
}

/**
 * statecast's metrics and health. Rounds, events, retries and the watcher's state are reported
 * to it; keys, files and keys in doubt are read from `sources` when scraped.
 */
export class Monitor {
  readonly registry = new MetricsRegistry();
  readonly #m;
  /** Failed files now: path → reason (a file stays failed until a round looks at it again). */
  readonly #failed = new Map<string, FailureReason>();
  #phase: "catching up" | "watching" | "not watching" | "stopping" = "catching up";
  #watchReason = "";
  #streak = 0;
  #streakSince = 0;
  #lastError = "";
  #lastSuccessMs: number | undefined;
  #lockLost = false;
  /** Keys per target are read from the store again only after a round. */
  #keysStale = true;

  constructor(sources?: MonitorSources) {
    const r = this.registry;
    this.#m = {
      rounds: r.counter("statecast_rounds_total", "Rounds run, by outcome.", ["outcome"]),
      upserts: r.counter("statecast_upserts_total", "Upserts sent and committed."),
      deletes: r.counter("statecast_deletes_total", "Deletes (tombstones) sent and committed."),
      unchanged: r.counter(
        "statecast_unchanged_keys_total",
        "Keys of the files that ran whose published value did not change (nothing sent).",
      ),
      failed: r.gauge("statecast_failed_files", "Files failing now, by reason.", ["reason"]),
      files: r.gauge("statecast_files", "Files with committed state."),
      keys: r.gauge("statecast_keys", "Keys declared, per target.", ["target"]),
      inDoubt: r.gauge(
        "statecast_in_doubt_keys",
        "Keys sent but not committed: they are sent again by the next round.",
      ),
      duration: r.histogram("statecast_round_duration_seconds", "Duration of a round.", {
        buckets: DURATION_BUCKETS,
      }),
      events: r.counter("statecast_watch_events_total", "File-system events received."),
      lastSuccess: r.gauge(
        "statecast_last_success_timestamp_seconds",
        "When the last round that reached its target ended (Unix time); 0 before the first.",
      ),
      retries: r.counter(
        "statecast_retries_total",
        "Retries scheduled: of a failed round, or of files that wait on another.",
      ),
      watching: r.gauge("statecast_watching", "1 while the source folder is watched, else 0."),
      healthy: r.gauge("statecast_healthy", "1 when /healthz answers 200, else 0."),
    };
    for (const reason of ["invalid", "unreadable", "waiting", "refused", "error"] as const) {
      this.#m.failed.set(0, { reason });
    }
    for (const outcome of ["ok", "files_failed", "deletes_refused", "target_failed", "error"]) {
      this.#m.rounds.inc({ outcome }, 0);
    }
    this.registry.onCollect(async () => {
      if (sources !== undefined) {
        this.#m.files.set(sources.files());
        this.#m.inDoubt.set(sources.inDoubt());
        if (this.#keysStale) {
          this.#keysStale = false;
          const counts = await sources.keys();
          this.#m.keys.clear();
          for (const { target, keys } of counts) this.#m.keys.set(keys, { target });
        }
      }
      this.#m.healthy.set(this.health().ok ? 1 : 0);
    });
  }

  /**
   * Takes a round that ran. `looked` says which paths it looked at (every path for a full
   * round): their failures are replaced by this round's.
   */
  round(summary: RoundSummary, looked: (path: string) => boolean = () => true): void {
    const m = this.#m;
    const outcome = roundOutcome(summary);
    this.#keysStale = true;
    m.rounds.inc({ outcome });
    m.duration.observe(summary.elapsedMs / 1000);
    m.upserts.inc({}, summary.upserts);
    m.deletes.inc({}, summary.deletes);
    m.unchanged.inc({}, summary.unchangedKeys);
    for (const path of [...this.#failed.keys()]) if (looked(path)) this.#failed.delete(path);
    for (const failure of summary.failed) this.#failed.set(failure.path, failureReason(failure));
    const counts = new Map<FailureReason, number>();
    for (const reason of this.#failed.values()) counts.set(reason, (counts.get(reason) ?? 0) + 1);
    for (const reason of ["invalid", "unreadable", "waiting", "refused", "error"] as const) {
      m.failed.set(counts.get(reason) ?? 0, { reason });
    }
    if (outcome === "target_failed") this.#failure(summary.applyError);
    else this.#success();
  }

  /** A round that could not run at all (a folder that cannot be read, a busy store). */
  roundError(error: unknown): void {
    this.#m.rounds.inc({ outcome: "error" });
    this.#failure(error);
  }

  /** File-system events received. */
  events(count: number): void {
    this.#m.events.inc({}, count);
  }

  /** A retry was scheduled. */
  retry(): void {
    this.#m.retries.inc();
  }

  /** The watcher started (`true`) or stopped, and why. */
  watching(on: boolean, reason = ""): void {
    if (this.#phase === "stopping") return;
    this.#phase = on ? "watching" : "not watching";
    this.#watchReason = reason;
    this.#m.watching.set(on ? 1 : 0);
  }

  /** The run is stopping (a signal): not watching any more, and that is meant. */
  stopping(): void {
    this.#phase = "stopping";
    this.#m.watching.set(0);
  }

  /** Another run took the store's lock over: this one can commit nothing any more. */
  lockLost(): void {
    this.#lockLost = true;
  }

  /**
   * Healthy while catching up or watching, as long as the last round reached its target or
   * fewer than {@linkcode UNHEALTHY_AFTER_FAILURES} rounds in a row failed (a retry is due).
   * Failed files do not make a run unhealthy: they are data to fix (`statecast_failed_files`).
   */
  health(now = Date.now()): Health {
    const since = (ms: number) => `${Math.round((now - ms) / 1000)} s`;
    if (this.#lockLost) {
      return { ok: false, reason: "the state store's lock was taken over by another run" };
    }
    if (this.#streak >= UNHEALTHY_AFTER_FAILURES) {
      return {
        ok: false,
        reason: `${this.#streak} rounds in a row failed (for ${since(this.#streakSince)}), ` +
          `retrying: ${this.#lastError}`,
      };
    }
    if (this.#phase === "not watching") return { ok: false, reason: this.#watchReason };
    if (this.#phase === "stopping") return { ok: false, reason: "stopping" };
    const state = this.#phase === "watching" ? "watching" : "catching up";
    if (this.#streak > 0) {
      return {
        ok: true,
        reason: `${state}; the last round failed, retrying (${this.#streak} of ` +
          `${UNHEALTHY_AFTER_FAILURES - 1} failures allowed): ${this.#lastError}`,
      };
    }
    const last = this.#lastSuccessMs === undefined
      ? ""
      : `; last round ok ${since(this.#lastSuccessMs)} ago`;
    return { ok: true, reason: `${state}${last}` };
  }

  #failure(error: unknown): void {
    if (this.#streak++ === 0) this.#streakSince = Date.now();
    this.#lastError = redactSecrets(errorMessage(error).split("\n")[0]!);
  }

  #success(): void {
    this.#streak = 0;
    this.#lastSuccessMs = Date.now();
    this.#m.lastSuccess.set(this.#lastSuccessMs / 1000);
  }
}

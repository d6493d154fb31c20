/**
 * Metrics in the Prometheus text exposition format (version 0.0.4), and the small HTTP server
 * that serves them with a health check. A registry holds counters, gauges and histograms, each
 * with optional labels; {@linkcode MetricsRegistry.render} writes them out. `node:http` serves
 * them the same way under Deno and Bun.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { errorMessage, StatecastError } from "./errors.ts";

/** A sample's labels: label name → value. */
export type Labels = Readonly<Record<string, string>>;

/** What every kind of metric has: a name, a help text, a type, and its samples as text. */
interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  samples(): string[];
}

/** The series of one metric, one per distinct set of label values. */
class Series<T> {
  readonly #series = new Map<string, { labels: Labels; value: T }>();
  constructor(readonly labelNames: readonly string[], readonly initial: () => T) {}

  get(labels: Labels = {}): { labels: Labels; value: T } {
    for (const name of Object.keys(labels)) {
      if (!this.labelNames.includes(name)) throw new RangeError(`Unknown label "${name}"`);
    }
    const id = JSON.stringify(this.labelNames.map((n) => labels[n] ?? ""));
    let found = this.#series.get(id);
    if (found === undefined) this.#series.set(id, found = { labels, value: this.initial() });
    return found;
  }

  clear(): void {
    this.#series.clear();
  }

  entries(): Array<{ labels: Labels; value: T }> {
    return [...this.#series.values()];
  }
}

/** A value that only goes up (restarts at 0 with the process). */
export class Counter implements Family {
  readonly type = "counter";
  readonly #series: Series<number>;

  constructor(readonly name: string, readonly help: string, labelNames: readonly string[] = []) {
    this.#series = new Series(labelNames, () => 0);
    if (labelNames.length === 0) this.#series.get();
  }

  /** Adds `by` (default 1, never negative) to the series of `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`A counter only goes up; got ${by} for ${this.name}`);
    this.#series.get(labels).value += by;
  }

  /** The current value of the series of `labels`. */
  value(labels: Labels = {}): number {
    return this.#series.get(labels).value;
  }

  samples(): string[] {
    return this.#series.entries().map((s) => sample(this.name, s.labels, s.value));
  }
}

/** A value that goes up and down. */
export class Gauge implements Family {
  readonly type = "gauge";
  readonly #series: Series<number>;

  constructor(readonly name: string, readonly help: string, labelNames: readonly string[] = []) {
    this.#series = new Series(labelNames, () => 0);
    if (labelNames.length === 0) this.#series.get();
  }

  /** Sets the series of `labels` to `value`. */
  set(value: number, labels: Labels = {}): void {
    this.#series.get(labels).value = value;
  }

  /** The current value of the series of `labels`. */
  value(labels: Labels = {}): number {
    return this.#series.get(labels).value;
  }

  /** Drops every labelled series (before setting the ones that exist now). */
  clear(): void {
    this.#series.clear();
  }

  samples(): string[] {
    return this.#series.entries().map((s) => sample(this.name, s.labels, s.value));
  }
}

/** Observations counted in cumulative buckets, with their sum and count. */
export class Histogram implements Family {
  readonly type = "histogram";
  readonly #series: Series<{ buckets: number[]; sum: number; count: number }>;
  readonly #bounds: readonly number[];

  constructor(
    readonly name: string,
    readonly help: string,
    options: { buckets: readonly number[]; labelNames?: readonly string[] },
  ) {
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
    const labelNames = options.labelNames ?? [];
    this.#series = new Series(
      labelNames,
      () => ({ buckets: this.#bounds.map(() => 0), sum: 0, count: 0 }),
    );
    if (labelNames.length === 0) this.#series.get();
  }

  /** Counts one observation in the series of `labels`. */
  observe(value: number, labels: Labels = {}): void {
    const s = this.#series.get(labels).value;
    for (let i = 0; i < this.#bounds.length; i++) if (value <= this.#bounds[i]!) s.buckets[i]!++;
    s.sum += value;
    s.count++;
  }

  samples(): string[] {
    const lines: string[] = [];
    for (const { labels, value } of this.#series.entries()) {
      this.#bounds.forEach((le, i) => {
        lines.push(sample(`${this.name}_bucket`, { ...labels, le: number(le) }, value.buckets[i]!));
      });
      lines.push(sample(`${this.name}_bucket`, { ...labels, le: "+Inf" }, value.count));
      lines.push(sample(`${this.name}_sum`, labels, value.sum));
      lines.push(sample(`${this.name}_count`, labels, value.count));
    }
    return lines;
  }
}

/**
 * A set of metrics, rendered in the Prometheus text format. Values that are costly to keep up to
 * date can be set just before rendering, by a collector ({@linkcode MetricsRegistry.onCollect}).
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./metrics.ts";
 * const registry = new MetricsRegistry();
 * const rounds = registry.counter("app_rounds_total", "Rounds run.", ["outcome"]);
 * rounds.inc({ outcome: "ok" });
 * const text = await registry.render();
 * if (!text.includes('app_rounds_total{outcome="ok"} 1\n')) throw new Error(text);
 * if (!text.includes("# TYPE app_rounds_total counter\n")) throw new Error(text);
 * ```
 */
export class MetricsRegistry {
  readonly #families: Family[] = [];
  readonly #collectors: Array<() => Promise<void> | void> = [];

  /** A new counter; its name should end in `_total`. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  /** A new gauge. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames));
  }

  /** A new histogram with these bucket upper bounds (`+Inf` is added). */
  histogram(
    name: string,
    help: string,
    options: { buckets: readonly number[]; labelNames?: readonly string[] },
  ): Histogram {
    return this.#add(new Histogram(name, help, options));
  }

  /** Runs `collect` before every rendering (to set gauges that are read, not kept). */
  onCollect(collect: () => Promise<void> | void): void {
    this.#collectors.push(collect);
  }

  /** Every metric in the text exposition format. */
  async render(): Promise<string> {
    for (const collect of this.#collectors) await collect();
    const out: string[] = [];
    for (const f of this.#families) {
      out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
      out.push(`# TYPE ${f.name} ${f.type}`);
      out.push(...f.samples());
    }
    return out.join("\n") + "\n";
  }

  #add<F extends Family>(family: F): F {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(family.name)) {
      throw new RangeError(`Invalid metric name "${family.name}"`);
    }
    if (this.#families.some((f) => f.name === family.name)) {
      throw new TypeError(`Metric "${family.name}" is registered twice`);
    }
    this.#families.push(family);
    return family;
  }
}

function sample(name: string, labels: Labels, value: number): string {
  const pairs = Object.entries(labels).map(([k, v]) =>
    `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
  );
  return `${name}${pairs.length === 0 ? "" : `{${pairs.join(",")}}`} ${number(value)}`;
}

function number(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** A health verdict: whether all is well, and why, in one line. */
export interface Health {
  ok: boolean;
  reason: string;
}

/** Options of {@linkcode serveMetrics}. */
export interface MetricsServerOptions {
  /** The TCP port; 0 picks a free one. */
  port: number;
  /** The address to bind. @default "127.0.0.1" (this machine only) */
  hostname?: string;
  /** The metrics served at `/metrics`. */
  registry: MetricsRegistry;
  /** The verdict served at `/healthz`: 200 when ok, 503 otherwise, with its reason. */
  health: () => Health;
}

/** A running metrics server; `await using` stops it. */
export interface MetricsServer extends AsyncDisposable {
  /** The port it listens on (the one picked, when asked for 0). */
  readonly port: number;
  readonly hostname: string;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text format) and `GET /healthz` (200 or 503, one line of
 * reason) until closed. Fails with a `StatecastError` naming the address when it cannot listen.
 */
export async function serveMetrics(options: MetricsServerOptions): Promise<MetricsServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  const server = createServer((req, res) => void respond(req, res, options));
  await new Promise<void>((resolve, reject) => {
    const fail = (error: Error) => {
      reject(
        new StatecastError(
          `Cannot serve metrics on ${hostname}:${options.port}: ${errorMessage(error)}`,
          { cause: error },
        ),
      );
    };
    server.once("error", fail);
    server.listen(options.port, hostname, () => {
      server.off("error", fail);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const close = () => closeServer(server);
  return { port, hostname, close, [Symbol.asyncDispose]: close };
}

async function respond(
  req: IncomingMessage,
  res: ServerResponse,
  options: MetricsServerOptions,
): Promise<void> {
  const path = (req.url ?? "/").split("?")[0];
  try {
    if (req.method !== "GET" && req.method !== "HEAD") {
      reply(res, 405, "only GET\n", { allow: "GET, HEAD" });
    } else if (path === "/metrics") {
      const text = await options.registry.render();
      reply(res, 200, text, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    } else if (path === "/healthz") {
      const health = options.health();
      reply(res, health.ok ? 200 : 503, `${health.ok ? "ok" : "unhealthy"}: ${health.reason}\n`);
    } else {
      reply(res, 404, "not found: try /metrics or /healthz\n");
    }
  } catch (error) {
    reply(res, 500, `error: ${errorMessage(error).split("\n")[0]}\n`);
  }
}

function reply(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers });
  res.end(body);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

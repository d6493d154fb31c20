/**
 * statecast: declare what a Kafka topic should hold as a function of your files; statecast
 * derives the upserts and deletes and remembers what it sent.
 *
 * A job is an {@linkcode App}: a lifespan that provides resources (a Kafka producer, under a
 * {@linkcode ContextKey}), a function per file made with `app.fn()` that reads the file
 * (`file.csvRows()`) and declares target states (`topic.declareTargetState({ key, value })`),
 * and a main function that mounts a target (`kafka.mountTopicTarget()`,
 * `postgres.mountTableTarget()`) and the source (`localfs.walkDir()`). `main.ts` is one to copy.
 *
 * Writing a target of your own: implement {@linkcode Target}, hand declared states to
 * {@linkcode declare}, mount it with {@linkcode mountTarget}; {@linkcode fingerprint} hashes the
 * bytes a state would be sent as.
 *
 * @example
 * ```ts
 * import { App, kafka, localfs } from "./mod.ts";
 * const app = new App({ name: "orders" });
 * const files = localfs.walkDir("./data", { include: ["**\/*.csv"] });
 * if (!files.matches("2024/orders.csv") || typeof kafka.mountTopicTarget !== "function") {
 *   throw new Error();
 * }
 * if (app.name !== "orders") throw new Error();
 * ```
 *
 * @module
 */
export {
  App,
  type AppFn,
  type AppOptions,
  type DropOptions,
  type FnOptions,
  type Lifespan,
  type RunOptions,
  type RunResult,
  VERSION,
} from "./app.ts";
export { Context, ContextKey, mountTarget } from "./context.ts";
export type {
  ComponentFailure,
  OnDuplicateKey,
  PlannedChange,
  RefusedDeletes,
  RoundSummary,
  SourceItem,
} from "./engine.ts";
export {
  type Change,
  declare,
  type DeclaredState,
  type Key,
  setSourceLine,
  type Target,
  warnSource,
} from "./target.ts";
export { keyId } from "./key_id.ts";
export {
  type Fingerprint,
  fingerprint,
  fingerprintParts,
  initFingerprints,
} from "./fingerprint.ts";
export { type Declared, reconcile, type ReconcileOptions } from "./reconcile.ts";
export { StatecastError, type StatecastErrorOptions } from "./errors.ts";
export {
  type CsvOptions,
  type CsvRecord,
  CsvRow,
  type CsvRowsOptions,
  parseCsvRecords,
  parseCsvRows,
} from "./csv.ts";
export * as kafka from "./kafka.ts";
export * as localfs from "./localfs.ts";
export * as postgres from "./postgres_target.ts";
export type { DirSource, FileItem, WalkDirOptions } from "./localfs.ts";
export type {
  KafkaProducer,
  ProducerMessage,
  TopicState,
  TopicTarget,
  TopicTargetOptions,
} from "./kafka_target.ts";
export type {
  RowKey,
  RowState,
  SqlClient,
  SqlQuery,
  SqlRow,
  TableState,
  TableTarget,
  TableTargetOptions,
} from "./postgres_target.ts";

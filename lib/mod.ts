/**
 * statecast: declare what a Kafka topic should hold as a function of your files; statecast
 * derives the upserts and deletes and remembers what it sent.
 *
 * @module
 */
export {
  App,
  type AppFn,
  type AppOptions,
  type FnOptions,
  type Lifespan,
  type RunOptions,
  type RunResult,
  VERSION,
} from "./app.ts";
export { Context, ContextKey } from "./context.ts";
export type { RoundSummary } from "./engine.ts";
export {
  type Change,
  declare,
  type DeclaredState,
  type Key,
  setSourceLine,
  type Target,
} from "./target.ts";
export { reconcile } from "./reconcile.ts";
export { StatecastError } from "./errors.ts";
export {
  type CsvOptions,
  type CsvRecord,
  CsvRow,
  type CsvRowsOptions,
  parseCsvRecords,
  parseCsvRows,
} from "./csv.ts";
export { StateStore } from "./state_store.ts";
export * as kafka from "./kafka.ts";
export * as localfs from "./localfs.ts";
export * as postgres from "./postgres_target.ts";
export type { FileItem } from "./localfs.ts";
export type { TopicState, TopicTarget } from "./kafka_target.ts";
export type { RowState, SqlClient, TableTarget } from "./postgres_target.ts";

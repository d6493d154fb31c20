/**
 * Everything that differs between Deno and Bun, in one place. The rest of statecast uses `node:`
 * modules, which both runtimes provide.
 *
 * @module
 */
import process from "node:process";

declare const Deno: { version: { deno: string } } | undefined;
declare const Bun: { version: string } | undefined;

/** Which runtime runs us, and its version. */
export function runtimeName(): string {
  if (typeof Deno !== "undefined") return `deno ${Deno.version.deno}`;
  if (typeof Bun !== "undefined") return `bun ${Bun.version}`;
  return `node ${process.version}`;
}

/** Whether stderr is a terminal (for progress bars). */
export function stderrIsTerminal(): boolean {
  return process.stderr.isTTY === true;
}

/** Calls `handler` on SIGINT and SIGTERM; returns a function that removes it. */
export function onStopSignal(handler: (signal: "SIGINT" | "SIGTERM") => void): () => void {
  const onInt = () => handler("SIGINT");
  const onTerm = () => handler("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return () => {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  };
}

/** Ends the process. */
export function exit(code: number): never {
  process.exit(code);
}

/** The command-line arguments after the script. */
export function args(): string[] {
  return process.argv.slice(2);
}

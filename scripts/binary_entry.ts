/**
 * Build-only entry point for the single binary: `scripts/build-binary [ENTRY]` copies it next to
 * ENTRY (default main.ts), pointing its last line at ENTRY, and runs `bun build --compile` on the
 * copy, so the addon and libsql resolve from ENTRY's node_modules. Not used by `deno run` or
 * `bun main.ts`.
 *
 * `bun build --compile` embeds a native addon only when the code imports it by a static path.
 * `@libsql/client` loads the `libsql` package, whose `index.js` picks its addon at run time:
 * `require(\`@libsql/${target}\`)` with `target` from `@neon-rs/load`'s `currentTarget()` (and
 * `detect-libc`). The bundler cannot see that path, so a plain compiled `main.ts` dies with
 * "Cannot find module '@libsql/linux-x64-gnu'". Here the addon is imported statically (which
 * embeds it in the binary and loads it from there) and registered, with Bun's runtime plugin API,
 * as a virtual module under the name `libsql` will ask for. `libsql`, `@libsql/client` and
 * `lib/` stay as they are.
 *
 * The addon is the linux x64 glibc one; `scripts/build-binary` refuses other platforms.
 *
 * @module
 */
import addon from "@libsql/linux-x64-gnu/index.node";

interface BunPluginBuilder {
  module(
    specifier: string,
    load: () => { exports: Record<string, unknown>; loader: "object" },
  ): void;
}
declare const Bun: {
  plugin(plugin: { name: string; setup(build: BunPluginBuilder): void }): void;
};

Bun.plugin({
  name: "statecast-embedded-libsql-addon",
  setup(build) {
    build.module("@libsql/linux-x64-gnu", () => ({
      exports: addon as Record<string, unknown>,
      loader: "object",
    }));
  },
});

// A dynamic import, so that main.ts (and libsql with it) is evaluated only after the plugin is
// registered; static imports would be evaluated first. The bundler still embeds main.ts.
// scripts/build-binary copies this file next to the entry it builds and replaces the path on the
// next line (keep it the only line that starts with `await import(`).
await import("../main.ts");

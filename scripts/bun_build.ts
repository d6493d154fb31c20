/**
 * `bun build --compile` through Bun's JavaScript API, for `scripts/build-binary`:
 *
 *   bun scripts/bun_build.ts ENTRY OUTFILE
 *
 * The API is used for one plugin the command line cannot take. `@platformatic/kafka` gets its
 * codecs and CRC from `@platformatic/wasm-utils`, whose main module reads `native.wasm` beside
 * itself at run time, a file the bundler does not embed (the binary fails with "ENOENT ...
 * /$bunfs/dist/native.wasm"). The package's `bundled` build carries the same WebAssembly inline,
 * so the plugin resolves the package to it. Nothing else differs from the command line's build.
 *
 * @module
 */
import process from "node:process";

interface BuildResult {
  success: boolean;
  logs: unknown[];
}
interface PluginBuilder {
  onResolve(options: { filter: RegExp }, resolve: () => { path: string }): void;
}
declare const Bun: {
  resolveSync(specifier: string, from: string): string;
  build(options: {
    entrypoints: string[];
    compile: { outfile: string; autoloadDotenv: boolean; autoloadBunfig: boolean };
    plugins: Array<{ name: string; setup(build: PluginBuilder): void }>;
  }): Promise<BuildResult>;
};

const [entry, outfile] = process.argv.slice(2);
if (entry === undefined || outfile === undefined) {
  console.error("usage: bun scripts/bun_build.ts ENTRY OUTFILE");
  process.exit(2);
}
// Resolved from the entry's folder: a job made by scripts/new-job has its own node_modules/.
const bundled = inlineWasmUtils(entry);

const result = await Bun.build({
  entrypoints: [entry],
  compile: { outfile, autoloadDotenv: false, autoloadBunfig: false },
  plugins: bundled === undefined ? [] : [{
    name: "statecast-wasm-utils-inline",
    setup(build) {
      build.onResolve({ filter: /^@platformatic\/wasm-utils$/ }, () => ({ path: bundled }));
    },
  }],
});
/** The inline build of @platformatic/wasm-utils as the entry would resolve it, if installed. */
function inlineWasmUtils(entry: string): string | undefined {
  const from = entry.includes("/") ? entry.slice(0, entry.lastIndexOf("/")) : process.cwd();
  try {
    const pkg = Bun.resolveSync("@platformatic/wasm-utils/package.json", from);
    return `${pkg.slice(0, -"package.json".length)}dist/bundled.js`;
  } catch {
    return undefined; // a job without @platformatic/kafka: nothing to inline
  }
}

for (const log of result.logs) console.error(log);
process.exit(result.success ? 0 : 1);

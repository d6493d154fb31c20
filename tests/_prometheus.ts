// Independent parsing of a Prometheus text exposition, for tests: Python's `prometheus_client`
// (PyPI; scripts/install-deps installs it) reads it, not a parser of ours.

/** One sample as the parser read it. */
export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One metric family as the parser read it. */
export interface ParsedFamily {
  name: string;
  type: string;
  help: string;
  samples: ParsedSample[];
}

const SCRIPT = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation, "samples": [
        {"name": s.name, "labels": s.labels,
         "value": s.value if math.isfinite(s.value) else str(s.value)} for s in f.samples]})
print(json.dumps(out))
`;

/** Parses `text` with `prometheus_client`; throws with the parser's error if it is invalid. */
export async function parseExposition(text: string): Promise<ParsedFamily[]> {
  let child;
  try {
    child = new Deno.Command("python3", {
      args: ["-c", SCRIPT],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    throw new Error(`could not run python3 (scripts/install-deps installs it): ${e}`);
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `prometheus_client could not parse the exposition (scripts/install-deps installs it):\n` +
        `${dec.decode(out.stderr)}\n--- text ---\n${text}`,
    );
  }
  return JSON.parse(dec.decode(out.stdout));
}

/** The value of the sample `name` with exactly these labels (undefined when absent). */
export function sampleValue(
  families: ParsedFamily[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const f of families) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      const keys = Object.keys(s.labels);
      if (keys.length !== Object.keys(labels).length) continue;
      if (keys.every((k) => s.labels[k] === labels[k])) return s.value;
    }
  }
  return undefined;
}

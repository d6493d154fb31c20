// statecast beyond CSV: every section of every Markdown file under DOCS_DIR becomes one message
// on KAFKA_TOPIC, keyed "path#heading-slug", valued { path, title, text } as JSON. Edit one
// section and one message goes out; delete a file and its sections are tombstoned.
//
//   deno run -A examples/docs_to_kafka/main.ts            catch up once, then exit
//   deno run -A examples/docs_to_kafka/main.ts --live     catch up, then keep watching
import { App, ContextKey, kafka, localfs, setSourceLine } from "../../lib/mod.ts";
import { markdownSections, SECTIONS_VERSION } from "./sections.ts";
import process from "node:process";
import { fileURLToPath } from "node:url";

const env = (name: string, fallback: string) => process.env[name] || fallback;
const PRODUCER = new ContextKey<kafka.KafkaProducer>("kafka_producer");

const app = new App({
  name: "DocsToKafka",
  environment: {
    KAFKA_TOPIC: "the topic, which statecast never creates (default statecast-doc-sections)",
    DOCS_DIR: "the folder of Markdown files, subfolders too (default: the example's docs/)",
    ...kafka.CONNECT_ENVIRONMENT,
  },
});

app.lifespan(async (ctx) => {
  const producer = await kafka.connectProducer(kafka.connectOptionsFromEnv());
  ctx.provide(PRODUCER, producer);
  return () => producer.close();
});

// The parser lives in sections.ts, outside this function's source: its version makes a change
// there read every file again.
const processDoc = app.fn(
  { memo: true, version: SECTIONS_VERSION },
  async (file, topic: kafka.TopicTarget) => {
    for (const { slug, title, text, line } of markdownSections(await file.text())) {
      setSourceLine(line); // an error about this message names the heading's line
      const value = JSON.stringify({ path: file.path, title, text });
      topic.declareTargetState({ key: `${file.path}#${slug}`, value });
    }
  },
);

app.main(async () => {
  const topicName = env("KAFKA_TOPIC", "statecast-doc-sections");
  const topic = await kafka.mountTopicTarget(PRODUCER, topicName);
  const docs = env("DOCS_DIR", fileURLToPath(new URL("./docs", import.meta.url)));
  const files = localfs.walkDir(docs, { include: ["**/*.md"], live: true, rootFrom: "DOCS_DIR" });
  await app.mountEach(processDoc, files, topic);
});

await app.cli();

/**
 * The producer thread of {@linkcode WorkerProducer}: connects a `@platformatic/kafka` producer
 * with the options it is given, sends what the main thread hands over, and answers each send
 * with its id and, on failure, the error's message, `type` and `retriable`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { parentPort, workerData } from "node:worker_threads";
import {
  connectPlatformaticProducer,
  type PlatformaticProducerOptions,
} from "./kafka_platformatic.ts";
import type { ProducerMessage } from "./kafka_target.ts";

/** A message as it crosses threads: bytes arrive as a plain Uint8Array. */
type Posted = { id: number; topic: string; messages: ProducerMessage[] } | { close: true };

const port = parentPort!;
const connecting = connectPlatformaticProducer(workerData as PlatformaticProducerOptions);
connecting.then(
  () => port.postMessage({ connected: true }),
  (error) => port.postMessage({ connected: false, error: described(error) }),
);

port.on("message", async (posted: Posted) => {
  const producer = await connecting.catch(() => undefined);
  if ("close" in posted) {
    await producer?.close();
    port.postMessage({ closed: true });
    return;
  }
  try {
    for (const m of posted.messages) {
      m.key = bytes(m.key);
      m.value = bytes(m.value);
    }
    await producer!.send({ topic: posted.topic, messages: posted.messages });
    port.postMessage({ id: posted.id });
  } catch (error) {
    port.postMessage({ id: posted.id, error: described(error) });
  }
});

/** A Uint8Array as the Buffer the client needs (murmur2 partitions only Buffers). */
function bytes(data: Buffer | Uint8Array | string | null): Buffer | string | null {
  return data === null || typeof data === "string" || Buffer.isBuffer(data)
    ? data
    : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function described(error: unknown): { message: string; type?: string; retriable: boolean } {
  const e = error as { message?: unknown; type?: unknown; retriable?: unknown };
  return {
    message: String(e?.message ?? error),
    ...(typeof e?.type === "string" ? { type: e.type } : {}),
    retriable: e?.retriable === true,
  };
}

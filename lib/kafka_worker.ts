/**
 * A `@platformatic/kafka` producer on a worker thread, behind the same {@linkcode KafkaProducer}
 * seam: the main thread only hands each batch over (one structured clone), and the client's
 * encoding, CRCs, socket writes and their garbage stay on the worker, out of the main heap.
 *
 * Measured (bench/kafka_send.ts --worker, Deno 2.9, 1M messages): the main thread's CPU for
 * sending fell from ~3.0 s to ~0.5 s (Bun: 3.3 s to 1.3 s), the process's total rose by about
 * 1 s. `kafka.connectProducer()` uses it with `producerThread: "worker"`
 * (`KAFKA_PRODUCER_THREAD=worker`); see `ConnectOptions.producerThread` for when it pays.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import type { PlatformaticProducerOptions } from "./kafka_platformatic.ts";
import type { KafkaProducer, ProducerMessage } from "./kafka_target.ts";

/** The worker's error, as facts: the target reads `type` and `retriable` (kafkajs' names). */
interface PostedError {
  message: string;
  type?: string;
  retriable: boolean;
}

type Reply =
  | { id: number; error?: PostedError }
  | { connected: boolean; error?: PostedError }
  | { closed: true };

function rebuilt(error: PostedError): Error {
  const { message, ...facts } = error;
  return Object.assign(new Error(message), facts);
}

/**
 * A {@linkcode KafkaProducer} whose `@platformatic/kafka` client runs in a worker thread: the
 * same messages, partitions, headers and errors as {@linkcode PlatformaticProducer}.
 *
 * @example
 * ```ts ignore
 * const producer = await WorkerProducer.connect({ brokers: ["127.0.0.1:9092"] });
 * ctx.provide(PRODUCER, producer);
 * ```
 */
export class WorkerProducer implements KafkaProducer, AsyncDisposable {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(): void; reject(error: Error): void }>();
  #next = 0;
  #closed: Promise<void> | undefined;
  #onClosed: (() => void) | undefined;
  /** As the adapter in the worker: it hands sends to the client in the order they arrive. */
  readonly inFlight = 2;

  private constructor(worker: Worker) {
    this.#worker = worker;
  }

  /** Starts the worker and connects its producer; rejects with the connect error. */
  static async connect(options: PlatformaticProducerOptions): Promise<WorkerProducer> {
    const worker = new Worker(new URL("./_kafka_worker.ts", import.meta.url), {
      workerData: options,
      // A small young generation bounds the thread's memory: its garbage is short-lived. Measured
      // (1M messages): peak RSS 255 MB at 8 MB, 283 MB at 48, 317 MB unbounded, for 5.7, 5.3 and
      // 5.1 CPU s; a full collection every 10,000 messages instead cost 7.8-9.9 CPU s.
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
    try {
      await new Promise<void>((resolve, reject) => {
        worker.once("error", reject);
        worker.once("message", (reply: Reply) => {
          if ("connected" in reply && reply.connected) resolve();
          else reject(rebuilt((reply as { error: PostedError }).error));
        });
      });
    } catch (error) {
      await worker.terminate();
      throw error;
    }
    const producer = new WorkerProducer(worker);
    worker.on("message", (reply: Reply) => producer.#reply(reply));
    worker.on("error", (error) => producer.#failAll(error));
    worker.on("exit", () => producer.#failAll(new Error("The Kafka producer thread exited")));
    return producer;
  }

  #reply(reply: Reply): void {
    if ("closed" in reply) return this.#onClosed?.();
    if (!("id" in reply)) return;
    const waiting = this.#pending.get(reply.id);
    this.#pending.delete(reply.id);
    if (reply.error === undefined) waiting?.resolve();
    else waiting?.reject(rebuilt(reply.error));
  }

  /** A dead worker answers nothing: every send still waiting fails (retriable). */
  #failAll(cause: unknown): void {
    for (const { reject } of this.#pending.values()) {
      reject(Object.assign(new Error(`The Kafka producer thread failed`, { cause }), {
        retriable: true,
      }));
    }
    this.#pending.clear();
    this.#onClosed?.();
  }

  /** Hands `messages` to the worker; resolves once the broker acknowledged every one. */
  send(record: { topic: string; messages: ProducerMessage[] }): Promise<unknown> {
    const id = this.#next++;
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, topic: record.topic, messages: record.messages });
    });
  }

  /** Closes the producer in the worker, then ends the worker. */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#onClosed = resolve;
      this.#worker.postMessage({ close: true });
    }).then(() => this.#worker.terminate()).then(() => {});
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * The Kafka target and its producer: `kafka.mountTopicTarget()` (kafka_target.ts) and
 * `kafka.connectProducer()` (kafka_connect.ts), one namespace in `mod.ts`.
 *
 * @module
 */
export * from "./kafka_target.ts";
export * from "./kafka_connect.ts";

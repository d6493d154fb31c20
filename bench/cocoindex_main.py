"""CocoIndex's examples/csv_to_kafka/main.py, as bench/run.ts runs it beside statecast's main.ts.

Same job: each row of each *.csv under DATA_DIR becomes one message keyed by the row's first
column, valued by the row as JSON. Differences from the upstream example, all so that both tools
do the same work on the same broker: DATA_DIR comes from the environment (upstream: "./data"),
the key is the first column's value (as in upstream's README; its main.py prefixes the file
name), no SASL block, and `ContextKey(...)` without `tracked=False`, which cocoindex 1.0.26
(the version on PyPI here) does not accept.
"""

import csv
import io
import json
import os
from collections.abc import AsyncIterator

from confluent_kafka.aio import AIOProducer

import cocoindex as coco
from cocoindex.connectors import kafka, localfs
from cocoindex.resources.file import FileLike, PatternFilePathMatcher

KAFKA_PRODUCER = coco.ContextKey[AIOProducer]("kafka_producer")
KAFKA_TOPIC = os.environ.get("KAFKA_TOPIC", "csv-rows")
KAFKA_BOOTSTRAP_SERVERS = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
DATA_DIR = os.environ.get("DATA_DIR", "./data")


@coco.lifespan
async def coco_lifespan(builder: coco.EnvironmentBuilder) -> AsyncIterator[None]:
    producer = AIOProducer({"bootstrap.servers": KAFKA_BOOTSTRAP_SERVERS})
    builder.provide(KAFKA_PRODUCER, producer)
    yield


@coco.fn(memo=True)
async def process_csv(file: FileLike, topic_target: kafka.KafkaTopicTarget) -> None:
    reader = csv.DictReader(io.StringIO(await file.read_text()))
    headers = reader.fieldnames
    if not headers:
        return
    first_col = headers[0]
    for row in reader:
        key_value = row.get(first_col)
        if key_value is not None:
            topic_target.declare_target_state(key=key_value, value=json.dumps(row))


@coco.fn
async def app_main() -> None:
    topic_target = await kafka.mount_kafka_topic_target(KAFKA_PRODUCER, KAFKA_TOPIC)
    files = localfs.walk_dir(
        localfs.FilePath(path=DATA_DIR),
        path_matcher=PatternFilePathMatcher(included_patterns=["**/*.csv"]),
        live=True,
    )
    await coco.mount_each(process_csv, files.items(), topic_target)


app = coco.App(coco.AppConfig(name="CsvToKafka"), app_main)

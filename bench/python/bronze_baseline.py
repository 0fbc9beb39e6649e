#!/usr/bin/env python3
"""Python bronze baseline: one Kafka topic into one bronze Delta table, at-least-once.

This is the kind of service rxlake replaces, written the way a careful team writes it today:
a confluent-kafka consumer (librdkafka), a hand-written batching loop (time or record count),
a pyarrow table in the bronze layout, one delta-rs `write_deltalake` append per batch, and
the Kafka offsets committed synchronously after the Delta commit.

Guarantee: at-least-once. A crash after a Delta commit and before the offset commit replays
that batch on restart, and nothing in the table says it is already there, so the rows are
written twice.

Usage:
  bronze_baseline.py --topic T --group G --table PATH [--bounded] [options]

  --bootstrap HOST:PORT    Kafka brokers (default KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092)
  --topic T                Kafka topic to ingest
  --group G                consumer group id
  --table PATH             Delta table path (local folder)
  --batch-seconds S        flush a batch after S seconds (default 10)
  --batch-records N        flush a batch at N records (default 100000)
  --bounded                stop once the high-water marks seen at start are reached
  --session-timeout-ms MS  consumer session timeout (default: librdkafka's, 45000)
  -X KEY=VALUE             extra librdkafka consumer setting (repeatable), e.g.
                           -X queued.max.messages.kbytes=16384 to bound the prefetch queue
  --crash-after-writes K   fault injection: SIGKILL this process right after the K-th Delta
                           write, before its offsets are committed (duplicate-window test)

Bounded mode prints one JSON line on stdout: records, invalid, bytes, seconds, records_per_s,
mb_per_s, peak_rss_mb, files, writes, write_s (time in write_deltalake), commit_s (time in
the synchronous offset commits: the window in which a crash duplicates a batch).
"""
import argparse
import datetime as dt
import json
import os
import resource
import signal
import sys
import time

import pyarrow as pa
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, TopicPartition
from deltalake import DeltaTable, write_deltalake

UTC_US = pa.timestamp("us", tz="UTC")

BRONZE_SCHEMA = pa.schema(
    [
        pa.field("_raw_value", pa.string()),
        pa.field("_kafka_partition", pa.int32()),
        pa.field("_kafka_offset", pa.int64()),
        pa.field("_kafka_timestamp", UTC_US),
        pa.field("_ingested_at", UTC_US),
        pa.field("_ingestion_date", pa.string()),
    ]
)

POLL_CHUNK = 10_000


def parse_args(argv):
    p = argparse.ArgumentParser(description="Python bronze baseline (confluent-kafka + delta-rs)")
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--batch-seconds", type=float, default=10.0)
    p.add_argument("--batch-records", type=int, default=100_000)
    p.add_argument("--bounded", action="store_true")
    p.add_argument("--session-timeout-ms", type=int, default=None)
    p.add_argument("--crash-after-writes", type=int, default=0)
    p.add_argument("-X", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    return p.parse_args(argv)


class Batch:
    """Column lists of the rows consumed since the last flush."""

    def __init__(self):
        self.raw = []
        self.partition = []
        self.offset = []
        self.kafka_ts = []
        self.ingested_at = []
        self.ingestion_date = []
        self.started = None

    def __len__(self):
        return len(self.raw)

    def to_arrow(self):
        return pa.Table.from_arrays(
            [
                pa.array(self.raw, pa.string()),
                pa.array(self.partition, pa.int32()),
                pa.array(self.offset, pa.int64()),
                pa.array(self.kafka_ts, UTC_US),
                pa.array(self.ingested_at, UTC_US),
                pa.array(self.ingestion_date, pa.string()),
            ],
            schema=BRONZE_SCHEMA,
        )


def ensure_table(path):
    """Create the table on startup if missing, so readers see it before the first batch."""
    try:
        return DeltaTable(path)
    except Exception:  # noqa: BLE001 - deltalake raises TableNotFoundError (varies by version)
        return DeltaTable.create(path, schema=BRONZE_SCHEMA, partition_by=["_ingestion_date"], mode="ignore")


def high_water_marks(consumer, topic):
    """Per partition: (start offset for this group, high-water mark at start)."""
    md = consumer.list_topics(topic, timeout=30)
    tmeta = md.topics.get(topic)
    if tmeta is None or tmeta.error is not None:
        raise RuntimeError(f"topic {topic!r} not found: {tmeta.error if tmeta else 'no metadata'}")
    tps = [TopicPartition(topic, p) for p in sorted(tmeta.partitions)]
    committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=30)}
    marks = {}
    for tp in tps:
        low, high = consumer.get_watermark_offsets(tp, timeout=30, cached=False)
        start = committed.get(tp.partition, OFFSET_INVALID)
        if start is None or start < 0:
            start = low  # auto.offset.reset=earliest
        marks[tp.partition] = (start, high)
    return marks


def main(argv):
    args = parse_args(argv)
    t0 = time.monotonic()
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if args.session_timeout_ms is not None:
        conf["session.timeout.ms"] = args.session_timeout_ms
    for kv in args.extra:
        key, sep, value = kv.partition("=")
        if not sep:
            raise SystemExit(f"-X expects KEY=VALUE, got {kv!r}")
        conf[key] = value
    consumer = Consumer(conf)
    ensure_table(args.table)

    # next offset to read per partition, and the bound (high-water mark at start) in bounded mode
    position = {}
    bound = {}
    if args.bounded:
        for p, (start, high) in high_water_marks(consumer, args.topic).items():
            position[p] = start
            bound[p] = high

    def caught_up():
        return all(position.get(p, 0) >= high for p, high in bound.items())

    consumer.subscribe([args.topic])

    batch = Batch()
    records = invalid = nbytes = writes = 0
    date_cache = {}
    # time inside write_deltalake, and inside the offset commit: a crash during the latter,
    # after the Delta commit landed, is what duplicates a batch on restart
    timing = {"write_s": 0.0, "commit_s": 0.0}

    def flush():
        nonlocal batch, writes
        t_write = time.monotonic()
        if len(batch) > 0:
            write_deltalake(args.table, batch.to_arrow(), mode="append", partition_by=["_ingestion_date"])
            writes += 1
            if args.crash_after_writes and writes >= args.crash_after_writes:
                os.kill(os.getpid(), signal.SIGKILL)
        # offsets of everything consumed so far: all of it is in the table now
        t_commit = time.monotonic()
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as e:
            if e.args[0].code() != KafkaError._NO_OFFSET:
                raise
        t_done = time.monotonic()
        timing["write_s"] += t_commit - t_write
        timing["commit_s"] += t_done - t_commit
        batch = Batch()

    while True:
        if args.bounded and caught_up():
            break
        if len(batch) > 0:
            wait = args.batch_seconds - (time.monotonic() - batch.started)
            if wait <= 0:
                flush()
                continue
        else:
            wait = args.batch_seconds
        want = min(POLL_CHUNK, args.batch_records - len(batch))
        msgs = consumer.consume(num_messages=want, timeout=min(1.0, wait))
        if not msgs:
            if args.bounded:
                # positions also move past transaction markers, which are never delivered
                for tp in consumer.position(consumer.assignment()):
                    if tp.offset >= 0 and tp.offset > position.get(tp.partition, 0):
                        position[tp.partition] = tp.offset
            continue
        now = dt.datetime.now(dt.timezone.utc)
        now_us = int(now.timestamp() * 1_000_000)
        day = date_cache.get(now.date())
        if day is None:
            day = date_cache.setdefault(now.date(), now.strftime("%Y-%m-%d"))
        if batch.started is None:
            batch.started = time.monotonic()
        raw, part, off, kts = batch.raw, batch.partition, batch.offset, batch.kafka_ts
        n_before = len(raw)
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(err)
            p = m.partition()
            o = m.offset()
            position[p] = o + 1
            v = m.value()
            if v is None:
                invalid += 1
                continue
            nbytes += len(v)
            try:
                s = v.decode("utf-8")
                json.loads(s)
            except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
                invalid += 1
                continue
            raw.append(s)
            part.append(p)
            off.append(o)
            kts.append(m.timestamp()[1] * 1000)
        added = len(raw) - n_before
        records += added
        batch.ingested_at.extend([now_us] * added)
        batch.ingestion_date.extend([day] * added)
        if len(batch) >= args.batch_records:
            flush()

    flush()
    consumer.close()
    seconds = time.monotonic() - t0
    files = len(DeltaTable(args.table).file_uris())
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "records": records,
                "invalid": invalid,
                "bytes": nbytes,
                "seconds": round(seconds, 3),
                "records_per_s": round(records / seconds),
                "mb_per_s": round(nbytes / 2**20 / seconds, 2),
                "peak_rss_mb": round(peak_rss_mb, 1),
                "files": files,
                "writes": writes,
                "write_s": round(timing["write_s"], 3),
                "commit_s": round(timing["commit_s"], 4),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

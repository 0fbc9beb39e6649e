#!/usr/bin/env python3
"""Spark Structured Streaming bronze baseline: one Kafka topic into one bronze Delta table.

The other service rxlake replaces: the bronze job a Spark team writes — `readStream` from
Kafka, the bronze columns, `writeStream` in Delta format partitioned by `_ingestion_date`, a
checkpoint folder. Spark's Delta sink is exactly-once (the checkpoint's offsets plus the Delta
log's `txn` per query and batch), the same guarantee as rxlake.

Run in bounded mode (`trigger(availableNow=True)`: everything available at start, then stop),
on `local[N]` (default: as many cores as the machine has).

Usage:
  bronze_spark.py --topic T --table PATH --checkpoint PATH [options]

  --bootstrap HOST:PORT     Kafka brokers (default KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092)
  --cores N                 local[N] (default: all cores)
  --driver-memory SIZE      JVM heap of the driver, e.g. 1g (default: Spark's, 1g)
  --max-offsets-per-trigger N  records per micro-batch (default: Spark's, unlimited)
  --validate-json           also parse each payload (from_json) and keep only rows that parse:
                            the JSON check the Python baseline and rxlake do (off by default:
                            a plain Spark bronze job stores the value as it comes)
  --ivy DIR                 Ivy cache for the Kafka and Delta packages (downloaded on first use)

Prints one JSON line on stdout: records, seconds (query start to end), startup_s (session
start-up incl. package resolution), batches, per_batch (rows and Spark's processedRowsPerSecond
of each micro-batch), files.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from session import spark_session  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    ap.add_argument("--topic", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--driver-memory")
    ap.add_argument("--max-offsets-per-trigger", type=int)
    ap.add_argument("--validate-json", action="store_true")
    ap.add_argument("--ivy", default=os.path.expanduser("~/.ivy2"))
    args = ap.parse_args()

    t0 = time.monotonic()
    from pyspark.sql import functions as F

    spark = spark_session("bronze-spark-baseline", args.cores, args.ivy, args.driver_memory)
    startup_s = time.monotonic() - t0

    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap)
        .option("subscribe", args.topic)
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", "true")
    )
    if args.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", args.max_offsets_per_trigger)
    now = F.current_timestamp()
    bronze = reader.load().select(
        F.col("value").cast("string").alias("_raw_value"),
        F.col("partition").alias("_kafka_partition"),
        F.col("offset").alias("_kafka_offset"),
        F.col("timestamp").alias("_kafka_timestamp"),
        now.alias("_ingested_at"),
        F.date_format(now, "yyyy-MM-dd").alias("_ingestion_date"),
    )
    if args.validate_json:
        # Rows whose payload is not a JSON object parse to null: keep the others.
        parsed = F.from_json(F.col("_raw_value"), "MAP<STRING,STRING>", {"mode": "PERMISSIVE"})
        bronze = bronze.where(parsed.isNotNull())

    t1 = time.monotonic()
    query = (
        bronze.writeStream.format("delta")
        .outputMode("append")
        .partitionBy("_ingestion_date")
        .option("checkpointLocation", args.checkpoint)
        .trigger(availableNow=True)
        .start(args.table)
    )
    query.awaitTermination()
    seconds = time.monotonic() - t1
    progress = query.recentProgress
    records = sum(int(p.get("numInputRows", 0)) for p in progress)
    files = sum(1 for root, _, names in os.walk(args.table) if "_delta_log" not in root for n in names if n.endswith(".parquet"))
    spark.stop()
    batches = [p for p in progress if int(p.get("numInputRows", 0)) > 0]
    # Per micro-batch: rows and Spark's own rows/s (the later ones run on warmed-up JIT code).
    per_batch = [{"rows": int(p["numInputRows"]), "rows_per_s": round(float(p.get("processedRowsPerSecond") or 0))} for p in batches]
    print(json.dumps({"records": records, "seconds": round(seconds, 3), "startup_s": round(startup_s, 3),
                      "batches": len(batches), "per_batch": per_batch, "files": files}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

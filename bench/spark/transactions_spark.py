#!/usr/bin/env python3
"""Spark Structured Streaming baseline of the transactions job: one `transactions` topic into a
typed Delta table, and per-account 1-minute tumbling windows (count, sum, avg, max of amount,
event time, watermark) into a Delta table and a PostgreSQL table (upsert ON CONFLICT).

What a Spark team writes for it: two streaming queries in one session. The typed query is
Spark's Delta sink (exactly-once through its checkpoint). The windows query runs in append mode
(a window is emitted once the watermark passes it) through `foreachBatch`, which writes the
batch to Delta idempotently (`txnAppId` / `txnVersion` = the batch id) and upserts it into
PostgreSQL with psycopg2. Run bounded (`trigger(availableNow=True)`) on `local[N]`.

Less work than the rxlake job: no quarantine table, and no per-partition watermark (Spark's
is global, the maximum event time seen minus the delay).

Usage:
  transactions_spark.py --topic T --base PATH --checkpoint PATH --pg-url URL --pg-table SCHEMA.TABLE [options]
  --window-seconds N (60)   --delay-seconds N (30)   --cores N   --ivy DIR   --driver-memory SIZE

Needs psycopg2 in the Spark virtualenv (`.stack/spark-venv/bin/pip install psycopg2-binary`).
Prints one JSON line: records (typed rows written), windows, seconds, startup_s.
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
    ap.add_argument("--base", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--pg-url", required=True)
    ap.add_argument("--pg-table", required=True)
    ap.add_argument("--window-seconds", type=int, default=60)
    ap.add_argument("--delay-seconds", type=int, default=30)
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--driver-memory")
    ap.add_argument("--ivy", default=os.path.expanduser("~/.ivy2"))
    args = ap.parse_args()
    try:
        import psycopg2
        from psycopg2.extras import execute_values
    except ImportError:
        print("psycopg2 missing: .stack/spark-venv/bin/pip install psycopg2-binary", file=sys.stderr)
        return 2

    schema_name, table_name = args.pg_table.split(".", 1)
    with psycopg2.connect(args.pg_url) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema_name}"')
        cur.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema_name}"."{table_name}" (account_id text NOT NULL, window_start timestamptz NOT NULL, '
            "window_end timestamptz NOT NULL, event_count bigint NOT NULL, amount_sum double precision NOT NULL, "
            "amount_avg double precision NOT NULL, amount_max double precision NOT NULL, PRIMARY KEY (account_id, window_start))"
        )

    t0 = time.monotonic()
    from pyspark.sql import functions as F, types as T

    spark = spark_session("transactions-spark-baseline", args.cores, args.ivy, args.driver_memory, {"spark.sql.shuffle.partitions": str(args.cores)})
    startup_s = time.monotonic() - t0

    event = T.StructType([
        T.StructField("transaction_id", T.StringType()),
        T.StructField("account_id", T.StringType()),
        T.StructField("merchant_id", T.StringType()),
        T.StructField("amount", T.DoubleType()),
        T.StructField("currency", T.StringType()),
        T.StructField("timestamp", T.StringType()),
    ])

    def source():
        return (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", args.bootstrap)
            .option("subscribe", args.topic)
            .option("startingOffsets", "earliest")
            .load()
        )

    def typed(df):
        e = F.from_json(F.col("value").cast("string"), event).alias("e")
        # ISO-8601 as producers send it: 'T' or a space, zone with or without the colon.
        ts = F.regexp_replace(F.regexp_replace(F.col("e.timestamp"), " ", "T"), r"([+-]\d{2})(\d{2})$", "$1:$2")
        return (
            df.select(e, "partition", "offset", "timestamp")
            .select(
                "e.transaction_id", "e.account_id", "e.merchant_id", "e.amount", "e.currency",
                ts.cast("timestamp").alias("event_time"),
                F.col("partition").alias("_kafka_partition"), F.col("offset").alias("_kafka_offset"),
                F.col("timestamp").alias("_kafka_timestamp"), F.current_timestamp().alias("_ingested_at"),
            )
            .where("transaction_id IS NOT NULL AND account_id IS NOT NULL AND amount >= 0 AND currency RLIKE '^[A-Z]{3}$' AND event_time IS NOT NULL")
            .withColumn("event_date", F.date_format("event_time", "yyyy-MM-dd"))
        )

    typed_query = (
        typed(source()).writeStream.format("delta").outputMode("append").partitionBy("event_date")
        .option("checkpointLocation", os.path.join(args.checkpoint, "typed"))
        .trigger(availableNow=True).start(os.path.join(args.base, "transactions"))
    )

    windows = (
        typed(source())
        .withWatermark("event_time", f"{args.delay_seconds} seconds")
        .groupBy(F.window("event_time", f"{args.window_seconds} seconds"), "account_id")
        .agg(F.count("*").alias("event_count"), F.sum("amount").alias("amount_sum"), F.avg("amount").alias("amount_avg"), F.max("amount").alias("amount_max"))
        .select("account_id", F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"),
                "event_count", "amount_sum", "amount_avg", "amount_max")
    )
    window_table = os.path.join(args.base, f"{table_name}")
    written = {"windows": 0}

    def write_batch(batch, batch_id):
        batch = batch.persist()
        (batch.withColumn("window_date", F.date_format("window_start", "yyyy-MM-dd"))
         .write.format("delta").mode("append").partitionBy("window_date")
         .option("txnAppId", "transactions-spark-windows").option("txnVersion", batch_id).save(window_table))
        rows = [tuple(r) for r in batch.collect()]
        batch.unpersist()
        if not rows:
            return
        with psycopg2.connect(args.pg_url) as conn, conn.cursor() as cur:
            execute_values(
                cur,
                f'INSERT INTO "{schema_name}"."{table_name}" (account_id, window_start, window_end, event_count, amount_sum, amount_avg, amount_max) VALUES %s '
                "ON CONFLICT (account_id, window_start) DO UPDATE SET window_end = EXCLUDED.window_end, event_count = EXCLUDED.event_count, "
                "amount_sum = EXCLUDED.amount_sum, amount_avg = EXCLUDED.amount_avg, amount_max = EXCLUDED.amount_max",
                rows,
                page_size=5000,
            )
        written["windows"] += len(rows)

    t1 = time.monotonic()
    windows_query = (
        windows.writeStream.outputMode("append").foreachBatch(write_batch)
        .option("checkpointLocation", os.path.join(args.checkpoint, "windows"))
        .trigger(availableNow=True).start()
    )
    typed_query.awaitTermination()
    windows_query.awaitTermination()
    seconds = time.monotonic() - t1
    records = sum(int(p.get("numInputRows", 0)) for p in typed_query.recentProgress)
    spark.stop()
    print(json.dumps({"records": records, "windows": written["windows"], "seconds": round(seconds, 3), "startup_s": round(startup_s, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

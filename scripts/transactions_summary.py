#!/usr/bin/env python3
"""Summarises the transactions job's Delta tables with delta-rs (the independent reader): rows of
each typed table, quarantined rows by error_type, and the window tables (windows, events counted,
amount total, last window end). Prints the same figures for the PostgreSQL window tables when
given their counts as JSON on stdin (scripts/demo-transactions.sh does).

Usage: transactions_summary.py BASE_PATH [< pg-figures.json]
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from delta_verify import storage_options  # noqa: E402

TOPICS = ["transactions", "refunds"]


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    base = sys.argv[1].rstrip("/")
    pg = {} if sys.stdin.isatty() else json.loads(sys.stdin.read() or "{}")
    from deltalake import DeltaTable
    import pyarrow.compute as pc

    def table(name):
        uri = f"{base}/{name}"
        return DeltaTable(uri, storage_options=storage_options(uri))

    print(f"{'topic':<13} {'typed rows':>10} {'quarantined':>11}  by error type")
    for topic in TOPICS:
        typed = table(topic).to_pyarrow_table(columns=["_kafka_offset"]).num_rows
        q = table(f"quarantine_{topic}").to_pyarrow_table(columns=["error_type"])
        counts = pc.value_counts(q.column("error_type")).to_pylist() if q.num_rows else []
        types = ", ".join(f"{c['values']}={c['counts']}" for c in sorted(counts, key=lambda c: c["values"])) or "-"
        print(f"{topic:<13} {typed:>10} {q.num_rows:>11}  {types}")
    print()
    print(f"{'window table':<28} {'store':<10} {'windows':>7} {'events':>7} {'amount total':>14}  last window end")
    for topic in TOPICS:
        name = f"{topic}_by_account_1m"
        w = table(name).to_pyarrow_table(columns=["event_count", "amount_sum", "window_end"])
        last = pc.max(w.column("window_end")).as_py() if w.num_rows else None
        events = pc.sum(w.column("event_count")).as_py() if w.num_rows else 0
        total = pc.sum(w.column("amount_sum")).as_py() if w.num_rows else 0.0
        print(f"{name:<28} {'delta':<10} {w.num_rows:>7} {events:>7} {total:>14.2f}  {last}")
        p = pg.get(name)
        if p:
            print(f"{'':<28} {'postgres':<10} {p['windows']:>7} {p['events']:>7} {p['total']:>14.2f}  {p['last']}")


if __name__ == "__main__":
    main()

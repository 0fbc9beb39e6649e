#!/usr/bin/env python3
"""Summarises the card medallion job's Delta tables with delta-rs (the independent reader): rows of
bronze, quarantine (by error_type), silver (cards, amounts, event time range) and gold (windows,
transactions counted, amount total, last window end). Prints the same gold figures for the
PostgreSQL table when given them as JSON on stdin (scripts/demo-cards.sh does).

Usage: cards_summary.py OUTPUT_PATH [< pg-gold.json]
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from delta_verify import storage_options  # noqa: E402


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    base = sys.argv[1].rstrip("/")
    pg = None if sys.stdin.isatty() else json.loads(sys.stdin.read() or "null")
    from deltalake import DeltaTable
    import pyarrow.compute as pc

    def table(name, columns):
        uri = f"{base}/{name}"
        return DeltaTable(uri, storage_options=storage_options(uri)).to_pyarrow_table(columns=columns)

    bronze = table("bronze", ["offset"])
    quarantine = table("quarantine", ["error_type"])
    silver = table("silver", ["card_id", "amount", "event_time"])
    gold = table("gold", ["txn_count", "sum_amount", "window_end"])
    counts = pc.value_counts(quarantine.column("error_type")).to_pylist() if quarantine.num_rows else []
    types = ", ".join(f"{c['values']}={c['counts']}" for c in sorted(counts, key=lambda c: c["values"])) or "-"
    print(f"{'table':<12} {'store':<10} {'rows':>7}  details")
    print(f"{'bronze':<12} {'delta':<10} {bronze.num_rows:>7}  every record as read")
    print(f"{'quarantine':<12} {'delta':<10} {quarantine.num_rows:>7}  {types}")
    if silver.num_rows:
        cards = pc.count_distinct(silver.column("card_id")).as_py()
        no_amount = silver.num_rows - pc.count(silver.column("amount")).as_py()
        first, last = pc.min(silver.column("event_time")).as_py(), pc.max(silver.column("event_time")).as_py()
        print(f"{'silver':<12} {'delta':<10} {silver.num_rows:>7}  {cards} cards, {no_amount} without an amount, events {first} .. {last}")
    else:
        print(f"{'silver':<12} {'delta':<10} {0:>7}")
    txns = pc.sum(gold.column("txn_count")).as_py() if gold.num_rows else 0
    total = pc.sum(gold.column("sum_amount")).as_py() if gold.num_rows else 0.0
    last = pc.max(gold.column("window_end")).as_py() if gold.num_rows else None
    print(f"{'gold':<12} {'delta':<10} {gold.num_rows:>7}  {txns} transactions in closed windows, amount {total or 0:.2f}, last window end {last}")
    if pg:
        print(f"{'gold_card_1m':<12} {'postgres':<10} {pg['windows']:>7}  {pg['txns']} transactions in closed windows, amount {pg['total']:.2f}, last window end {pg['last']}")


if __name__ == "__main__":
    main()

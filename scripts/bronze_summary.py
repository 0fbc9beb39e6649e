#!/usr/bin/env python3
"""Summarises bronze tables with delta-rs (the independent reader): for each bronze_<topic>
table its version and rows, for each dlq_bronze_<topic> table its rows by error_type.

Usage: bronze_summary.py BASE_PATH [--json]
BASE_PATH is a local folder or s3://bucket/prefix (S3 settings as for delta_verify.py).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from delta_verify import storage_options  # noqa: E402

TOPICS = ["gps_pings", "trips", "driver_status", "surge_updates", "ratings", "payments", "driver_profiles", "rider_profiles"]


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    base = sys.argv[1].rstrip("/")
    as_json = "--json" in sys.argv
    from deltalake import DeltaTable
    import pyarrow.compute as pc

    out = {}
    for topic in TOPICS:
        entry = {}
        for kind, name in (("bronze", f"bronze_{topic}"), ("dlq", f"dlq_bronze_{topic}")):
            uri = f"{base}/{name}"
            try:
                dt = DeltaTable(uri, storage_options=storage_options(uri))
            except Exception as e:  # noqa: BLE001
                entry[kind] = {"error": str(e)}
                continue
            cols = ["error_type"] if kind == "dlq" else ["_kafka_offset"]
            tbl = dt.to_pyarrow_table(columns=cols)
            info = {"version": dt.version(), "rows": tbl.num_rows}
            if kind == "dlq":
                counts = pc.value_counts(tbl.column("error_type")).to_pylist() if tbl.num_rows else []
                info["by_error_type"] = {c["values"]: c["counts"] for c in counts}
            entry[kind] = info
        out[topic] = entry
    if as_json:
        print(json.dumps(out))
        return
    print(f"{'topic':<16} {'bronze rows':>11} {'version':>7}  {'dlq rows':>8} {'version':>7}  dlq by error type")
    total_b = total_d = 0
    for topic, e in out.items():
        b, d = e.get("bronze", {}), e.get("dlq", {})
        if "error" in b or "error" in d:
            print(f"{topic:<16} unreadable: {b.get('error') or d.get('error')}")
            continue
        total_b += b["rows"]
        total_d += d["rows"]
        types = ", ".join(f"{k}={v}" for k, v in sorted(d.get("by_error_type", {}).items())) or "-"
        print(f"{topic:<16} {b['rows']:>11} {b['version']:>7}  {d['rows']:>8} {d['version']:>7}  {types}")
    print(f"{'total':<16} {total_b:>11} {'':>7}  {total_d:>8}")


if __name__ == "__main__":
    main()
    # Skip interpreter teardown (native runtime threads occasionally abort the process at exit).
    sys.stdout.flush()
    os._exit(0)

#!/usr/bin/env python3
"""Independent Delta table reader for rxlake's tests: delta-rs (Python `deltalake`) reads a
table and prints what it sees as one JSON document on stdout.

Usage:
  delta_verify.py URI [--version N] [--app-id ID ...] [--rows] [--columns a,b] [--write-rows JSON]

  URI            a local path or s3://bucket/prefix (S3 settings from S3_ENDPOINT_URL,
                 AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)
  --version N    open the table at version N instead of the latest
  --app-id ID    report transaction_version(ID) (repeatable)
  --rows         include every row (sorted by the first column given in --columns, if any)
  --columns      restrict rows to these columns
  --write-rows   append these rows (JSON list of objects) with delta-rs itself and exit;
                 used to prove interop and to sanity-check this verifier

Output JSON: version, protocol {min_reader_version, min_writer_version}, schema [{name, type,
nullable}], partition_columns, num_rows, files [{path, size, partition_values, num_records}],
txn {appId: version|null}, txn_exact {appId: version as a decimal string|null}, history_len, rows (optional). Values in rows: int64 as strings,
timestamps as ISO-8601 with microseconds and 'Z', binary as {"base64": ...}.
"""
import argparse
import base64
import datetime as dt
import json
import os
import sys


def storage_options(uri):
    if not uri.startswith("s3://"):
        return None
    opts = {
        # The local stack's S3 server (scripts/stack.sh: S3_PORT) unless S3_ENDPOINT_URL names one.
        "AWS_ENDPOINT_URL": os.environ.get("S3_ENDPOINT_URL") or f"http://127.0.0.1:{os.environ.get('S3_PORT') or '9000'}",
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "rxlake"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "rxlake-secret"),
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        "AWS_ALLOW_HTTP": "true",
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
        "aws_conditional_put": "etag",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
    }
    return opts


def to_json_value(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return str(v) if abs(v) > 2**53 - 1 else v
    if isinstance(v, float):
        return v
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.timezone.utc)
        return v.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray)):
        return {"base64": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, dict):
        return {k: to_json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_json_value(x) for x in v]
    return v


def write_rows(uri, rows_json):
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    dtable = DeltaTable(uri, storage_options=storage_options(uri))
    schema = dtable.schema().to_arrow()
    schema = pa.schema(schema) if not isinstance(schema, pa.Schema) else schema
    rows = json.loads(rows_json)
    cols = {}
    for field in schema:
        vals = [r.get(field.name) for r in rows]
        if pa.types.is_timestamp(field.type):
            vals = [None if v is None else dt.datetime.fromisoformat(v.replace("Z", "+00:00")) for v in vals]
        elif pa.types.is_integer(field.type):
            vals = [None if v is None else int(v) for v in vals]
        elif pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            vals = [None if v is None else base64.b64decode(v["base64"]) for v in vals]
        cols[field.name] = pa.array(vals, type=field.type)
    table = pa.table(cols, schema=schema)
    write_deltalake(uri, table, mode="append", storage_options=storage_options(uri))
    dtable = DeltaTable(uri, storage_options=storage_options(uri))
    print(json.dumps({"version": dtable.version()}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("uri")
    ap.add_argument("--version", type=int)
    ap.add_argument("--app-id", action="append", default=[])
    ap.add_argument("--rows", action="store_true")
    ap.add_argument("--columns")
    ap.add_argument("--write-rows")
    args = ap.parse_args()

    from deltalake import DeltaTable

    if args.write_rows is not None:
        write_rows(args.uri, args.write_rows)
        return

    dtable = DeltaTable(args.uri, version=args.version, storage_options=storage_options(args.uri))
    proto = dtable.protocol()
    meta = dtable.metadata()
    schema = dtable.schema()
    fields = [
        {"name": f.name, "type": json.loads(f.to_json())["type"] if hasattr(f, "to_json") else str(f.type), "nullable": f.nullable}
        for f in schema.fields
    ]
    import pyarrow as pa

    adds = pa.table(dtable.get_add_actions(flatten=True)).to_pylist()
    files = []
    for a in adds:
        pv = {k[len("partition."):]: to_json_value(v) for k, v in a.items() if k.startswith("partition.")}
        files.append({
            "path": a.get("path"),
            "size": a.get("size_bytes"),
            "partition_values": pv,
            "num_records": a.get("num_records"),
            "stats": {k: to_json_value(v) for k, v in a.items() if k.startswith(("min.", "max.", "null_count."))},
        })
    txn = {}
    txn_exact = {}
    for app_id in args.app_id:
        txn[app_id] = dtable.transaction_version(app_id)
        txn_exact[app_id] = None if txn[app_id] is None else str(txn[app_id])

    out = {
        "version": dtable.version(),
        "protocol": {"min_reader_version": proto.min_reader_version, "min_writer_version": proto.min_writer_version},
        "schema": fields,
        "partition_columns": list(meta.partition_columns),
        "files": files,
        "txn": txn,
        "txn_exact": txn_exact,
        "history_len": len(dtable.history()),
    }
    table = dtable.to_pyarrow_table(columns=args.columns.split(",") if args.columns else None)
    out["num_rows"] = table.num_rows
    if args.rows:
        rows = table.to_pylist()
        if args.columns:
            key = args.columns.split(",")[0]
            rows.sort(key=lambda r: (r.get(key) is None, r.get(key)))
        out["rows"] = [to_json_value(r) for r in rows]
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    code = 0
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any reader failure as JSON for the tests
        json.dump({"error": type(e).__name__, "message": str(e)}, sys.stdout)
        sys.stdout.write("\n")
        code = 1
    # Skip interpreter teardown: native runtime threads occasionally abort the process at exit
    # ("terminate called without an active exception") after the answer was complete.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

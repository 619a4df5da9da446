"""Reads ENPA Avro files with fastavro and prints their records as JSON lines.

Used by tests/cross_impl.rs: every file divvi writes must read back in another Avro
implementation as the same records. Bytes print as hex, UUIDs as strings; an empty file
(an invalid-UUID file with no invalid packets) prints nothing.
"""
import json
import sys
import uuid

import fastavro


def plain(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "timestamp"):
        return int(round(value.timestamp() * 1000))
    return value


for path in sys.argv[1:]:
    with open(path, "rb") as f:
        if not f.read(1):
            continue
        f.seek(0)
        reader = fastavro.reader(f)
        name = reader.writer_schema["name"]
        for record in reader:
            print(json.dumps({"file": path, "schema": name, "record": {k: plain(v) for k, v in record.items()}}))

"""The checked-in JSON schema of a provenance record is the one the model generates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fastjsonschema
import pytest

import scandeck.provenance.record as record_module
from scandeck.provenance.record import (
    Environment,
    ErrorInfo,
    InputRef,
    OutputRef,
    ProvenanceRecord,
    json_schema,
)

SCHEMA_FILE = Path(record_module.__file__).with_name("record.schema.json")
REGENERATE = "python -m scandeck.provenance.record > kernel_ext/scandeck/provenance/record.schema.json"


def checked_in() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


def test_checked_in_schema_matches_the_model():
    generated = json_schema()
    on_disk = checked_in()
    if generated != on_disk:
        changed = sorted(set(generated.get("properties", {})) ^ set(on_disk.get("properties", {})))
        pytest.fail(
            "provenance/record.schema.json is out of date with the ProvenanceRecord model"
            + (f" (top-level fields added or removed: {', '.join(changed)})" if changed else "")
            + f"; regenerate it from the repository root with:\n    {REGENERATE}",
            pytrace=False,
        )


def test_the_module_prints_the_schema_it_is_checked_in_as():
    out = subprocess.run(
        [sys.executable, "-m", "scandeck.provenance.record"], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == checked_in(), f"regenerate with: {REGENERATE}"


@pytest.mark.parametrize("full", [False, True])
def test_records_validate_against_the_checked_in_schema(full):
    validate = fastjsonschema.compile(checked_in())
    env = Environment(python="3.11.7", platform="Linux", packages={"numpy": "2.0"})
    rec = ProvenanceRecord(name="fit", kind="batch", environment=env)
    if full:
        rec = ProvenanceRecord(
            name="fit",
            kind="rerun",
            environment=env,
            tags=["ni"],
            parent="a" * 32,
            parameters={"scan_uid": "u", "n": 3, "xs": [1.5, None]},
            target_scan="u",
            inputs=[InputRef(uid="u", scan_id=3, catalog="local", streams=["primary"], fields=["det"])],
            outputs=[OutputRef(uid="d", catalog="local")],
            status="failed",
            duration=1.5,
            error=ErrorInfo(cell_index=2, cell_source="1/0", ename="ZeroDivisionError", evalue="division"),
        )
    metadata = rec.to_metadata()
    validate(metadata)
    assert ProvenanceRecord.model_validate(metadata) == rec
    with pytest.raises(fastjsonschema.JsonSchemaException):
        validate({**metadata, "unknown": 1})
    with pytest.raises(fastjsonschema.JsonSchemaException):
        validate({**metadata, "kind": "other"})

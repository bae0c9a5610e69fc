"""The provenance record: one model, the source of truth for its JSON schema.

The same fields go into ``nb.metadata.scandeck`` of every executed notebook, beside
papermill's ``nb.metadata.papermill``. Regenerate the schema file after changing
the model: ``python -m scandeck.provenance.record > kernel_ext/scandeck/provenance/record.schema.json``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Version of the record layout; bump it with any change that old readers cannot take.
SCHEMA_VERSION = 1


class InputRef(BaseModel):
    """A run the notebook read: which run, and which of its streams and fields."""

    model_config = ConfigDict(extra="forbid")

    uid: str = Field(description="start document uid of the run")
    scan_id: int | None = Field(default=None, description="scan_id of the run, if it has one")
    catalog: str = Field(default="", description="URI or name of the catalog it was read from")
    streams: list[str] = Field(default_factory=list, description="streams read, e.g. primary")
    fields: list[str] = Field(default_factory=list, description="data keys read")


class OutputRef(BaseModel):
    """A run the notebook wrote (derived data)."""

    model_config = ConfigDict(extra="forbid")

    uid: str = Field(description="start document uid of the derived run")
    catalog: str = Field(default="", description="URI or name of the catalog it was written to")


class Environment(BaseModel):
    """The software and machine a notebook ran on."""

    model_config = ConfigDict(extra="forbid")

    python: str = Field(description="Python version, e.g. 3.11.7")
    implementation: str = Field(default="CPython")
    platform: str = Field(description="platform string, e.g. Linux-6.1-x86_64-with-glibc2.36")
    packages: dict[str, str] = Field(default_factory=dict, description="installed distributions: name -> version")
    kernel_name: str = Field(default="", description="Jupyter kernel name, e.g. python3")
    user: str = Field(default="")
    host: str = Field(default="")
    git_commit: str | None = Field(default=None, description="HEAD of the notebook's git repository")
    git_dirty: bool | None = Field(default=None, description="uncommitted changes in that repository")


class ErrorInfo(BaseModel):
    """Where an execution failed."""

    model_config = ConfigDict(extra="forbid")

    cell_index: int | None = Field(default=None, description="index of the failing cell in the notebook")
    cell_source: str = Field(default="", description="first lines of the failing cell")
    ename: str = Field(default="")
    evalue: str = Field(default="")


class ProvenanceRecord(BaseModel):
    """One execution of a notebook: what it was given, what it read, what it wrote, where."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(default=SCHEMA_VERSION)
    id: str = Field(default_factory=lambda: uuid.uuid4().hex, description="record id")
    name: str = Field(description="a name for people: defaults to the notebook's file stem")
    kind: Literal["interactive", "batch", "rerun"] = Field(description="how it was recorded")
    created: float = Field(default_factory=time.time, description="unix time of recording")
    tags: list[str] = Field(default_factory=list)
    parent: str | None = Field(default=None, description="id of the record this reran")
    notebook_path: str = Field(default="", description="where the notebook was, when recorded")
    notebook_sha256: str = Field(default="", description="content address of the executed notebook")
    parameters: dict[str, Any] = Field(default_factory=dict, description="values of the parameters cell")
    target_scan: str | None = Field(default=None, description="the scan_uid a rerun was pointed at")
    inputs: list[InputRef] = Field(default_factory=list)
    outputs: list[OutputRef] = Field(default_factory=list)
    values: dict[str, Any] = Field(
        default_factory=dict,
        description="values the notebook published with scandeck.glue(name, value): name -> JSON "
        "scalar or list of scalars (a rerun's become columns <name>.<value name> of its target run)",
    )
    environment: Environment
    status: Literal["ok", "failed"] = Field(default="ok")
    error: ErrorInfo | None = Field(default=None)
    duration: float | None = Field(default=None, description="seconds of execution, for batch runs")

    def to_metadata(self) -> dict[str, Any]:
        """The record as it goes into ``nb.metadata.scandeck`` (JSON-safe)."""
        return json.loads(self.model_dump_json())


def json_schema() -> dict[str, Any]:
    """The JSON schema of :class:`ProvenanceRecord`."""
    return ProvenanceRecord.model_json_schema()


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2, sort_keys=True))

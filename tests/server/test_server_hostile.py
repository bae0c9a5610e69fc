"""The server answers hostile input with a 400 that says why, never a 500 (issue 10, section 3).

Queries whose integers SQLite cannot hold or that nest past the parser's limit, JSON
bodies and WebSocket messages nested thousands deep, and runs whose uid is code in
disguise: the panel's code-inserting actions (``GET runs/UID/code``) refuse the uid,
and quote every value they embed.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from event_model import compose_run
from server_support import write_run

import scandeck

PWN = "x{open('PWNED','w').write('1')}"


@pytest.fixture
def writer(paths):
    cat = scandeck.open_catalog()
    w = cat.writer()
    yield w
    w.close()
    cat.close()


def run_with_one_stream(writer, uid: str, stream: str) -> None:
    """A finished run (compose_run) whose one stream is named ``stream``."""
    bundle = compose_run(uid=uid, metadata={"plan_name": "count"})
    writer("start", bundle.start_doc)
    desc = bundle.compose_descriptor(
        name=stream, data_keys={"y": {"dtype": "number", "shape": [], "source": "sim:y"}}
    )
    writer("descriptor", desc.descriptor_doc)
    writer("event", desc.compose_event(data={"y": 1.0}, timestamps={"y": 0.0}))
    writer("stop", bundle.compose_stop())


@pytest.fixture
def no_server_errors(caplog):
    """Fails the test if the server logged an error or a traceback (as a 500 does)."""
    caplog.set_level(logging.ERROR)
    yield
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR or r.exc_info] == []


@pytest.mark.parametrize(
    "q",
    [
        "scan_id > 99999999999999999999999999999",
        "x == " + "9" * 5000,
        "not " * 2400 + "scan_id == 1",
        "(" * 1500 + "scan_id == 1" + ")" * 1500,
    ],
)
async def test_unusable_queries_are_a_400_with_a_message(api, writer, no_server_errors, q):
    write_run(writer, scan_id=1)
    code, body = await api("runs", params={"q": q})
    assert code == 400, body
    assert body["error"] == "QuerySyntaxError"
    assert "out of range" in body["message"] or "levels deep" in body["message"]
    assert isinstance(body["position"], int)


@pytest.mark.parametrize("depth", [40, 100_000])
async def test_a_deeply_nested_json_body_is_a_400(api, no_server_errors, depth):
    body = '{"record": ' + "[" * depth + "]" * depth + ', "scans": ["abc"]}'
    code, answer = await api("reruns", method="POST", body=body)
    assert code == 400, answer
    assert answer["error"] == "BadJSON" and "levels deep" in answer["message"]


async def test_a_deeply_nested_socket_message_is_refused(jp_serverapp, jp_ws_fetch, no_server_errors):
    ws = await jp_ws_fetch("scandeck", "api", "events", params={"catalog": ""})
    try:
        assert json.loads(await asyncio.wait_for(ws.read_message(), 30))["type"] == "hello"
        ws.write_message('{"catalog": ' + "[" * 100_000 + "]" * 100_000 + "}")
        error = json.loads(await asyncio.wait_for(ws.read_message(), 30))
        assert error["type"] == "error" and error["error"] == "BadMessage"
    finally:
        ws.close(1000)


async def test_code_for_a_run_whose_uid_is_code_in_disguise_is_refused(api, writer, no_server_errors):
    write_run(writer, uid=PWN)
    code, detail = await api(f"runs/{PWN}")
    assert code == 200 and detail["run"]["uid"] == PWN  # browsing it is fine
    assert detail["code"] is None
    code, body = await api(f"runs/{PWN}/code")
    assert code == 400, body
    assert body["error"] == "UnsafeValue"
    assert "cannot be put into a code cell" in body["message"] and "cat[-1]" in body["message"]


async def test_code_quotes_a_hostile_stream_name(api, writer, no_server_errors):
    from IPython.core.magic_arguments import parse_argstring

    from scandeck.notebook.magic_args import unquote_arg
    from scandeck.notebook.magics import ScandeckMagics

    uid = "0b7f0e6e-1c1e-4a57-9d0b-hostile-stream"
    run_with_one_stream(writer, uid, f"{PWN} frames")
    code, body = await api(f"runs/{uid[:12]}/code")
    assert code == 200, body
    assert body["run"]["uid"] == uid
    first = body["code"]["bind"].splitlines()[0]
    args = parse_argstring(ScandeckMagics.bind, first[len("%%bind ") :])
    assert (unquote_arg(args.uid), unquote_arg(args.stream)) == (uid, f"{PWN} frames")


async def test_a_stream_name_that_would_break_the_magic_line_is_refused(api, writer, no_server_errors):
    uid = "1c1e0b7f-hostile-newline"
    run_with_one_stream(writer, uid, "a\nimport os")
    code, body = await api(f"runs/{uid}/code")
    assert code == 400 and body["error"] == "UnsafeValue" and "stream name" in body["message"]

"""A Redis bus that needs a password: a missing or wrong one says so, and where it goes.

A real redis-server started with ``--requirepass`` on a free port (tests/redis_server.py),
runs from a real bluesky RunEngine. The password never appears in a message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer

import scandeck
from scandeck.exceptions import AuthenticationFailed, StoreError
from scandeck.queries import Query, parse
from scandeck.sources import open_source

PASSWORD = "s3cret-Pass"
WRONG = "not-the-Pass"

#: What comes before ``@`` in the URI, by case.
BAD = {
    "missing": "",
    "wrong": f":{WRONG}",
    "wrong-for-user": f"alice:{WRONG}",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path_factory.mktemp("redis-auth"), password=PASSWORD).start()
    yield srv
    srv.stop()


def uri(server: RedisServer, userinfo: str, tmp_path: Path) -> str:
    base = server.url_with(userinfo) if userinfo else server.url
    return f"{base}?prefix=auth-{uuid.uuid4().hex[:8]}&archive={tmp_path / 'archive'}"


def check_message(err: BaseException, server: RedisServer) -> None:
    message = str(err)
    assert isinstance(err, StoreError) and isinstance(err, PermissionError)
    assert "\n" not in message
    assert "authentication failed" in message
    assert f"127.0.0.1:{server.port}" in message
    assert "redis://:PASSWORD@" in message and "redis://USER:PASSWORD@" in message
    assert "unreachable" not in message and "redis-server is running" not in message
    assert WRONG not in message and PASSWORD not in message and "alice" not in message


@pytest.mark.parametrize("case", sorted(BAD))
def test_reading_with_a_bad_password_says_authentication_failed(
    server: RedisServer, tmp_path: Path, case: str
) -> None:
    target = uri(server, BAD[case], tmp_path)
    with pytest.raises(AuthenticationFailed) as info:
        len(scandeck.open_catalog(target))  # a Catalog starts its source
    check_message(info.value, server)
    # What is wrong is said too, without the password.
    said = "gives none" if case == "missing" else "not accepted"
    assert said in str(info.value)

    source = open_source(target)  # not started: the first read connects
    try:
        with pytest.raises(AuthenticationFailed) as info:
            source.count(Query.all())
        check_message(info.value, server)
        with pytest.raises(AuthenticationFailed) as info:
            source.search(parse('sample == "Ni"'))
        check_message(info.value, server)
    finally:
        source.close()


@pytest.mark.parametrize("case", sorted(BAD))
def test_writing_with_a_bad_password_says_authentication_failed(
    server: RedisServer, tmp_path: Path, case: str
) -> None:
    source = open_source(uri(server, BAD[case], tmp_path))
    try:
        with pytest.raises(AuthenticationFailed) as info:
            source.writer()
        check_message(info.value, server)
    finally:
        source.close()


@pytest.mark.parametrize("userinfo", [f":{PASSWORD}", f"default:{PASSWORD}"])
def test_the_password_in_the_uri_reads_and_writes(server: RedisServer, tmp_path: Path, userinfo: str) -> None:
    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd.sim import det

    cat = scandeck.open_catalog(uri(server, userinfo, tmp_path))
    try:
        writer = cat.writer()
        RE = RunEngine({}, context_managers=[])  # noqa: N806
        RE.subscribe(writer)
        [uid] = RE(bp.count([det], num=3), sample="Ni")
        writer.close()
        assert [run.uid for run in cat.search('sample == "Ni"')] == [uid]
        assert cat[uid].primary.read()["det"].shape == (3,)
        # Shown and recorded without the password: reprs, and the inputs provenance keeps.
        from scandeck.provenance.context import current

        assert PASSWORD not in repr(cat)
        recorded = [i["catalog"] for i in current().inputs() if i["uid"] == uid]
        assert recorded and all(PASSWORD not in c and "@" not in c for c in recorded)
    finally:
        cat.close()


@pytest.mark.parametrize("case", sorted(BAD))
def test_cli_ls_with_a_bad_password_prints_one_line(server: RedisServer, tmp_path: Path, case: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANDECK_")}
    env["SCANDECK_DATA"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "scandeck.cli", "ls", "--catalog", uri(server, BAD[case], tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("scandeck ls: error: ") and "authentication failed" in lines[0]
    assert "redis://:PASSWORD@" in lines[0]
    assert WRONG not in result.stderr and PASSWORD not in result.stderr

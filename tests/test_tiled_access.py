"""Who sees what in a Tiled catalog: tiled's tag-based access policy, keys, logins, refusals.

One real ``tiled serve config`` deployment for the module (:mod:`tiled_access`): users
alice and bob log in through a password provider and get API keys; a run of alice's
beamtime and one of bob's are written by a real RunEngine through ``TiledWriter``.
Through scandeck each user sees only their own run, and the other's is "not found"
(its metadata never shows), whichever way it is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer
from tiled_access import AccessSetup, start_access_deployment

import scandeck
from scandeck.exceptions import AuthenticationFailed, RunNotFound, StoreError
from scandeck.queries import Key

OTHER = {"alice": "bob", "bob": "alice"}


@pytest.fixture(scope="module")
def access(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[AccessSetup]:
    setup = start_access_deployment(tmp_path_factory.mktemp("tiled-access"), redis_server.url)
    yield setup
    setup.server.stop()


@pytest.fixture
def open_cat(request: pytest.FixtureRequest) -> Callable[[str], scandeck.Catalog]:
    """``open_catalog(uri)``, closed after the test."""

    def open_(uri: str) -> scandeck.Catalog:
        cat = scandeck.open_catalog(uri)
        request.addfinalizer(cat.close)
        return cat

    return open_


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $TILED_API_KEY and an empty token cache of its own: only what a test gives counts."""
    monkeypatch.delenv("TILED_API_KEY", raising=False)
    monkeypatch.setenv("TILED_CACHE_DIR", str(tmp_path / "tiled-cache"))
    return tmp_path / "tiled-cache"


def _sees_only_own_run(access: AccessSetup, cat: scandeck.Catalog, user: str) -> None:
    own, other = access.uids[user], access.uids[OTHER[user]]
    other_sample = access.samples[OTHER[user]]
    assert len(cat) == 1
    assert cat[-1].uid == own
    assert [run.uid for run in cat] == [own]
    assert cat[own].start["sample"] == access.samples[user]
    for key in (other, other[:8]):  # by uid and by prefix: not found, nothing of it shown
        with pytest.raises(RunNotFound) as err:
            cat[key]
        assert other_sample not in str(err.value)
    with pytest.raises(RunNotFound):
        cat[-2]
    assert len(cat.search(Key("sample") == other_sample)) == 0
    assert [r.uid for r in cat.search(Key("sample") == access.samples[user])] == [own]
    assert len(cat.search(f'"{other_sample}"')) == 0  # full text finds nothing of the other's either


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_each_user_sees_only_the_runs_their_key_allows(access, no_credentials, user, open_cat):
    cat = open_cat(access.uri(user))
    _sees_only_own_run(access, cat, user)
    assert access.keys[user] not in repr(cat) and access.keys[user] not in cat.name


def test_the_admin_key_sees_both_runs(access, no_credentials, open_cat):
    # The runs exist: what the users do not see is hidden by the policy, not missing.
    cat = open_cat(access.uri("admin"))
    assert len(cat) == 2
    assert {r.uid for r in cat} == set(access.uids.values())


def test_the_key_from_tiled_api_key_in_the_environment(access, no_credentials, monkeypatch, open_cat):
    monkeypatch.setenv("TILED_API_KEY", access.keys["bob"])
    _sees_only_own_run(access, open_cat(access.uri(None)), "bob")


def test_a_tiled_login_token_cache_is_used_without_a_key(access, no_credentials, open_cat):
    context = access.server.login("alice", remember_me=True)  # what `tiled login` leaves behind
    context.close()
    assert any(no_credentials.rglob("*")), "the login left no cached tokens"
    _sees_only_own_run(access, open_cat(access.uri(None)), "alice")


def _refusal(uri: str) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as err:
        cat = scandeck.open_catalog(uri)
        try:
            len(cat)
        finally:
            cat.close()
    assert isinstance(err.value, StoreError)
    message = str(err.value)
    for way in ("?api_key=", "TILED_API_KEY", "tiled login"):
        assert way in message, f"{way!r} not named in: {message}"
    return err.value


def test_a_wrong_key_is_refused_naming_the_credentials_and_not_the_key(access, no_credentials):
    wrong = "0" * 8 + access.keys["alice"][8:]  # looks like a key; is none
    err = _refusal(access.uri(None) + f"?api_key={wrong}")
    assert wrong not in str(err) and wrong[8:20] not in str(err)
    assert access.server.base in str(err)


def test_a_missing_key_is_refused_naming_the_credentials(access, no_credentials):
    err = _refusal(access.uri(None))
    assert "requires credentials" in str(err)

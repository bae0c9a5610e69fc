"""Who a comment or tag made in the Scans panel is by: the Jupyter user where users have names.

Behind jupyter_server's own identity provider every browser is an anonymous user of one
token, so the author is the server's (``$SCANDECK_AUTHOR``, else its login name); behind
one that names users (JupyterHub's, here a stand-in subclass: no hub runs in tests) it
is the user's name.
"""

from __future__ import annotations

import inspect
from typing import Any

import bluesky.plans as bp
import pytest
from jupyter_server.auth.identity import IdentityProvider, User
from server_support import server_config

import scandeck


class NamedUsers(IdentityProvider):
    """Token-authenticated like the default, but every user is called "ada" (as a hub names them)."""

    async def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        user = super().get_user(handler)
        if inspect.isawaitable(user):
            user = await user
        return None if user is None else User(username="ada", name="Ada Lovelace")


@pytest.fixture(params=["anonymous", "named"])
def jp_server_config(request, paths):
    config = server_config(paths, column_service=False)
    if request.param == "named":
        config["ServerApp"]["identity_provider_class"] = NamedUsers
    return config


async def test_the_author_is_the_named_jupyter_user_else_the_servers(api, jp_server_config, monkeypatch, RE, hw):
    monkeypatch.setenv("SCANDECK_AUTHOR", "beamline account")
    cat = scandeck.open_catalog()
    try:
        RE.subscribe(cat.writer())
        (uid,) = RE(bp.count([hw.det]))
    finally:
        cat.close()
    code, body = await api(f"runs/{uid}/annotations", method="POST", body={"tags": ["Ni"], "comment": "ok"})
    assert code == 200, body
    named = jp_server_config["ServerApp"].get("identity_provider_class") is NamedUsers
    assert body["comments"][0]["author"] == ("ada" if named else "beamline account")
    code, body = await api(f"runs/{uid}/annotations", method="POST", body={"untag": ["Ni"]})
    assert code == 200 and body["tags"] == []
    cat = scandeck.open_catalog()
    try:
        history = cat[uid].annotations
    finally:
        cat.close()
    assert [n.kind for n in history] == ["comment", "tag", "untag"]
    assert {n.author for n in history} == {"ada" if named else "beamline account"}

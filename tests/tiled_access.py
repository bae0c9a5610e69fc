"""A Tiled deployment with logins and tiled's tag-based access policy, and runs only some users see.

:func:`start_access_deployment` starts ``tiled serve config`` with two users (``alice``,
``bob``) and an admin behind a toy password provider (tiled's
``DictionaryAuthenticator``), defines the access tags ``beamtime_a`` (alice may read)
and ``beamtime_b`` (bob may read) with tiled's own tag compiler, gives each user an
API key made through a real login, and writes one run per beamtime with a real
RunEngine and ``TiledWriter`` (its start document's ``tiled_access_tags`` become the
run's access tags). Set-up measured here: ~10 s (server start ~8 s).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiled_server import TiledDeployment

#: The users of the toy provider and their passwords (test data, not secrets).
USERS = {"alice": "alice-pw", "bob": "bob-pw", "admin": "admin-pw"}
PROVIDER = "toy"
READ = ["read:metadata", "read:data"]
#: Tag definitions as tiled's AccessTagsCompiler reads them: who may do what under a tag.
TAGS = {
    "tags": {
        "beamtime_a": {"users": [{"name": "alice", "scopes": READ}]},
        "beamtime_b": {"users": [{"name": "bob", "scopes": READ}]},
    },
    "tag_owners": {"beamtime_a": {"users": [{"name": "admin"}]}, "beamtime_b": {"users": [{"name": "admin"}]}},
}


class AccessDeployment(TiledDeployment):
    """``tiled serve config`` with logins and the tag-based policy; the root is tagged ``public``.

    Without ``top_level_access_tags`` the root node carries no tag, and the policy then
    hides every container from every non-admin user (measured: an empty root listing).
    """

    def __init__(self, directory: Path, redis_url: str) -> None:
        super().__init__(
            directory,
            redis_url,
            extra_config={
                "authentication": {
                    "providers": [
                        {
                            "provider": PROVIDER,
                            "authenticator": "tiled.authenticators:DictionaryAuthenticator",
                            "args": {"users_to_passwords": USERS},
                        }
                    ],
                    "tiled_admins": [{"provider": PROVIDER, "id": "admin"}],
                    "secret_keys": ["scandeck-test-secret"],
                    "allow_anonymous_access": False,
                },
                "database": {"uri": f"sqlite:///{Path(directory) / 'authn.db'}", "init_if_not_exists": True},
                "access_control": {
                    "access_policy": "tiled.access_control.access_policies:TagBasedAccessPolicy",
                    "args": {
                        "provider": PROVIDER,
                        "access_tags_parser": "tiled.access_control.access_tags:AccessTagsParser",
                    },
                },
            },
        )

    def config(self) -> dict[str, Any]:
        config = super().config()
        config["trees"][0]["args"]["top_level_access_tags"] = ["public"]
        return config

    def compile_tags(self) -> None:
        """Write :data:`TAGS` into the catalog database, as a facility's tag sync does."""
        from tiled.access_control.access_tags import AccessTagsCompiler
        from tiled.access_control.scopes import ALL_SCOPES
        from tiled.server.connection_pool import close_database_connection_pool
        from tiled.server.settings import DatabaseSettings

        settings = DatabaseSettings(uri=f"sqlite:///{self.dir / 'catalog.db'}")

        async def compile_and_close() -> None:
            compiler = AccessTagsCompiler(ALL_SCOPES, TAGS, settings, lambda group: [])
            compiler.load_tag_config()
            try:
                await compiler.compile()
            finally:  # the compiler's pooled engine, closed on the loop that opened it
                await close_database_connection_pool(settings)

        asyncio.run(compile_and_close())

    def login(self, user: str, *, remember_me: bool = False) -> Any:
        """A tiled Context logged in as ``user`` with a password grant (closed by the caller)."""
        from tiled.client.context import Context, password_grant

        context, _ = Context.from_any_uri(f"{self.base}/api/v1/", api_key=None)
        provider = context.server_info.authentication.providers[0]
        tokens = password_grant(
            context.http_client, provider.links["auth_endpoint"], provider.provider, user, USERS[user]
        )
        context.configure_auth(tokens, remember_me=remember_me)
        return context

    def make_key(self, user: str) -> str:
        """A new API key of ``user``, made through a real login."""
        context = self.login(user)
        try:
            return str(context.create_api_key(note="scandeck test")["secret"])
        finally:
            context.close()


@dataclass
class AccessSetup:
    """The started deployment, each user's key, the container and the run of each beamtime."""

    server: AccessDeployment
    keys: dict[str, str]
    container: str
    uids: dict[str, str] = field(default_factory=dict)  # user -> uid of the run they may see
    samples: dict[str, str] = field(default_factory=dict)  # user -> sample of that run

    def uri(self, user: str | None) -> str:
        """``tiled+http://.../CONTAINER`` with ``user``'s key (no key for None)."""
        base = f"tiled+{self.server.base}/{self.container}"
        return base if user is None else f"{base}?api_key={self.keys[user]}"


def start_access_deployment(directory: Path, redis_url: str) -> AccessSetup:
    """Start the deployment and write one run for alice's beamtime and one for bob's."""
    import bluesky.plans as bp
    from bluesky import RunEngine
    from bluesky_tiled_plugins import TiledWriter
    from ophyd.sim import det, motor
    from tiled.client import from_uri

    server = AccessDeployment(directory, redis_url).start()
    try:
        server.compile_tags()
        keys = {user: server.make_key(user) for user in USERS}
        server.api_key = keys["admin"]  # new_catalog() and the writer act as the admin
        container = server.new_catalog(access_tags=["public"]).split("?", 1)[0].rsplit("/", 1)[1]
        setup = AccessSetup(server, keys, container)
        client = from_uri(f"{server.base}/api/v1/metadata/{container}", api_key=keys["admin"])
        try:
            RE = RunEngine()  # noqa: N806 - the name every bluesky user knows
            RE.subscribe(TiledWriter(client, batch_size=10))
            for user, tag, sample in (("alice", "beamtime_a", "Ni"), ("bob", "beamtime_b", "Cu")):
                (uid,) = RE(bp.scan([det], motor, -1, 1, 3), tiled_access_tags=[tag], sample=sample)
                setup.uids[user] = uid
                setup.samples[user] = sample
        finally:
            client.context.close()
        return setup
    except BaseException:
        server.stop()
        raise

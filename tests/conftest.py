"""Shared fixtures: a real RunEngine, ophyd.sim devices, every registered source, a real kernel, live plots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer
from source_uris import SOURCES
from tiled_server import TiledDeployment, TiledServer

from scandeck.catalog import Catalog
from scandeck.sources import open_source


@pytest.fixture(params=sorted(SOURCES))
def cat(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    """An empty catalog on each registered source.

    A case marked ``@pytest.mark.not_on("tiled", reason="...")`` is skipped there, with its reason.
    """
    marker = request.node.get_closest_marker("not_on")
    if marker is not None and request.param in marker.args:
        pytest.skip(f"not on {request.param}: {marker.kwargs.get('reason', 'does not apply')}")
    catalog = Catalog(open_source(SOURCES[request.param](request, tmp_path)))
    yield catalog
    catalog.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on a free port for the whole session (tests use their own prefixes)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TiledServer]:
    """A real Tiled server (SimpleTiledServer, in-memory streaming cache) for the session.

    Tests take a fresh container each: ``tiled_server.new_catalog()``.
    """
    # It reads the files detectors write under any test's tmp_path (the session's base temp).
    server = TiledServer(tmp_path_factory.mktemp("tiled"), readable=tmp_path_factory.getbasetemp()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiled_deployment(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[TiledDeployment]:
    """``tiled serve config`` as a facility runs it: Redis streaming cache, the document exporter."""
    server = TiledDeployment(tmp_path_factory.mktemp("tiled-deployment"), redis_server.url).start()
    yield server
    server.stop()


@pytest.fixture
def sqlite_cat(tmp_path: Path) -> Iterator[Catalog]:
    catalog = Catalog(open_source(tmp_path / "store"))
    yield catalog
    catalog.close()


@pytest.fixture
def RE():  # noqa: N802 - the name every bluesky user knows
    from bluesky import RunEngine

    engine = RunEngine({}, context_managers=[])
    yield engine
    if engine.state != "idle":
        engine.halt()


@pytest.fixture
def hw(tmp_path: Path):
    """ophyd.sim's simulated hardware, image detector files under tmp_path."""
    from ophyd.sim import hw as make_hw

    assets = tmp_path / "assets"
    assets.mkdir(exist_ok=True)
    return make_hw(save_path=str(assets))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """An embedded store under tmp_path, created so that it exists before a kernel selects it."""
    import scandeck

    path = tmp_path / "store"
    scandeck.open_catalog(path).close()
    return path


@pytest.fixture
def kernel(tmp_path: Path, store: Path):
    """A real kernel (jupyter_client, as JupyterLab drives it) with scandeck loaded on ``store``."""
    from kernel_harness import KernelSession

    session = KernelSession({"SCANDECK_DATA": str(tmp_path / "data")})
    session.execute(f"%load_ext scandeck\n%catalog {store}")
    yield session
    session.close()


@pytest.fixture
def plots():
    """Keep a ``scandeck.plot`` object: ``plots(obj)`` returns it, and it is stopped after the test."""
    made = []

    def keep(obj):
        made.append(obj)
        return obj

    yield keep
    if made:
        import scandeck.plot

        for obj in made:
            scandeck.plot.stop(obj)

"""Tiled archives of Bluesky runs as a source: ``tiled+http://host:8000/raw``.

A Tiled server (databroker 2) holds runs in the layout bluesky-tiled-plugins'
``TiledWriter`` writes: a container (spec ``CatalogOfBlueskyRuns``) of runs keyed
by uid (spec ``BlueskyRun``), each with ``metadata = {"start", "stop"}`` and one
composite node per stream (its metadata the descriptor; scalars in the table
``internal``, arrays beside it). The modules:

* :mod:`.connect`: the URI, credentials and the mapping of Tiled's errors;
* :mod:`.search`: scandeck queries as Tiled queries (OR and NOT by uid sets);
* :mod:`.documents`: a run's documents rebuilt from what Tiled stores;
* :mod:`.tables`: stream reads by column and slice, without documents;
* :mod:`.live`: following runs through Tiled's subscriptions, or by polling;
* :mod:`.writer`: ``TiledWriter`` behind scandeck's validation;
* :mod:`.source`: the :class:`~scandeck.sources.protocol.Source` over all of it.

Tiled itself is imported only here, lazily: ``pip install 'scandeck[tiled]'``.
"""

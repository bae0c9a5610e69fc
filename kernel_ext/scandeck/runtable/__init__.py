"""The run table: computed columns, comments and tags, and per-key data summaries.

A run's *facts* are what scandeck knows of it besides its documents:

* computed column values (:mod:`.columns` defines them, :mod:`.service` computes
  them in worker processes and stores each as a :class:`~.model.Cell`);
* annotations: comments and tags, with author, host and time, history kept
  (:class:`~.model.Annotation`);
* per-key summaries of the data (min and max) recorded when streams are written.

A source that can store them implements
:class:`~scandeck.sources.protocol.RunFacts`; the query language reaches them under
the names ``columns.<name>``, ``tags``, ``comments`` and ``data.<key>.min|max``
(:func:`.model.facts_document` builds what those names read).
"""

"""Live pipelines: a followed run becomes per-stream tables, then bound code.

``follower`` reads documents in a background thread, ``table`` keeps each
stream's rows, ``loop`` runs callbacks on the kernel's own event loop between
user requests, ``coalesce`` keeps the latest state and drops the rest.
"""

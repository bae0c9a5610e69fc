"""Provenance: what ran on what, recorded so that it can be rerun.

``record`` is the one model of a provenance record (its JSON schema is
generated from it); ``store`` keeps records and their executed notebooks;
``environment`` captures the software a notebook ran with; ``context`` notes the
runs a kernel reads; ``rerun`` runs a recorded notebook again on other scans.
"""

"""Jupyter integration: magics, rich displays, live progress and reactive cells."""

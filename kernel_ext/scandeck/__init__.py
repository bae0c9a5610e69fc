"""scandeck: Bluesky scans in Jupyter."""

__version__ = "0.1.0"

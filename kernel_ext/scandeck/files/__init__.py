"""Instrument files in the catalog: watched directories, readers per format, transfer.

* :mod:`.layout`: how a file sits in a run (one event, one resource, datums);
* :mod:`.cache`: verified local copies of files from other machines, by sha256;
* :mod:`.providers`: open sources that hold files' bytes (the Redis bus, the archive).
"""

"""A fleet of images: scan many at once into an index, then ask it questions.

``sources`` lists what to scan (a registry's catalog, repositories' tags, a file of
references) and shares it between runners (``--shard K/N``); ``scanner`` scans each
image once per manifest digest, reading only the layers the per-layer SBOM cache has not
seen; ``index`` stores what was found (SQLite or PostgreSQL behind one protocol);
``query`` answers ``where``, ``affected`` and ``rematch`` from it without any registry
traffic; ``dbartifact`` moves the vulnerability database through a registry.
"""

# the public modules
__all__ = ["index", "matching", "query", "scanner", "sources"]

"""Base images: which one an image was built on, and which one it should be built on.

``base.detect_base`` finds the base (annotations, labels, SLSA provenance, leading layers) with
the detector in ``giropops.oci.baseimage``, which ``giropops quickview`` uses too;
``recommend.recommend`` compares it with a refreshed tag and with better bases (the other
tags of its repository and the catalog's minimal alternatives, ``catalog.load_catalog``),
each profiled once per digest (``profile.Profiler``); ``render`` lays the result out.
Everything this package needs from ``giropops.sbom``, ``giropops.vuln`` and
``giropops.sign`` goes through ``deps``.
"""

# the public modules
__all__ = ["base", "catalog", "deps", "profile", "reach", "recommend", "render"]

"""Daemonless image builder: Debian and APK packages, accounts, a Python app layer, deterministic layers.

Nothing here runs code inside the image: packages are unpacked without their
maintainer scripts (the distroless / apko way) and Python wheels are resolved
and installed by the builder's own pip into a directory outside the image.
"""

# the public modules (each lists its own names)
__all__ = ["apk", "builder", "cache", "debian", "errors", "layer", "output", "python", "spec"]

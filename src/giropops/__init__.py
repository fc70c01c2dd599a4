"""giropops: minimal, known and trusted container images, without a daemon."""

__version__ = "0.1.0"

__all__ = ["__version__"]

"""The image model: references, manifests, images, and the sources/sinks that move them.

Nothing here imports from the rest of ``giropops`` except ``giropops.errors``.
"""

"""The image model: references, manifests, images, and the sources/sinks that move them.

Nothing here imports from the rest of ``giropops`` except ``giropops.errors``,
``giropops.progress``, ``giropops.tmpfiles`` and ``giropops.cachedir``.

Map (after go-containerregistry's ``pkg/v1``):

- ``model``, ``reference``, ``mediatypes``: value types; ``image``: the read-only
  ``Image`` / ``Layer`` / ``ImageIndex`` protocols; ``blob``: verified streams.
- ``memory``: ``StaticImage`` / ``StaticIndex`` / ``BlobLayer`` that every source
  builds, plus ``build_image`` / ``build_index``; ``empty``: ``EMPTY_IMAGE`` (scratch).
- ``mutate``: new images from old ones (``layer_from_tar``, ``append_layers``,
  ``with_config``, ``with_annotations``, ``canonicalize``...).
- Sources and sinks: ``layout`` (OCI layout dirs), ``archive`` (docker/OCI
  tarballs), ``registry`` (distribution API), ``fs`` (a directory as an image,
  read-only), ``daemon`` (a Docker/Podman engine, read-only).
- ``baseimage``: which image an image was built on (annotations, labels, provenance,
  leading layers), decided from facts the caller reads.
- ``transport``: ``parse_spec`` for ``registry://``, ``archive://``, ``oci-dir://``,
  ``fs://``, ``local://`` and ``open_image`` / ``open_any`` / ``write_image``.
"""

# the public modules (each lists its own names); registry is a package
__all__ = [
    "archive",
    "baseimage",
    "blob",
    "daemon",
    "empty",
    "fs",
    "image",
    "layout",
    "limits",
    "mediatypes",
    "memory",
    "model",
    "mutate",
    "reference",
    "registry",
    "transport",
]

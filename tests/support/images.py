"""Tiny in-memory images for tests, built with hashlib/tarfile/gzip only.

They implement the ``giropops.oci.image`` protocols independently of any code under
test, so digests and sizes the tests expect come from here, not from the library.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from giropops.oci import mediatypes as mt
from giropops.oci.image import Image
from giropops.oci.model import Digest, ImageConfig, Index, Manifest, Platform

AMD64 = Platform("linux", "amd64")


def sha256(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


def tar_of(files: Mapping[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class MemLayer:
    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.tar = tar_of(files)
        self.blob = gzip.compress(self.tar, mtime=0)

    @classmethod
    def random(cls, size: int, name: str = "random.bin") -> MemLayer:
        """A layer whose blob is about ``size`` bytes (random data does not compress)."""
        return cls({name: os.urandom(size)})

    @property
    def digest(self) -> Digest:
        return sha256(self.blob)

    @property
    def diff_id(self) -> Digest:
        return sha256(self.tar)

    @property
    def size(self) -> int:
        return len(self.blob)

    @property
    def media_type(self) -> str:
        return mt.OCI_LAYER_GZIP

    def open_compressed(self) -> BinaryIO:
        return io.BytesIO(self.blob)

    def open_uncompressed(self) -> BinaryIO:
        return io.BytesIO(self.tar)


class MemImage:
    def __init__(
        self,
        layers: Sequence[MemLayer],
        platform: Platform = AMD64,
        labels: Mapping[str, str] | None = None,
        subject: Mapping[str, object] | None = None,
        artifact_type: str | None = None,
    ) -> None:
        self._layers = list(layers)
        cfg: dict[str, object] = {
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {"Labels": dict(labels or {})},
            "rootfs": {"type": "layers", "diff_ids": [str(x.diff_id) for x in self._layers]},
        }
        if platform.variant:
            cfg["variant"] = platform.variant
        self.platform = platform
        self._raw_config = json.dumps(cfg, separators=(",", ":")).encode()
        man: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": str(sha256(self._raw_config)),
                       "size": len(self._raw_config)},
            "layers": [
                {"mediaType": x.media_type, "digest": str(x.digest), "size": x.size} for x in self._layers
            ],
        }
        if artifact_type:
            man["artifactType"] = artifact_type
        if subject is not None:
            man["subject"] = dict(subject)
        self._raw = json.dumps(man, separators=(",", ":")).encode()

    @property
    def digest(self) -> Digest:
        return sha256(self._raw)

    @property
    def raw_manifest(self) -> bytes:
        return self._raw

    @property
    def manifest(self) -> Manifest:
        return Manifest.from_bytes(self._raw)

    @property
    def media_type(self) -> str:
        return mt.OCI_MANIFEST

    @property
    def raw_config(self) -> bytes:
        return self._raw_config

    @property
    def config(self) -> ImageConfig:
        return ImageConfig.from_bytes(self._raw_config)

    def layers(self) -> Sequence[MemLayer]:
        return list(self._layers)

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": mt.OCI_MANIFEST, "digest": str(self.digest), "size": len(self._raw)}


class MemIndex:
    def __init__(self, images: Sequence[MemImage]) -> None:
        self._images = {img.digest: img for img in images}
        doc = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [
                {**img.descriptor(), "platform": img.platform.to_json()} for img in images
            ],
        }
        self._raw = json.dumps(doc, separators=(",", ":")).encode()

    @property
    def digest(self) -> Digest:
        return sha256(self._raw)

    @property
    def raw_manifest(self) -> bytes:
        return self._raw

    @property
    def index(self) -> Index:
        return Index.from_bytes(self._raw)

    def image(self, digest: Digest) -> Image:
        return self._images[digest]

    def image_for(self, platform: Platform) -> Image:
        for img in self._images.values():
            if img.platform == platform:
                return img
        raise KeyError(str(platform))

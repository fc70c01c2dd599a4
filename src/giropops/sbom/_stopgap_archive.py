"""A minimal read-only docker-archive ``Image``, until ``giropops.oci.transport`` lands on main.

Only what ``giropops sbom archive://FILE.tar`` needs: ``manifest.json`` with one
image, its config and layers read in place (no extraction), every layer stream
verified against its digest and diff_id.  ``source.py`` prefers the OCI
transport whenever it is importable; delete this module when it is.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, cast

from giropops.errors import ArchiveError, BlobError
from giropops.oci import mediatypes as mt
from giropops.oci.blob import GZIP_MAGIC, ZSTD_MAGIC, decompressed, verified
from giropops.oci.model import Descriptor, Digest, ImageConfig, Manifest

_MAX_MEMBERS = 100_000


class _Window(io.RawIOBase):
    """``size`` bytes of a file from ``offset``, opened on demand."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        super().__init__()
        self._f = open(path, "rb")
        self._f.seek(offset)
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(b)
        n = self._f.readinto(view[: min(len(view), self._left)])
        self._left -= n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


class _Layer:
    def __init__(self, path: Path, member: tarfile.TarInfo, digest: Digest, diff_id: Digest, media_type: str) -> None:
        self._path = path
        self._member = member
        self._digest = digest
        self._diff_id = diff_id
        self._media_type = media_type

    @property
    def digest(self) -> Digest:
        return self._digest

    @property
    def diff_id(self) -> Digest:
        return self._diff_id

    @property
    def size(self) -> int:
        return self._member.size

    @property
    def media_type(self) -> str:
        return self._media_type

    def _raw(self) -> BinaryIO:
        return cast(BinaryIO, io.BufferedReader(_Window(self._path, self._member.offset_data, self._member.size)))

    def open_compressed(self) -> BinaryIO:
        return verified(self._raw(), self._digest, self._member.size, f"layer {self._digest}")

    def open_uncompressed(self) -> BinaryIO:
        if self._digest == self._diff_id:
            return self.open_compressed()
        return verified(
            decompressed(self.open_compressed(), f"layer {self._digest}"), self._diff_id, None, f"layer {self._diff_id}"
        )


class DockerArchiveImage:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with tarfile.open(path, "r:") as tf:
                members: dict[str, tarfile.TarInfo] = {}
                for i, m in enumerate(tf):
                    if i >= _MAX_MEMBERS:
                        raise ArchiveError(f"{path}: more than {_MAX_MEMBERS} entries")
                    members[m.name.lstrip("./")] = m
                manifest_member = members.get("manifest.json")
                if manifest_member is None or not manifest_member.isfile():
                    raise ArchiveError(f"{path}: not a docker-archive (no manifest.json)")
                entries = json.loads(self._read(tf, manifest_member, mt.MAX_MANIFEST_BYTES))
                if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
                    raise ArchiveError(f"{path}: manifest.json must describe exactly one image")
                entry = entries[0]
                config_name, layer_names = entry.get("Config"), entry.get("Layers")
                if not isinstance(config_name, str) or not isinstance(layer_names, list):
                    raise ArchiveError(f"{path}: manifest.json needs 'Config' and 'Layers'")
                cfg_member = members.get(config_name.lstrip("./"))
                if cfg_member is None or not cfg_member.isfile():
                    raise ArchiveError(f"{path}: config {config_name!r} missing")
                self._raw_config = self._read(tf, cfg_member, mt.MAX_CONFIG_BYTES)
                self._config = ImageConfig.from_bytes(self._raw_config)
                diff_ids = self._config.diff_ids
                if len(diff_ids) != len(layer_names):
                    raise ArchiveError(f"{path}: {len(layer_names)} layers but {len(diff_ids)} diff_ids")
                self._layers: list[_Layer] = []
                for name, diff_id in zip(layer_names, diff_ids, strict=True):
                    lm = members.get(name.lstrip("./")) if isinstance(name, str) else None
                    if lm is None or not lm.isfile():
                        raise ArchiveError(f"{path}: layer {name!r} missing")
                    m = lm
                    fobj = tf.extractfile(m)
                    assert fobj is not None
                    head = fobj.read(4)
                    if head.startswith(GZIP_MAGIC) or head.startswith(ZSTD_MAGIC):
                        fobj.seek(0)
                        h = diff_id.hasher()
                        while chunk := fobj.read(1 << 20):
                            h.update(chunk)
                        digest = Digest(diff_id.algorithm, h.hexdigest())
                        media = mt.DOCKER_LAYER_GZIP if head.startswith(GZIP_MAGIC) else mt.OCI_LAYER_ZSTD
                    else:
                        digest, media = diff_id, mt.OCI_LAYER
                    self._layers.append(_Layer(path, m, digest, diff_id, media))
        except (OSError, tarfile.TarError, ValueError) as exc:
            raise ArchiveError(f"{path}: cannot read docker-archive: {exc}") from exc
        self._manifest = Manifest(
            media_type=mt.DOCKER_MANIFEST,
            config=Descriptor(mt.DOCKER_CONFIG, Digest.of(self._raw_config), len(self._raw_config)),
            layers=tuple(Descriptor(layer.media_type, layer.digest, layer.size) for layer in self._layers),
        )
        self._raw_manifest = self._manifest.to_bytes()

    @staticmethod
    def _read(tf: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
        if member.size > limit:
            raise BlobError(f"{member.name} is more than {limit} bytes")
        f = tf.extractfile(member)
        if f is None:
            raise ArchiveError(f"{member.name} is not a file")
        return f.read()

    @property
    def digest(self) -> Digest:
        return Digest.of(self._raw_manifest)

    @property
    def raw_manifest(self) -> bytes:
        return self._raw_manifest

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def media_type(self) -> str:
        return mt.DOCKER_MANIFEST

    @property
    def raw_config(self) -> bytes:
        return self._raw_config

    @property
    def config(self) -> ImageConfig:
        return self._config

    def layers(self) -> Sequence[_Layer]:
        return list(self._layers)

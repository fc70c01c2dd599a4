"""Change images by building new ones: append layers, edit the config, annotate, fix timestamps.

Every function returns a new ``Image`` and leaves its argument untouched; layers
of the base are reused, not copied.  Compression is deterministic (gzip with
mtime 0 and no file name), so the same tar always gives the same digest.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import io
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import zstandard

from giropops import epoch
from giropops.errors import ImageError, quote_for_error
from giropops.oci import mediatypes as mt
from giropops.oci.blob import gzip_bytes
from giropops.oci.image import Image, Layer
from giropops.oci.memory import BlobLayer, FileSlice, build_image, descriptor_of_layer
from giropops.oci.model import Descriptor, Digest, Platform, canonical_json

_CHUNK = 1 << 20
GZIP_LEVEL = 6


# The OS byte Python's gzip.compress writes (it changed between versions); matching it keeps
# streamed layers byte-identical to ``blob.gzip_bytes`` on the running interpreter.
_GZIP_OS = gzip_bytes(b"")[9:10]


class _GzipWriter:
    """Streaming gzip identical to ``blob.gzip_bytes`` (``gzip.compress(level=6, mtime=0)``)."""

    def __init__(self, out: IO[bytes], level: int = GZIP_LEVEL) -> None:
        self._out = out
        self._z = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, zlib.DEF_MEM_LEVEL, 0)
        self._crc = 0
        self._size = 0
        xfl = b"\x02" if level == 9 else b"\x04" if level == 1 else b"\x00"
        out.write(b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + xfl + _GZIP_OS)

    def write(self, data: bytes) -> None:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._out.write(self._z.compress(data))

    def close(self) -> None:
        self._out.write(self._z.flush())
        self._out.write(self._crc.to_bytes(4, "little") + (self._size & 0xFFFFFFFF).to_bytes(4, "little"))


class _SpooledBlob:
    """A temporary file that lives as long as the layers referring to it."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()

    def opener(self, size: int) -> BinaryIO:
        return cast(BinaryIO, io.BufferedReader(FileSlice(self.file.fileno(), 0, size, owner=self), _CHUNK))


def layer_from_tar(source: bytes | Path | BinaryIO, compression: str = "gzip") -> BlobLayer:
    """A layer from an uncompressed tar (bytes, a file path, or a readable stream).

    ``compression`` is ``gzip`` (default), ``zstd`` or ``none``.  The diff_id is
    the digest of the tar as given; the digest that of the compressed blob.
    Large inputs are compressed into an anonymous temporary file, never memory.
    """
    if compression not in ("gzip", "zstd", "none"):
        raise ImageError(f"unknown layer compression {quote_for_error(compression)} (gzip, zstd, none)")
    media = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "none": mt.OCI_LAYER}[compression]
    if isinstance(source, bytes):
        stream: BinaryIO = cast(BinaryIO, io.BytesIO(source))
        return _layer_from_stream(stream, compression, media)
    if isinstance(source, Path):
        with open(source, "rb") as f:
            return _layer_from_stream(cast(BinaryIO, f), compression, media)
    return _layer_from_stream(source, compression, media)


class _HashingWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.size += len(data)
        self.out.write(data)
        return len(data)

    def flush(self) -> None:
        self.out.flush()


def _layer_from_stream(src: BinaryIO, compression: str, media: str) -> BlobLayer:
    spool = _SpooledBlob()
    out = _HashingWriter(spool.file)
    diff = hashlib.sha256()
    if compression == "gzip":
        gz = _GzipWriter(cast(IO[bytes], out))
        while chunk := src.read(_CHUNK):
            diff.update(chunk)
            gz.write(chunk)
        gz.close()
    elif compression == "zstd":
        cctx = zstandard.ZstdCompressor(level=3, write_checksum=True)
        with cctx.stream_writer(cast(IO[bytes], out), closefd=False) as zw:
            while chunk := src.read(_CHUNK):
                diff.update(chunk)
                zw.write(chunk)
    else:
        while chunk := src.read(_CHUNK):
            diff.update(chunk)
            out.write(chunk)
    spool.file.flush()
    digest = Digest("sha256", out.hasher.hexdigest())
    size = out.size
    return BlobLayer(Descriptor(media, digest, size), Digest("sha256", diff.hexdigest()), lambda: spool.opener(size))


# --- config edits -------------------------------------------------------------------------------


def _config_dict(image: Image) -> dict[str, Any]:
    return copy.deepcopy(dict(image.config.raw))


def _rebuild(
    image: Image,
    config: Mapping[str, Any] | None = None,
    layers: Sequence[Layer] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Image:
    m = image.manifest
    raw_config = canonical_json(dict(config)) if config is not None else image.raw_config
    return build_image(
        raw_config,
        list(layers) if layers is not None else list(image.layers()),
        media_type=m.media_type,
        config_media_type=m.config.media_type,
        annotations=m.annotations if annotations is None else annotations,
        subject=m.subject,
        artifact_type=m.artifact_type,
    )


def _to_docker(layer: Layer) -> Layer:
    """Docker schema 2 manifests cannot name OCI layer types; the bytes are the same."""
    desc = descriptor_of_layer(layer)
    docker = {mt.OCI_LAYER_GZIP: mt.DOCKER_LAYER_GZIP, mt.OCI_LAYER: "application/vnd.docker.image.rootfs.diff.tar"}
    if desc.media_type not in docker:
        if desc.media_type == mt.OCI_LAYER_ZSTD:
            raise ImageError("a Docker schema 2 manifest cannot hold a zstd layer; convert the image to OCI first")
        return layer
    new = Descriptor(docker[desc.media_type], desc.digest, desc.size, desc.annotations)
    if isinstance(layer, BlobLayer):
        return layer.with_descriptor(new)
    return BlobLayer(new, layer.diff_id, layer.open_compressed)


def append_layers(image: Image, layers: Sequence[Layer], created_by: str | None = None) -> Image:
    """``image`` with ``layers`` on top; diff_ids and history follow."""
    config = _config_dict(image)
    rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    if not isinstance(rootfs, dict):
        raise ImageError("image config: rootfs is not an object")
    rootfs.setdefault("type", "layers")
    diff_ids = list(rootfs.get("diff_ids") or [])
    diff_ids += [str(layer.diff_id) for layer in layers]
    rootfs["diff_ids"] = diff_ids
    history = config.get("history")
    if history is not None or not image.layers():
        entries = list(history or [])
        for _ in layers:
            entry: dict[str, Any] = {"created_by": created_by or "giropops: append layer"}
            if "created" in config:
                entry = {"created": config["created"], **entry}
            entries.append(entry)
        config["history"] = entries
    new_layers = list(layers)
    if image.media_type == mt.DOCKER_MANIFEST:
        new_layers = [_to_docker(layer) for layer in new_layers]
    return _rebuild(image, config, [*image.layers(), *new_layers])


def with_config(
    image: Image,
    *,
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = None,
    env: Sequence[str] | None = None,
    user: str | None = None,
    working_dir: str | None = None,
    exposed_ports: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    stop_signal: str | None = None,
    platform: Platform | None = None,
) -> Image:
    """Replace config fields; ``None`` leaves a field alone, an empty value clears it.

    ``exposed_ports`` are ``"8080/tcp"`` (a bare number means tcp); ``env`` is the
    whole ``KEY=VALUE`` list (see ``with_env`` to set a few variables).
    """
    config = _config_dict(image)
    cc = config.get("config")
    c: dict[str, Any] = dict(cc) if isinstance(cc, Mapping) else {}

    def put(key: str, value: Any) -> None:
        if value:
            c[key] = value
        else:
            c.pop(key, None)

    if entrypoint is not None:
        put("Entrypoint", list(entrypoint))
    if cmd is not None:
        put("Cmd", list(cmd))
    if env is not None:
        for item in env:
            if "=" not in item or item.startswith("="):
                raise ImageError(f"environment entry {quote_for_error(item)} is not KEY=VALUE")
        put("Env", list(env))
    if user is not None:
        put("User", user)
    if working_dir is not None:
        put("WorkingDir", working_dir)
    if exposed_ports is not None:
        ports: dict[str, dict[str, Any]] = {}
        for p in exposed_ports:
            num, _, proto = p.partition("/")
            proto = proto or "tcp"
            if not num.isdigit() or not 0 < int(num) < 65536 or proto not in ("tcp", "udp", "sctp"):
                raise ImageError(f"invalid port {quote_for_error(p)} (expected PORT[/tcp|udp|sctp])")
            ports[f"{int(num)}/{proto}"] = {}
        put("ExposedPorts", ports)
    if labels is not None:
        put("Labels", dict(labels))
    if stop_signal is not None:
        put("StopSignal", stop_signal)
    config["config"] = c
    if platform is not None:
        config["os"] = platform.os
        config["architecture"] = platform.architecture
        if platform.variant:
            config["variant"] = platform.variant
        else:
            config.pop("variant", None)
    return _rebuild(image, config)


def with_env(image: Image, variables: Mapping[str, str]) -> Image:
    """Set (or override) environment variables, keeping the others in order."""
    env = list(image.config.env)
    for key, value in variables.items():
        if not key or "=" in key:
            raise ImageError(f"invalid environment variable name {quote_for_error(key)}")
        entry = f"{key}={value}"
        for i, item in enumerate(env):
            if item.split("=", 1)[0] == key:
                env[i] = entry
                break
        else:
            env.append(entry)
    return with_config(image, env=env)


def with_labels(image: Image, labels: Mapping[str, str]) -> Image:
    """Add or override labels, keeping the existing ones."""
    return with_config(image, labels={**image.config.labels, **labels})


def with_annotations(image: Image, annotations: Mapping[str, str], replace: bool = False) -> Image:
    """Manifest annotations: merged with the existing ones unless ``replace``."""
    merged = dict(annotations) if replace else {**image.manifest.annotations, **annotations}
    return _rebuild(image, annotations=merged)


def source_date_epoch(environ: Mapping[str, str] | None = None) -> int:
    """``SOURCE_DATE_EPOCH`` (``giropops.epoch``) or 0."""
    return epoch.source_date_epoch(environ) or 0


def rfc3339(epoch: int) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonicalize(image: Image, epoch: int | None = None) -> Image:
    """Set the config's ``created`` and every history entry's to ``epoch``.

    ``epoch`` defaults to ``SOURCE_DATE_EPOCH`` or 0, so two builds of the same
    content give the same digest.
    """
    when = rfc3339(source_date_epoch() if epoch is None else epoch)
    config = _config_dict(image)
    config["created"] = when
    history = config.get("history")
    if isinstance(history, list):
        config["history"] = [{**h, "created": when} if isinstance(h, dict) else h for h in history]
    return _rebuild(image, config)


def to_oci(image: Image) -> Image:
    """The same content under OCI media types (config and layers keep their bytes)."""
    if image.media_type == mt.OCI_MANIFEST:
        return image
    table = {
        mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar": mt.OCI_LAYER,
        mt.DOCKER_LAYER_FOREIGN_GZIP: mt.OCI_LAYER_ND_GZIP,
    }
    layers: list[Layer] = []
    for layer in image.layers():
        d = descriptor_of_layer(layer)
        nd = Descriptor(table.get(d.media_type, d.media_type), d.digest, d.size, d.annotations, urls=d.urls)
        layers.append(layer.with_descriptor(nd) if isinstance(layer, BlobLayer)
                      else BlobLayer(nd, layer.diff_id, layer.open_compressed))
    cfg_type = image.manifest.config.media_type
    if cfg_type == mt.DOCKER_CONFIG:
        cfg_type = mt.OCI_CONFIG
    return build_image(
        image.raw_config, layers, media_type=mt.OCI_MANIFEST, config_media_type=cfg_type,
        annotations=image.manifest.annotations, subject=image.manifest.subject,
    )

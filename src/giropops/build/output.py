"""Write a built image: the single place that turns layers + config into files.

``archive://FILE`` is a tarball that is both a docker-archive (``manifest.json``,
what ``docker load``/``podman load``/Trivy read) and an OCI image layout
(``oci-layout``, ``index.json``, ``blobs/``), sharing the same blobs, as
``docker save`` writes since Docker 25.  ``oci-dir://DIR`` is an OCI layout
directory.  Everything is written to a temporary name and renamed, so a failed
build leaves no partial output.  When the OCI package grows a writer for these
transports this module is the one to switch over.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from giropops.build.errors import BuildError
from giropops.build.layer import LayerBlob
from giropops.oci import mediatypes as mt
from giropops.oci.model import Descriptor, Digest, Manifest, canonical_json


@dataclass(frozen=True)
class BuiltImage:
    layers: tuple[LayerBlob, ...]
    config: bytes
    manifest: bytes

    @property
    def digest(self) -> str:
        return str(Digest.of(self.manifest))

    @property
    def config_digest(self) -> str:
        return str(Digest.of(self.config))

    @property
    def compressed_size(self) -> int:
        return len(self.config) + sum(layer.size for layer in self.layers)


def assemble(layers: tuple[LayerBlob, ...], config: dict[str, object], annotations: dict[str, str]) -> BuiltImage:
    raw_config = canonical_json(config)
    manifest = Manifest(
        media_type=mt.OCI_MANIFEST,
        config=Descriptor(mt.OCI_CONFIG, Digest.of(raw_config), len(raw_config)),
        layers=tuple(Descriptor(mt.OCI_LAYER_GZIP, Digest.parse(layer.digest), layer.size) for layer in layers),
        annotations=dict(sorted(annotations.items())),
    )
    return BuiltImage(layers, raw_config, manifest.to_bytes())


def _blob_name(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


def _files(image: BuiltImage, tags: list[str]) -> list[tuple[str, bytes]]:
    files: dict[str, bytes] = {}
    for layer in image.layers:
        files[_blob_name(layer.digest)] = layer.data
    files[_blob_name(image.config_digest)] = image.config
    files[_blob_name(image.digest)] = image.manifest
    desc: dict[str, object] = {"mediaType": mt.OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest)}
    manifests = []
    for tag in tags or [""]:
        d = dict(desc)
        if tag:
            d["annotations"] = {"io.containerd.image.name": tag, "org.opencontainers.image.ref.name": tag}
        manifests.append(d)
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}
    files["index.json"] = canonical_json(index)
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    docker = [{
        "Config": _blob_name(image.config_digest),
        "RepoTags": tags,
        "Layers": [_blob_name(layer.digest) for layer in image.layers],
    }]
    files["manifest.json"] = json.dumps(docker, separators=(",", ":")).encode()
    return sorted(files.items())


def write_archive(image: BuiltImage, path: Path, tags: list[str]) -> None:
    path = path.resolve()
    if path.is_dir():
        raise BuildError(f"archive://{path}: is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w:", format=tarfile.PAX_FORMAT) as tf:
            dirs_done: set[str] = set()
            for name, data in _files(image, tags):
                parts = name.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    d = "/".join(parts[:i])
                    if d not in dirs_done:
                        dirs_done.add(d)
                        ti = tarfile.TarInfo(d)
                        ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
                        tf.addfile(ti)
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
                tf.addfile(ti, io.BytesIO(data))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_layout(image: BuiltImage, path: Path, tags: list[str]) -> None:
    path = path.resolve()
    if path.exists() and not path.is_dir():
        raise BuildError(f"oci-dir://{path}: exists and is not a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        for name, data in _files(image, tags):
            if name == "manifest.json":
                continue
            out = tmp / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_output(image: BuiltImage, output: str, tags: list[str]) -> str:
    """Write to ``archive://FILE`` or ``oci-dir://DIR``; returns a description of what was written."""
    scheme, sep, rest = output.partition("://")
    if not sep or not rest:
        raise BuildError(f"--output must be archive://FILE or oci-dir://DIR, got {output!r}")
    if scheme in ("archive", "docker-archive"):
        write_archive(image, Path(rest), tags)
    elif scheme in ("oci-dir", "oci"):
        write_layout(image, Path(rest), tags)
    else:
        raise BuildError(f"--output: unsupported scheme {scheme!r} (archive://FILE or oci-dir://DIR)")
    return f"{scheme}://{rest}"

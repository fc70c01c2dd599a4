"""The vulnerability database as an OCI artifact: ``db push REF`` and ``db update --from REF``.

A fleet then downloads advisories from the outside once and hands the result to every runner
through its own registry.  The artifact is an OCI 1.1 image manifest with
``artifactType`` ``application/vnd.giropops.vulndb.v1+sqlite``, the empty config, and one
layer: the SQLite file itself (same media type).  Its annotations say when the database was
built, from which sources, its schema and how many advisories it holds.  ``db push --key``
signs the manifest digest the way ``giropops sign`` (cosign) does.

Pulling trusts nothing it has not checked: with ``--key`` the cosign signature over the
manifest digest is verified first; the manifest is checked against the digest the registry
announces (or the one asked for); the layer is verified against its digest as it streams into
a temporary file beside the database; the file must open as a giropops database of our
schema and pass SQLite's ``quick_check``; only then is it renamed over the old database, under
the database's lock (``store.lock``), so readers see the old file or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from giropops import jsonio
from giropops.errors import GiropopsError, ManifestError, VulnError, quote_for_error
from giropops.oci import mediatypes as mt
from giropops.oci.model import Digest
from giropops.oci.reference import Reference
from giropops.oci.registry.client import RegistryClient, RegistryOptions
from giropops.vuln.db import store
from giropops.vuln.db.update import MAX_DOWNLOAD_BYTES

if TYPE_CHECKING:
    from giropops.sign.attached import Trust
    from giropops.sign.keys import SigningKey

VULNDB_MEDIA_TYPE = "application/vnd.giropops.vulndb.v1+sqlite"
ANNOTATION_BUILT = "dev.giropops.vulndb.built"
ANNOTATION_SOURCES = "dev.giropops.vulndb.sources"
ANNOTATION_SCHEMA = "dev.giropops.vulndb.schema"
ANNOTATION_ADVISORIES = "dev.giropops.vulndb.advisories"
CREATED = "org.opencontainers.image.created"
TITLE = "org.opencontainers.image.title"
EMPTY_CONFIG = b"{}"
MAX_SOURCES = 64
CHUNK = 1 << 20


class ArtifactError(VulnError):
    """A database artifact that is not what it must be (wrong type, bad digest, not a database)."""


@dataclass(frozen=True)
class PushResult:
    reference: str
    digest: Digest
    size: int
    annotations: Mapping[str, str]
    signed: bool


@dataclass(frozen=True)
class PullResult:
    reference: str
    digest: Digest
    size: int
    built: str | None
    advisories: int
    verified_signature: bool


def _sources(db: store.VulnDB) -> str:
    """Where the records came from, as the importer tagged them (``feed:Debian``, ``file:NAME``)."""
    listed = sorted(str(r[0]) for r in db.conn.execute("SELECT DISTINCT source FROM advisory"))
    more = f",+{len(listed) - MAX_SOURCES} more" if len(listed) > MAX_SOURCES else ""
    return ",".join(listed[:MAX_SOURCES]) + more


def _digest_of(f: BinaryIO) -> tuple[Digest, int]:
    h = hashlib.sha256()
    size = 0
    while chunk := f.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    return Digest("sha256", h.hexdigest()), size


class _Rewinding:
    """Openers of one already-open file: each upload attempt reads it from the start.

    The database is read through this one descriptor from hashing to upload, so a
    concurrent ``db update`` renaming a new file into place cannot change what is sent.
    """

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def __call__(self) -> BinaryIO:
        dup = os.dup(self._f.fileno())
        os.lseek(dup, 0, os.SEEK_SET)
        return os.fdopen(dup, "rb")


def push(db_path: Path, ref: Reference, options: RegistryOptions = RegistryOptions(),
         sign_with: SigningKey | None = None) -> PushResult:
    """Publish the database at ``db_path`` to ``ref``; sign the manifest digest when a key is given."""
    with open_database_file(db_path) as f:
        with store.VulnDB(db_path) as db:
            st = db.status()
            sources = _sources(db)
        digest, size = _digest_of(f)
        built = st.built_at or store.now_utc()
        annotations = {
            CREATED: built, ANNOTATION_BUILT: built, ANNOTATION_SOURCES: sources,
            ANNOTATION_SCHEMA: st.schema_version, ANNOTATION_ADVISORIES: str(st.advisories),
        }
        config_digest = Digest("sha256", hashlib.sha256(EMPTY_CONFIG).hexdigest())
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": VULNDB_MEDIA_TYPE,
            "config": {"mediaType": mt.OCI_EMPTY, "digest": str(config_digest), "size": len(EMPTY_CONFIG),
                       "data": "e30="},
            "layers": [{"mediaType": VULNDB_MEDIA_TYPE, "digest": str(digest), "size": size,
                        "annotations": {TITLE: db_path.name}}],
            "annotations": annotations,
        }
        raw = _compact(manifest)
        client = RegistryClient(ref.registry_host, options)
        with client:
            client.push_blob(ref.path, config_digest, len(EMPTY_CONFIG), lambda: _bytes_io(EMPTY_CONFIG))
            client.push_blob(ref.path, digest, size, _Rewinding(f))
            pushed = client.put_manifest(ref.path, ref.tag or str(Digest("sha256", hashlib.sha256(raw).hexdigest())),
                                         raw, mt.OCI_MANIFEST)
            signed = False
            if sign_with is not None:
                from giropops.sign.image import sign_image
                from giropops.sign.storage import RegistryStore

                store_ = RegistryStore(client, ref.with_digest(pushed))
                sign_image(store_, sign_with, None, store_.subject())
                signed = True
    return PushResult(str(ref), pushed, size, annotations, signed)


def _compact(obj: object) -> bytes:
    import json

    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


def _bytes_io(data: bytes) -> BinaryIO:
    import io

    return io.BytesIO(data)


def open_database_file(path: Path) -> BinaryIO:
    if not path.is_file():
        raise VulnError(f"no vulnerability database at {path}: run 'giropops db update' or 'giropops db import'")
    try:
        return open(path, "rb")
    except OSError as exc:
        raise VulnError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _layer_of(raw: bytes, where: str) -> tuple[Digest, int, dict[str, str]]:
    doc = jsonio.loads(raw, f"{where}: manifest", error=ManifestError)
    if not isinstance(doc, dict):
        raise ArtifactError(f"{where}: the manifest is not a JSON object")
    art = doc.get("artifactType")
    cfg = doc.get("config")
    cfg_type = cfg.get("mediaType") if isinstance(cfg, dict) else None
    if VULNDB_MEDIA_TYPE not in (art, cfg_type):
        raise ArtifactError(f"{where}: not a giropops vulnerability database (artifact type "
                            f"{quote_for_error(str(art or cfg_type))})")
    layers = doc.get("layers")
    ours = [x for x in layers if isinstance(x, dict) and x.get("mediaType") == VULNDB_MEDIA_TYPE] \
        if isinstance(layers, list) else []
    if len(ours) != 1:
        raise ArtifactError(f"{where}: expected one {VULNDB_MEDIA_TYPE} layer, found {len(ours)}")
    size = ours[0].get("size")
    if not isinstance(size, int) or size < 0 or size > MAX_DOWNLOAD_BYTES:
        raise ArtifactError(f"{where}: database layer size {quote_for_error(str(size))} is out of bounds")
    ann = doc.get("annotations")
    annotations = {k: v for k, v in ann.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(ann, dict) else {}
    return Digest.parse(str(ours[0].get("digest"))), size, annotations


def _check_database(path: Path, where: str) -> int:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ArtifactError(f"{where}: the layer is not a SQLite database: {exc}") from exc
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] != store.SCHEMA_VERSION:
            raise ArtifactError(f"{where}: database schema {row[0] if row else '?'}, this giropops reads "
                                f"{store.SCHEMA_VERSION}")
        check = conn.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise ArtifactError(f"{where}: the database fails SQLite's quick_check: {check[0] if check else '?'}")
        return int(conn.execute("SELECT COUNT(*) FROM advisory").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise ArtifactError(f"{where}: the layer is not a giropops vulnerability database: {exc}") from exc
    finally:
        conn.close()


def pull(db_path: Path, ref: Reference, options: RegistryOptions = RegistryOptions(),
         trust: Trust | None = None, lock_timeout: float = store.DEFAULT_LOCK_TIMEOUT,
         on_wait: Callable[[str], None] | None = None) -> PullResult:
    """Fetch the artifact ``ref`` names, check it (signature with ``trust``), and swap it in atomically."""
    where = str(ref)
    client = RegistryClient(ref.registry_host, options)
    with client:
        raw, _mtype, digest = client.get_manifest(ref.path, ref.identifier)
        verified_signature = False
        if trust is not None:
            from giropops.sign.image import verify_image
            from giropops.sign.storage import RegistryStore

            # The signature must be over exactly the manifest we read (its digest), not over the tag.
            verify_image(RegistryStore(client, ref.with_digest(digest)), trust)
            verified_signature = True
        layer_digest, size, annotations = _layer_of(raw, where)
        with store.lock(db_path, lock_timeout, on_wait):
            fd, tmp_name = tempfile.mkstemp(prefix=f".{db_path.name}.", suffix=".pull", dir=db_path.parent)
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out, client.open_blob(ref.path, layer_digest, size) as src:
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                advisories = _check_database(tmp, where)
                os.replace(tmp, db_path)
            except GiropopsError:
                raise
            except OSError as exc:
                raise VulnError(f"cannot write beside {db_path}: {exc.strerror or exc}") from exc
            finally:
                tmp.unlink(missing_ok=True)
    return PullResult(where, digest, size, annotations.get(ANNOTATION_BUILT), advisories, verified_signature)

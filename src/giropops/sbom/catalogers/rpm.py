"""RPM: the rpm database of Red Hat-family images (AlmaLinux, Rocky, RHEL, Fedora...).

Read: the SQLite backend (``rpmdb.sqlite`` under ``/var/lib/rpm`` or Fedora's
``/usr/lib/sysimage/rpm``), the default of rpm 4.16+ on EL9 and Fedora, and rpm's
NDB backend (``Packages.db``, SUSE), and Berkeley DB (``Packages``, EL8 and older).  Each row
of its ``Packages`` table is one package *header blob*, parsed here from the
format rpm documents (``doc/manual/format.md``, "Header structure"): two 32-bit
big-endian counts (index entries ``il``, data bytes ``dl``), ``il`` index
entries of tag/type/offset/count, then the data store.  Every offset and count
is checked against the blob; a bad blob is an Unknown, the others still count.

The database is opened read-only from a private temporary copy (SQLite needs a
file); one that is not a database is an Unknown.  ``gpg-pubkey`` pseudo-packages
(imported signing keys) are not packages.  ``version`` is ``[epoch:]version-release``
as rpm prints it and as OSV's AlmaLinux records use.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from giropops.sbom.catalogers import CatalogResult, derived, read_derived
from giropops.sbom.distro import purl_distro
from giropops.sbom.filesystem import Resolver
from giropops.sbom.model import Distro, Location, Package
from giropops.sbom.purl import purl as make_purl

NAME = "rpm-db"
SQLITE = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
NDB = ("var/lib/rpm/Packages.db", "usr/lib/sysimage/rpm/Packages.db")
BDB = ("var/lib/rpm/Packages",)
DATABASES = SQLITE + NDB + BDB
KIND = "rpmdb"
MAX_DB_BYTES = 512 * 1024 * 1024
MAX_ENTRIES = 65536
MAX_ROWS = 200_000

TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH = 1000, 1001, 1002, 1003
TAG_VENDOR, TAG_LICENSE, TAG_ARCH, TAG_SOURCERPM = 1011, 1014, 1022, 1044
TYPE_INT32, TYPE_STRING, TYPE_I18NSTRING = 4, 6, 9
WANTED = {TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_VENDOR, TAG_LICENSE, TAG_ARCH, TAG_SOURCERPM}


class HeaderError(ValueError):
    pass


def parse_header(blob: bytes) -> dict[int, str | int]:
    """The wanted tags of one header blob (strings, and INT32 for the epoch)."""
    if len(blob) < 8:
        raise HeaderError("header blob shorter than its counts")
    il, dl = struct.unpack_from(">II", blob, 0)
    if il > MAX_ENTRIES or 8 + il * 16 + dl > len(blob):
        raise HeaderError(f"header counts ({il} entries, {dl} data bytes) exceed the blob ({len(blob)} bytes)")
    store = 8 + il * 16
    data = blob[store : store + dl]
    out: dict[int, str | int] = {}
    for i in range(il):
        tag, typ, offset, count = struct.unpack_from(">IIiI", blob, 8 + i * 16)
        if tag not in WANTED:
            continue
        if offset < 0 or offset >= len(data):
            raise HeaderError(f"tag {tag}: offset {offset} outside the data store")
        if typ == TYPE_INT32:
            if count < 1 or offset + 4 > len(data):
                raise HeaderError(f"tag {tag}: INT32 past the data store")
            out[tag] = struct.unpack_from(">I", data, offset)[0]
        elif typ in (TYPE_STRING, TYPE_I18NSTRING):
            end = data.find(b"\0", offset)
            if end < 0:
                raise HeaderError(f"tag {tag}: unterminated string")
            out[tag] = data[offset:end].decode("utf-8", "replace")
    return out


def rpm_version(fields: dict[int, str | int]) -> str:
    evr = f"{fields.get(TAG_VERSION, '')}-{fields.get(TAG_RELEASE, '')}"
    epoch = fields.get(TAG_EPOCH)
    return f"{epoch}:{evr}" if isinstance(epoch, int) else evr


def _source_name(srpm: str) -> tuple[str | None, str | None]:
    """``openssl-3.0.7-24.el9.src.rpm`` -> (``openssl``, ``3.0.7-24.el9``)."""
    base = srpm[: -len(".src.rpm")] if srpm.endswith(".src.rpm") else srpm
    base = base[: -len(".nosrc.rpm")] if srpm.endswith(".nosrc.rpm") else base
    parts = base.rsplit("-", 2)
    if len(parts) != 3:
        return None, None
    return parts[0], f"{parts[1]}-{parts[2]}"


def package(fields: dict[int, str | int], location: Location, distro: Distro | None) -> Package | None:
    name = fields.get(TAG_NAME)
    if not isinstance(name, str) or not name or name == "gpg-pubkey":
        return None
    version = rpm_version(fields)
    arch = fields.get(TAG_ARCH)
    epoch = fields.get(TAG_EPOCH)
    qualifiers: dict[str, str] = {}
    if isinstance(arch, str) and arch:
        qualifiers["arch"] = arch
    if isinstance(epoch, int):
        qualifiers["epoch"] = str(epoch)
    d = purl_distro(distro)
    if d:
        qualifiers["distro"] = d
    srpm = fields.get(TAG_SOURCERPM)
    src_name, src_version = _source_name(srpm) if isinstance(srpm, str) and srpm else (None, None)
    lic = fields.get(TAG_LICENSE)
    namespace = distro.id if distro is not None else None
    evr = f"{fields.get(TAG_VERSION, '')}-{fields.get(TAG_RELEASE, '')}"
    return Package(
        name=name,
        version=version,
        type="rpm",
        purl=make_purl(ptype="rpm", namespace=namespace, name=name, version=evr, qualifiers=qualifiers),
        source_name=src_name,
        source_version=src_version,
        arch=arch if isinstance(arch, str) and arch else None,
        licenses=(lic[:300],) if isinstance(lic, str) and lic else (),
        locations=(location,),
        metadata={"vendor": str(fields.get(TAG_VENDOR, ""))[:200]} if fields.get(TAG_VENDOR) else {},
    )


class _NotSQLite(Exception):
    """sqlite3's error, so that the module is imported only for an rpmdb.sqlite."""


def sqlite_blobs(data: bytes | bytearray) -> list[bytes]:
    """The header blobs of an rpmdb.sqlite, read from a private read-only copy."""
    import sqlite3
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix="giropops-rpmdb-", suffix=".sqlite")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            con = sqlite3.connect(f"file:{tmp}?mode=ro&immutable=1", uri=True)
            try:
                rows = con.execute("SELECT blob FROM Packages ORDER BY hnum LIMIT ?", (MAX_ROWS,)).fetchall()
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise _NotSQLite(str(exc)) from exc
    finally:
        os.unlink(tmp)
    return [bytes(r[0]) for r in rows if isinstance(r[0], (bytes, memoryview))]


NDB_PAGE = 4096
NDB_BLOCK = 16
NDB_HEADER_MAGIC = b"RpmP"
NDB_SLOT_MAGIC = b"Slot"
NDB_BLOB_MAGIC = b"BlbS"


def ndb_blobs(data: bytes | bytearray) -> list[bytes]:
    """The header blobs of an NDB ``Packages.db`` (rpm's own format, SUSE's default).

    Page 0 starts with a 32-byte header (magic ``RpmP``, version, generation, number of slot
    pages), followed by 16-byte slots (magic ``Slot``, package index, block offset, block count)
    filling the slot pages; a slot with index 0 is free.  A slot's blob starts at ``offset * 16``
    with a 16-byte header (magic ``BlbS``, package index, checksum, length), then the header blob.
    All integers are little-endian.
    """
    if len(data) < 32 or data[:4] != NDB_HEADER_MAGIC:
        raise HeaderError("not an NDB Packages.db (no RpmP magic)")
    version, _, slot_pages = struct.unpack_from("<III", data, 4)
    if version != 0:
        raise HeaderError(f"NDB version {version} is not supported")
    if slot_pages == 0 or slot_pages * NDB_PAGE > len(data):
        raise HeaderError(f"NDB slot pages ({slot_pages}) past the end of the file")
    out: list[bytes] = []
    for off in range(32, slot_pages * NDB_PAGE, 16):
        magic, index, block, count = struct.unpack_from("<4sIII", data, off)
        if magic != NDB_SLOT_MAGIC:
            raise HeaderError(f"bad NDB slot at offset {off}")
        if index == 0:
            continue
        start = block * NDB_BLOCK
        if start + 16 > len(data) or count * NDB_BLOCK > len(data) - start:
            raise HeaderError(f"NDB package {index}: blob past the end of the file")
        bmagic, bindex, _, length = struct.unpack_from("<4sIII", data, start)
        if bmagic != NDB_BLOB_MAGIC or bindex != index or 16 + length > count * NDB_BLOCK:
            raise HeaderError(f"NDB package {index}: bad blob header")
        out.append(bytes(data[start + 16 : start + 16 + length]))
        if len(out) > MAX_ROWS:
            break
    return out


BDB_HASH_MAGIC = 0x061561
P_HASH_UNSORTED, P_OVERFLOW, P_HASH = 2, 7, 13
H_KEYDATA, H_OFFPAGE = 1, 3
BDB_PAGE_HEADER = 26


def _bdb_item(pg: bytes | bytearray, offsets: tuple[int, ...], i: int, n: int) -> bytes | bytearray:
    """Item ``i`` of a hash page: from its offset up to the previous item's (or the page's end)."""
    top = len(pg) if i == 0 else offsets[i - 1]
    if not BDB_PAGE_HEADER <= offsets[i] < top <= len(pg):
        raise HeaderError(f"page {n}: item {i} out of the page")
    return pg[offsets[i] : top]


def bdb_blobs(data: bytes | bytearray) -> list[bytes]:
    """The values of a Berkeley DB *hash* database (rpm's ``Packages`` before 4.16), as Berkeley DB 5
    lays it out: a metadata page (magic ``0x061561`` at byte 12, which also gives the byte order; page
    size at 20), then pages with a 26-byte header (next page at 16, entry count at 20, free-area offset
    at 22, type at 25).  Hash pages hold key/data item pairs through an index of offsets; a value is
    inline (``H_KEYDATA``) or on a chain of overflow pages (``H_OFFPAGE``: first page, total length).
    The record with key 0 is rpm's instance counter, not a package."""
    if len(data) < 512:
        raise HeaderError("not a Berkeley DB file (too short)")
    for end in ("<", ">"):
        if struct.unpack_from(end + "I", data, 12)[0] == BDB_HASH_MAGIC:
            break
    else:
        raise HeaderError("not a Berkeley DB hash database")
    page_size = struct.unpack_from(end + "I", data, 20)[0]
    if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        raise HeaderError(f"bad Berkeley DB page size {page_size}")
    pages = len(data) // page_size

    def page(n: int) -> bytes | bytearray:
        return data[n * page_size : (n + 1) * page_size]

    def overflow(first: int, length: int) -> bytes:
        parts: list[bytes] = []
        got = 0
        seen: set[int] = set()
        n = first
        while got < length:
            if n <= 0 or n >= pages or n in seen:
                raise HeaderError(f"overflow chain reaches a bad page {n}")
            seen.add(n)
            pg = page(n)
            if pg[25] != P_OVERFLOW:
                raise HeaderError(f"page {n} is not an overflow page")
            used = struct.unpack_from(end + "H", pg, 22)[0]
            chunk = bytes(pg[BDB_PAGE_HEADER : BDB_PAGE_HEADER + min(used, length - got)])
            if not chunk:
                raise HeaderError(f"empty overflow page {n}")
            parts.append(chunk)
            got += len(chunk)
            n = struct.unpack_from(end + "I", pg, 16)[0]
        return b"".join(parts)

    out: list[bytes] = []
    for n in range(1, pages):
        pg = page(n)
        if pg[25] not in (P_HASH, P_HASH_UNSORTED):
            continue
        entries = struct.unpack_from(end + "H", pg, 20)[0]
        if BDB_PAGE_HEADER + 2 * entries > page_size:
            raise HeaderError(f"page {n}: {entries} entries do not fit")
        offsets = struct.unpack_from(end + f"{entries}H", pg, BDB_PAGE_HEADER)

        for i in range(0, entries - 1, 2):
            key, value = _bdb_item(pg, offsets, i, n), _bdb_item(pg, offsets, i + 1, n)
            if key[0] == H_KEYDATA and bytes(key[1:5]) == b"\0\0\0\0":
                continue  # rpm's instance counter
            if value[0] == H_OFFPAGE and len(value) >= 12:
                first, length = struct.unpack_from(end + "II", value, 4)
                out.append(overflow(first, length))
            elif value[0] == H_KEYDATA:
                out.append(bytes(value[1:]))
            if len(out) > MAX_ROWS:
                return out
    return out


def extract_db(data: bytes | bytearray) -> bytes:
    """The wanted tags of every header (or why they could not be read), kept instead of the database."""
    record: dict[str, Any] = {"headers": [], "errors": []}
    try:
        if data[:4] == NDB_HEADER_MAGIC:
            blobs = ndb_blobs(data)
        elif data[:16] == b"SQLite format 3\0":
            blobs = sqlite_blobs(data)
        else:
            blobs = bdb_blobs(data)
    except HeaderError as exc:
        record["errors"].append(str(exc))
        return derived(KIND, record)
    except _NotSQLite as exc:
        record["errors"].append(f"not an rpm SQLite database: {exc}")
        return derived(KIND, record)
    except OSError as exc:
        record["errors"].append(f"cannot read the rpm database: {exc.strerror}")
        return derived(KIND, record)
    for n, blob in enumerate(blobs, start=1):
        try:
            record["headers"].append({str(k): v for k, v in parse_header(blob).items()})
        except HeaderError as exc:
            record["errors"].append(f"package header {n}: {exc}")
    return derived(KIND, record)


class RpmDbExtractor:
    """rpm databases are larger than metadata files (tens of MiB): only their headers' tags are kept."""

    name = "rpmdb"
    version = "1"
    max_bytes = MAX_DB_BYTES

    def wants(self, path: str, mode: int) -> bool:
        return path in DATABASES

    def extract(self, data: bytes | bytearray) -> bytes | None:
        return extract_db(data)


class RpmDbCataloger:
    name = NAME
    globs: tuple[str, ...] = ()
    extractors = (RpmDbExtractor(),)

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        result = CatalogResult()
        for path in DATABASES:
            data = resolver.read(path)
            if data is None:
                continue
            location = resolver.location(path)
            record = read_derived(data, KIND)
            if record is None:
                record = read_derived(extract_db(data), KIND)
            assert record is not None
            for error in record.get("errors") or []:
                result.unknown(location, NAME, str(error)[:300])
            for header in record.get("headers") or []:
                if not isinstance(header, dict):
                    continue
                fields: dict[int, str | int] = {}
                for k, v in header.items():
                    if str(k).isdigit() and isinstance(v, (str, int)):
                        fields[int(k)] = v
                pkg = package(fields, location, distro)
                if pkg is not None:
                    result.packages.append(pkg)
        return result

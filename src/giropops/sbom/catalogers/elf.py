"""What Go and Rust catalogers need from an executable, read from its ELF bytes while the layer streams.

The ``ElfExtractor`` is given every regular file with an executable bit (up to
``MAX_BINARY_BYTES``) and keeps only:

* Go's build information: the ``.go.buildinfo`` section (or, when section headers
  were stripped, the 16-byte aligned ``\\xff Go buildinf:`` header).  Go 1.18 and
  later write the toolchain version and the module information inline as
  varint-prefixed strings (flag bit 2); older toolchains write two pointers to Go
  string headers, which are followed through the program headers' mapping of
  virtual addresses to file offsets.
* cargo-auditable's dependency list: the zlib-compressed JSON of the ``.dep-v0``
  section, inflated to at most ``MAX_AUDIT_JSON`` bytes.

Everything is bounds-checked: a malformed ELF gives a record with an ``error``
(an Unknown later), never an exception; an ELF with neither gives nothing.
"""

from __future__ import annotations

import json
import stat
import struct
import zlib

from giropops.record import record
from giropops.sbom.catalogers import derived

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    import mmap
    from typing import Any

KIND = "elf"
MAX_BINARY_BYTES = 256 * 1024 * 1024
MAX_AUDIT_JSON = 8 * 1024 * 1024
MAX_GO_STRING = 4 * 1024 * 1024
MAX_SECTIONS = 65536
GO_MAGIC = b"\xff Go buildinf:"
GO_WINDOW = 2 * MAX_GO_STRING + 64
GO_HEAD = 64 * 1024
MAX_TABLE_BYTES = MAX_SECTIONS * 64  # a header table read in one slice at most (65,536 ELF64 section headers)

if TYPE_CHECKING:
    from giropops.sbom.tarstream import FileRegion  # what ``Elf`` reads, as bytes or a mapping: slices


class ElfError(ValueError):
    pass


@record
class _Segment:
    vaddr: int
    offset: int
    filesz: int


class Elf:
    """The few parts of an ELF file needed here: section bytes by name, virtual-address reads."""

    def __init__(self, data: bytes | bytearray | mmap.mmap | FileRegion) -> None:
        head = data[:64]  # one read of the header, whatever ``data`` is
        if len(data) < 52 or head[:4] != b"\x7fELF":
            raise ElfError("not an ELF file")
        self.data = data
        cls, enc = head[4], head[5]
        if cls not in (1, 2) or enc not in (1, 2):
            raise ElfError("bad ELF class or data encoding")
        self.is64 = cls == 2
        self.end = "<" if enc == 1 else ">"
        if self.is64:
            if len(data) < 64:
                raise ElfError("truncated ELF header")
            phoff, shoff = struct.unpack_from(self.end + "QQ", head, 0x20)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(self.end + "HHHHH", head, 0x36)
        else:
            phoff, shoff = struct.unpack_from(self.end + "II", head, 0x1C)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(self.end + "HHHHH", head, 0x2A)
        self.segments = self._segments(phoff, phentsize, phnum)
        self.sections = self._sections(shoff, shentsize, shnum, shstrndx)

    def _u(self, fmt: str, off: int) -> tuple[int, ...]:
        size = struct.calcsize(self.end + fmt)
        if off < 0 or off + size > len(self.data):
            raise ElfError(f"read past the end of the file at offset {off}")
        return struct.unpack(self.end + fmt, self.data[off : off + size])  # a slice: bytes, a mapping or a FileRegion

    def _table(self, fmt: str, off: int, entsize: int, num: int) -> list[tuple[int, ...]]:
        """``num`` entries of ``fmt`` (the leading fields of each) every ``entsize`` bytes from ``off``:
        the table read in one slice and unpacked in C; one past the end of the file raises as ``_u``."""
        size = struct.calcsize(self.end + fmt)
        if off < 0 or off + (num - 1) * entsize + size > len(self.data) or num * entsize > MAX_TABLE_BYTES:
            # raises where it runs out; a table of odd, huge entries is not copied whole either
            return [self._u(fmt, off + i * entsize) for i in range(num)]
        table = self.data[off : off + num * entsize]
        if len(table) < (num - 1) * entsize + size:
            raise ElfError(f"read past the end of the file at offset {off}")
        if entsize == size and len(table) == num * size:
            return list(struct.iter_unpack(self.end + fmt, table))
        form = struct.Struct(self.end + fmt)
        return [form.unpack_from(table, i * entsize) for i in range(num)]

    def _segments(self, phoff: int, entsize: int, num: int) -> list[_Segment]:
        out: list[_Segment] = []
        want = 56 if self.is64 else 32
        if num == 0 or phoff == 0:
            return out
        if entsize < want:
            raise ElfError("bad program header size")
        if self.is64:
            for ptype, _, offset, vaddr, _, filesz in self._table("IIQQQQ", phoff, entsize, num):
                if ptype == 1:  # PT_LOAD
                    out.append(_Segment(vaddr, offset, filesz))
        else:
            for ptype, offset, vaddr, _, filesz in self._table("IIIII", phoff, entsize, num):
                if ptype == 1:
                    out.append(_Segment(vaddr, offset, filesz))
        return out

    def _sections(self, shoff: int, entsize: int, num: int, strndx: int) -> dict[str, tuple[int, int, int]]:
        """name -> (address, file offset, size) of sections with bytes in the file."""
        want = 64 if self.is64 else 40
        if num == 0 or shoff == 0:
            return {}
        if entsize < want or num > MAX_SECTIONS or strndx >= num:
            raise ElfError("bad section header table")
        table = self._table("IIQQQQ" if self.is64 else "IIIIII", shoff, entsize, num)
        _, _, _, _, str_off, str_size = table[strndx]
        total = len(self.data)
        if str_off + str_size > total:
            raise ElfError("section name table past the end of the file")
        names = self.data[str_off : str_off + str_size]
        count = len(names)
        out: dict[str, tuple[int, int, int]] = {}
        for name, stype, _, addr, offset, size in table:
            if stype == 8 or name >= count:  # SHT_NOBITS
                continue
            end = names.find(b"\0", name)
            label = names[name : end if end >= 0 else count].decode("latin-1")
            if offset + size <= total:
                out.setdefault(label, (addr, offset, size))
        return out

    def section(self, name: str) -> bytes | bytearray | None:
        found = self.sections.get(name)
        if found is None:
            return None
        _, offset, size = found
        return self.data[offset : offset + size]

    def read_va(self, addr: int, size: int) -> bytes | bytearray:
        for seg in self.segments:
            if seg.vaddr <= addr and addr + size <= seg.vaddr + seg.filesz:
                off = seg.offset + (addr - seg.vaddr)
                if off + size <= len(self.data):
                    return self.data[off : off + size]
        for saddr, soff, ssize in self.sections.values():
            if saddr and saddr <= addr and addr + size <= saddr + ssize:
                off = soff + (addr - saddr)
                return self.data[off : off + size]
        raise ElfError(f"address {addr:#x} is not mapped from the file")


def _varint(data: bytes | bytearray, off: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if off >= len(data) or shift > 63:
            raise ElfError("truncated varint in Go build info")
        b = data[off]
        off += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, off
        shift += 7


def _find_go_header(elf: Elf) -> int | None:
    """The file offset of the build info header (what follows it, at most ``GO_WINDOW`` bytes, holds
    the inline strings of the new format; the old format's pointers are followed through ``read_va``)."""
    found = elf.sections.get(".go.buildinfo")
    if found is not None:
        off = found[1]
        return off if elf.data[off : off + 14] == GO_MAGIC else None
    if elf.sections:
        return None  # every Go toolchain writes the section; only a binary stripped of its section table lacks it
    pos = elf.data.find(GO_MAGIC)
    while pos >= 0:
        if pos % 16 == 0:
            return pos
        pos = elf.data.find(GO_MAGIC, pos + 1)
    return None


def go_buildinfo(elf: Elf) -> tuple[str, str] | None:
    """(toolchain version, module info text) of a Go executable; None when it is not one.

    The strings are read from the first ``GO_HEAD`` bytes after the header when they fit there (they
    always do in practice), else from the whole ``GO_WINDOW``: the same result, without copying
    megabytes of every binary (or touching its pages, when it is mapped)."""
    off = _find_go_header(elf)
    if off is None:
        return None
    head = elf.data[off : off + GO_HEAD]
    if len(head) == GO_HEAD:  # the window may go on past this prefix
        try:
            return _go_strings(elf, head, whole=False)
        except ElfError:
            pass  # decided on the whole window, as without the prefix
        head = elf.data[off : off + GO_WINDOW]
    return _go_strings(elf, head, whole=True)


def _go_strings(elf: Elf, head: bytes | bytearray, whole: bool) -> tuple[str, str]:
    """Parse the header at the start of ``head``; when ``whole`` is false, ``head`` is only a prefix of
    the window and a string running past its end is an ``ElfError`` (the caller reads the window)."""
    if len(head) < 32:
        raise ElfError("truncated Go build info header")
    ptr_size, flags = head[14], head[15]
    if flags & 2:  # Go 1.18+: inline strings
        n, off = _varint(head, 32)
        if not whole and off + n > len(head):
            raise ElfError("past the prefix")
        version = head[off : off + n]
        off += n
        n, off = _varint(head, off)
        if not whole and off + n > len(head):
            raise ElfError("past the prefix")
        mod = head[off : off + n]
        if len(version) > MAX_GO_STRING or len(mod) > MAX_GO_STRING:
            raise ElfError("Go build info string too long")
    else:
        if ptr_size not in (4, 8):
            raise ElfError(f"bad pointer size {ptr_size} in Go build info")
        end = ">" if flags & 1 else "<"
        fmt = end + ("Q" if ptr_size == 8 else "I")

        def pointer(raw: bytes | bytearray, off: int) -> int:
            if off + ptr_size > len(raw):
                raise ElfError("truncated pointer in Go build info")
            value: int = struct.unpack_from(fmt, raw, off)[0]
            return value

        def go_string(addr: int) -> bytes | bytearray:
            header = elf.read_va(addr, 2 * ptr_size)
            data_addr, length = pointer(header, 0), pointer(header, ptr_size)
            if length > MAX_GO_STRING:
                raise ElfError("Go build info string too long")
            return elf.read_va(data_addr, length) if length else b""

        version = go_string(pointer(head, 16))
        mod = go_string(pointer(head, 16 + ptr_size))
    if len(mod) >= 33 and mod[-17:-16] == b"\n":
        mod = mod[16:-16]
    return version.decode("utf-8", "replace"), mod.decode("utf-8", "replace")


def cargo_auditable(elf: Elf) -> Any | None:
    sec = elf.section(".dep-v0")
    if sec is None:
        return None
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(sec, MAX_AUDIT_JSON)
    except zlib.error as exc:
        raise ElfError(f".dep-v0 is not zlib data: {exc}") from exc
    if inflater.unconsumed_tail:
        raise ElfError(f".dep-v0 inflates to more than {MAX_AUDIT_JSON} bytes")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ElfError(f".dep-v0 is not JSON: {str(exc)[:100]}") from exc


def extract(data: bytes | bytearray | mmap.mmap | FileRegion) -> bytes | None:
    """The derived record of an executable, in memory, mapped from a file or a ``FileRegion`` of the
    layer's own file (only its headers and the sections read here are then touched or read)."""
    if data[:4] != b"\x7fELF":
        return None
    record: dict[str, Any] = {}
    try:
        elf = Elf(data)
        go = go_buildinfo(elf)
        if go is not None:
            record["go"] = {"version": go[0], "mod": go[1]}
        rust = cargo_auditable(elf)
        if rust is not None:
            record["rust"] = rust
    except ElfError as exc:
        record["error"] = f"malformed executable: {exc}"
    except (struct.error, IndexError, OverflowError) as exc:  # belt and braces on hostile headers
        record["error"] = f"malformed executable: {exc}"
    return derived(KIND, record) if record else None


class ElfExtractor:
    name = "elf"
    version = "1"
    max_bytes = MAX_BINARY_BYTES

    def wants(self, path: str, mode: int) -> bool:
        return bool(mode & 0o111) and not stat.S_ISDIR(mode)

    def extract(self, data: bytes | bytearray) -> bytes | None:
        return extract(data)

    def extract_mapped(self, data: mmap.mmap | FileRegion) -> bytes | None:
        return extract(data)

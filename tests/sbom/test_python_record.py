"""A wheel's RECORD is read as csv reads it; the plain ones without importing csv."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys

import pytest

from giropops.sbom.catalogers.python import record_paths

RECORDS = [
    "idna/__init__.py,sha256=abc,849\nidna/codec.py,sha256=def,3422\nidna-3.7.dist-info/RECORD,,\n",
    "a.py,sha256=x,1\n\n\nb.py\n,,\n,sha256=y,2\nc.py,",  # empty rows, an empty first field, no final newline
    '"dir/with,comma.py",sha256=x,1\nplain.py,sha256=y,2\n',  # quoted: csv reads it
    '"say ""hi"".py",sha256=x,1\n',
    "a.py,sha256=x,1\r\nb.py,sha256=y,2\r\n\r\nc.py\r\n",  # CRLF, as wheels write it
    "a.py,sha256=x,1\rb.py,,\n",  # a CR inside a row: csv says so
    "a.py,sha256=x,1\r\nb.py,,\r",  # a CR at the very end
    " spaced .py ,sha256=x,1\n\tta\tb.py,,\n",
    "ünïcödé/ß.py,sha256=x,1\nemoji/🐍.py,,\n\u2028line-separator.py,,\n",
    "x" * 200_000 + ",sha256=x,1\n",  # a field longer than csv accepts: csv says so
    "a\x00.py,,\n",  # NUL: csv refuses it
    "",
]


@pytest.mark.parametrize("text", RECORDS, ids=range(len(RECORDS)))
def test_a_record_is_read_as_csv_reads_it(text: str) -> None:
    try:
        expected = [row[0] for row in csv.reader(io.StringIO(text)) if row and row[0]]
    except csv.Error as exc:
        with pytest.raises(csv.Error, match=re.escape(str(exc))):
            record_paths(text)
        return
    assert record_paths(text) == expected


def test_a_plain_record_is_read_without_csv() -> None:
    code = ("import sys; from giropops.sbom.catalogers.python import record_paths; "
            "assert record_paths('a.py,sha256=x,1\\r\\nb/c.py,,\\r\\n') == ['a.py', 'b/c.py']; "
            "print('csv' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

"""``giropops copy|pull|push SRC DST [-q]`` is parsed without argparse (``cli.copy.parse_plain``): the namespace
must be the one the parser makes, and every other command line must be left to the parser."""

from __future__ import annotations

import pytest

from giropops.cli.copy import parse_plain
from giropops.cli.main import build_parser

PLAIN = [
    ["copy", "archive:///tmp/a.tar", "registry://127.0.0.1:5000/a/b:1"],
    ["copy", "-q", "registry://127.0.0.1:5000/a/b:1", "archive:///tmp/a.tar"],
    ["push", "archive:///tmp/a.tar", "--quiet", "127.0.0.1:5000/a/b:1"],
    ["pull", "127.0.0.1:5000/a/b:1", "oci-dir:///tmp/d", "-q"],
    ["push", "oci-dir:///tmp/d:x", "127.0.0.1:5000/a/b@sha256:" + "0" * 64],
]


@pytest.mark.parametrize("argv", PLAIN)
@pytest.mark.parametrize("whole", [False, True])
def test_a_plain_copy_is_the_namespace_the_parser_makes(argv: list[str], whole: bool) -> None:
    plain = parse_plain(argv)
    assert plain is not None
    parsed = build_parser(None if whole else argv[0]).parse_args(argv)
    assert vars(plain) == vars(parsed)


@pytest.mark.parametrize("argv", [
    [],
    ["copy"],
    ["copy", "a"],
    ["copy", "a", "b", "c"],
    ["copy", "a", "b", "-q", "-q"],
    ["copy", "a", "b", "--jobs", "2"],
    ["copy", "a", "b", "--qui"],  # argparse's abbreviations: the parser's business
    ["copy", "--", "a", "b"],
    ["copy", "a", "-"],
    ["copy", "", "b"],
    ["copy", "a", "b", "--help"],
    ["copy", "a", "b", "--insecure"],
    ["push", "a", "b", "--preserve-digests"],
    ["sbom", "a", "b"],
    ["copyx", "a", "b"],
])
def test_anything_else_goes_to_the_parser(argv: list[str]) -> None:
    assert parse_plain(argv) is None

"""``giropops copy|pull|push SRC DST [-q]`` and ``giropops sbom IMAGE [-f F] [-o F] [--platform P]`` are parsed
without argparse (``cli.copy.parse_plain``, ``cli.sbom.parse_plain``): the namespace must be the one the parser
makes, and every other command line must be left to the parser."""

from __future__ import annotations

import pytest

from giropops.cli import sbom
from giropops.cli.copy import parse_plain
from giropops.cli.main import build_parser

PLAIN = [
    ["copy", "archive://imgs/a.tar", "registry://127.0.0.1:5000/a/b:1"],
    ["copy", "-q", "registry://127.0.0.1:5000/a/b:1", "archive://imgs/a.tar"],
    ["push", "archive://imgs/a.tar", "--quiet", "127.0.0.1:5000/a/b:1"],
    ["pull", "127.0.0.1:5000/a/b:1", "oci-dir://imgs/d", "-q"],
    ["push", "oci-dir://imgs/d:x", "127.0.0.1:5000/a/b@sha256:" + "0" * 64],
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


SBOM_PLAIN = [
    ["sbom", "archive://imgs/a.tar"],
    ["sbom", "archive://imgs/a.tar", "-f", "cyclonedx-json", "-o", "imgs/out.json"],
    ["sbom", "--format=spdx-json", "--output=imgs/o", "fs://imgs/root"],
    ["sbom", "--platform", "linux/arm64", "127.0.0.1:5000/a/b:1", "--format", "json"],
    ["sbom", "--platform=linux/amd64", "sbom://imgs/x.json", "-f", "list"],
]


@pytest.mark.parametrize("argv", SBOM_PLAIN)
@pytest.mark.parametrize("whole", [False, True])
def test_a_plain_sbom_is_the_namespace_the_parser_makes(argv: list[str], whole: bool) -> None:
    plain = sbom.parse_plain(argv)
    assert plain is not None
    assert vars(plain) == vars(build_parser(None if whole else argv[0]).parse_args(argv))


@pytest.mark.parametrize("argv", [
    ["sbom"],
    ["sbom", "a", "b"],
    ["sbom", "a", "-f", "no-such-format"],  # argparse's choices error, as before
    ["sbom", "a", "-f"],
    ["sbom", "a", "--timestamp"],
    ["sbom", "a", "--no-cache"],
    ["sbom", "a", "--only-package-type", "deb"],
    ["sbom", "a", "--form", "json"],
    ["sbom", "a", "-o", ""],
    ["sbom", "a", "-f", "json", "-f", "json"],
    ["sbom", "a", "--insecure"],
    ["sbom", "--help"],
    ["copy", "a", "b"],
])
def test_any_other_sbom_goes_to_the_parser(argv: list[str]) -> None:
    assert sbom.parse_plain(argv) is None

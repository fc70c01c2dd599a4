"""Which paths the catalogers' globs keep: the cheap prefilter in front of the combined regex must
never drop a path the globs match (issue 19), nor keep one they do not."""

from __future__ import annotations

import pytest

from giropops.sbom.catalogers import default_catalogers, interest_for
from giropops.sbom.filesystem import Interest

KEPT = [
    "var/lib/dpkg/status",
    "var/lib/dpkg/status.d/libc6",
    "var/lib/dpkg/info/libc6.list",
    "etc/os-release",
    "usr/lib/os-release",
    "usr/share/doc/libc6/copyright",
    "opt/venv/lib/python3.11/site-packages/idna-3.7.dist-info/METADATA",
    "opt/venv/lib/python3.11/site-packages/idna-3.7.dist-info/RECORD",
    "usr/lib/python3/dist-packages/foo.egg-info",
    "usr/lib/python3/dist-packages/foo.egg-info/PKG-INFO",
    "srv/web/node_modules/lodash/package.json",
    "srv/web/node_modules/@babel/core/package.json",
    "usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec",
    "var/www/vendor/composer/installed.json",
    "app/WebApp.deps.json",
    "lib/apk/db/installed",
]
DROPPED = [
    "x/var/lib/dpkg/status",  # anchored globs are anchored
    "var/lib/dpkg/status.d/sub/libc6",  # ``*`` stays within one component
    "usr/share/doc/libc6/sub/copyright",
    "srv/web/node_modules/lodash/fp/package.json",
    "srv/web/node_modules/@babel/core/lib/package.json",
    "opt/venv/lib/python3.11/site-packages/idna/METADATA.py",
    "usr/share/go-1.19/src/net/http/server.go",
    "etc/os-release.d/x",
    "deps.json.bak",
]


@pytest.mark.parametrize("path", KEPT)
def test_paths_of_interest_are_kept(path: str) -> None:
    assert interest_for(default_catalogers()).matches(path)


@pytest.mark.parametrize("path", DROPPED)
def test_other_paths_are_dropped(path: str) -> None:
    assert not interest_for(default_catalogers()).matches(path)


def test_a_glob_ending_in_a_lone_star_after_a_double_star_turns_the_filter_off() -> None:
    interest = Interest(["**/conf.d/*", "etc/issue"])
    assert interest.matches("a/b/conf.d/anything")
    assert interest.matches("conf.d/x")
    assert not interest.matches("a/b/conf.d/x/y")
    assert interest.matches("etc/issue") and not interest.matches("etc/issue.net")


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("usr/bin/ls", "usr/bin/ls"),
        ("./usr/bin/ls", "usr/bin/ls"),
        ("/usr//bin/./ls/", "usr/bin/ls"),
        ("usr/.hidden/x", "usr/.hidden/x"),
        (".bashrc", ".bashrc"),
        ("a/b/.", "a/b"),
        (".", ""),
        ("", ""),
        ("usr/../etc/shadow", None),
        ("..", None),
        ("a/..", None),
        ("../a", None),
        ("a/b\0c", None),
        ("a/...", "a/..."),
    ],
)
def test_tar_names_are_cleaned_or_refused(name: str, clean: str | None) -> None:
    from giropops.sbom.filesystem import clean_path

    assert clean_path(name) == clean

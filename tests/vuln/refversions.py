"""Reference version comparators, each run once for a whole list of pairs.

* Maven: ``ComparableVersion``'s own ``main`` from Maven's ``maven-artifact`` jar;
* RubyGems: ``Gem::Version#<=>`` in ``ruby``;
* RPM: ``rpm.vercmp`` of rpm's embedded Lua (``rpm --eval``);
* npm / SemVer: node-semver's ``compare`` (Debian's ``node-semver``) in ``node``.

Each returns -1, 0 or 1 per pair, or None where the reference refuses the input.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import subprocess
import tempfile
from pathlib import Path

from tests.support.services import require_binary


@functools.cache
def node_semver_dir() -> str:
    """Where Debian's node-semver package put the module (its dependencies live beside it)."""
    out = subprocess.run([require_binary("dpkg-query"), "-L", "node-semver"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.endswith("/semver/package.json") and "/@types/" not in line:
            return str(Path(line).parent)
    raise RuntimeError("node-semver not installed; install Debian's node-semver (scripts/test)")


@functools.cache
def maven_jar() -> str:
    """Maven's own ``maven-artifact`` jar, beside the installed ``mvn``."""
    home = Path(require_binary("mvn")).resolve().parent.parent
    jars = sorted(glob.glob(str(home / "lib" / "maven-artifact-*.jar")))
    if not jars:
        raise RuntimeError("maven-artifact jar not found; install Debian's maven (scripts/test)")
    return jars[0]


def maven(pairs: list[tuple[str, str]]) -> list[int]:
    """ComparableVersion's main prints ``   A < B`` for consecutive arguments: pass a1 b1 a2 b2 ... and keep
    the odd lines (a_i vs b_i)."""
    java = require_binary("java")
    args = [v for pair in pairs for v in pair]
    out = subprocess.run([java, "-cp", maven_jar(), "org.apache.maven.artifact.versioning.ComparableVersion", *args],
                         capture_output=True, text=True, check=True).stdout
    results = []
    for line in out.splitlines():
        if line.startswith("   "):
            body = line[3:]
            for op, value in ((" < ", -1), (" == ", 0), (" > ", 1)):
                if op in body:
                    results.append(value)
                    break
    assert len(results) == len(args) - 1, out[-2000:]
    return results[0::2]


_RUBY = r"""
require "json"
JSON.parse(STDIN.read).each do |a, b|
  begin
    puts(Gem::Version.new(a) <=> Gem::Version.new(b))
  rescue ArgumentError
    puts "invalid"
  end
end
"""


def rubygems(pairs: list[tuple[str, str]]) -> list[int | None]:
    ruby = require_binary("ruby")
    out = subprocess.run([ruby, "-e", _RUBY], input=json.dumps(pairs), capture_output=True, text=True,
                         check=True).stdout
    return [None if x == "invalid" else int(x) for x in out.split()]


def rpm(pairs: list[tuple[str, str]]) -> list[int]:
    binary = require_binary("rpm")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs"
        data.write_text("".join(f"{a}\t{b}\n" for a, b in pairs))
        lua = ('%{lua: for line in io.lines("' + str(data) + '") do '
               'local a, b = line:match("^(.-)\\t(.*)$"); print(" " .. rpm.vercmp(a, b) .. " ") end}')
        out = subprocess.run([binary, "--eval", lua], capture_output=True, text=True, check=True).stdout
    return [int(x) for x in out.split()]


_NODE = """
const semver = require(process.argv[1]);
let input = "";
process.stdin.on("data", d => input += d);
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(([a, b]) => {
    if (semver.valid(a) === null || semver.valid(b) === null) return null;
    return semver.compare(a, b);
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def node_semver(pairs: list[tuple[str, str]]) -> list[int | None]:
    node = require_binary("node")
    module = node_semver_dir()
    env = {**os.environ, "NODE_PATH": str(Path(module).parent)}  # its own dependencies live beside it
    out = subprocess.run([node, "-e", _NODE, module], input=json.dumps(pairs), capture_output=True, text=True,
                         check=True, env=env).stdout
    return [None if x is None else int(x) for x in json.loads(out)]


# --- ranks: every version of a list sorted by the reference at once (for the oracle) -------------------

_JAVA_RANK = """
import java.io.*;
import java.util.*;
import org.apache.maven.artifact.versioning.ComparableVersion;

public class Rank {
    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        List<String> vs = new ArrayList<>();
        for (String line; (line = in.readLine()) != null; ) vs.add(line);
        vs.sort((a, b) -> new ComparableVersion(a).compareTo(new ComparableVersion(b)));
        int rank = 0;
        for (int i = 0; i < vs.size(); i++) {
            if (i > 0 && new ComparableVersion(vs.get(i - 1)).compareTo(new ComparableVersion(vs.get(i))) != 0) rank++;
            System.out.println(rank + "\\t" + vs.get(i));
        }
    }
}
"""

_RUBY_RANK = r"""
vs = STDIN.read.split("\n").select { |v| Gem::Version.correct?(v) }.map { |v| [Gem::Version.new(v), v] }
vs.sort_by! { |g, _| g }
rank = 0
vs.each_with_index do |(g, v), i|
  rank += 1 if i > 0 && (vs[i - 1][0] <=> g) != 0
  puts "#{rank}\t#{v}"
end
"""

_NODE_RANK = """
const semver = require(process.argv[1]);
let input = "";
process.stdin.on("data", d => input += d);
process.stdin.on("end", () => {
  const vs = input.split("\\n").filter(v => v && semver.valid(v, {loose: true}) !== null);
  vs.sort((a, b) => semver.compare(a, b, {loose: true}));
  let rank = 0;
  const out = vs.map((v, i) => {
    if (i > 0 && semver.compare(vs[i - 1], v, {loose: true}) !== 0) rank++;
    return rank + "\\t" + v;
  });
  process.stdout.write(out.join("\\n"));
});
"""


def _ranks(out: str) -> dict[str, int]:
    ranks: dict[str, int] = {}
    for line in out.splitlines():
        if line:
            rank, version = line.split("\t", 1)
            ranks[version] = int(rank)
    return ranks


def maven_ranks(versions: list[str]) -> dict[str, int]:
    javac, java = require_binary("javac"), require_binary("java")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Rank.java").write_text(_JAVA_RANK)
        subprocess.run([javac, "-cp", maven_jar(), "-d", tmp, str(Path(tmp) / "Rank.java")], check=True,
                       capture_output=True)
        out = subprocess.run([java, "-cp", f"{tmp}:{maven_jar()}", "Rank"], input="\n".join(versions),
                             capture_output=True, text=True, check=True).stdout
    return _ranks(out)


def rubygems_ranks(versions: list[str]) -> dict[str, int]:
    out = subprocess.run([require_binary("ruby"), "-e", _RUBY_RANK], input="\n".join(versions), capture_output=True,
                         text=True, check=True).stdout
    return _ranks(out)


def semver_ranks(versions: list[str]) -> dict[str, int]:
    """node-semver in loose mode (leading ``v`` and leading zeros allowed, as osv.dev reads SEMVER ranges)."""
    module = node_semver_dir()
    env = {**os.environ, "NODE_PATH": str(Path(module).parent)}
    out = subprocess.run([require_binary("node"), "-e", _NODE_RANK, module], input="\n".join(versions),
                         capture_output=True, text=True, check=True, env=env).stdout
    return _ranks(out)


def rpm_ranks(versions: list[str]) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "versions"
        data.write_text("".join(v + "\n" for v in versions))
        lua = ('%{lua: local t = {} for line in io.lines("' + str(data) + '") do t[#t + 1] = line end '
               'table.sort(t, function(a, b) return rpm.vercmp(a, b) < 0 end) '
               'local rank = 0 for i, v in ipairs(t) do '
               'if i > 1 and rpm.vercmp(t[i - 1], v) ~= 0 then rank = rank + 1 end '
               'print(" " .. rank .. "\\t" .. v .. "\\n") end}')
        out = subprocess.run([require_binary("rpm"), "--eval", lua], capture_output=True, text=True,
                             check=True).stdout
    return _ranks("\n".join(line.strip(" ") for line in out.splitlines()))

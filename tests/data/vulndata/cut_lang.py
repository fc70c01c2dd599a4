"""Cut the language-ecosystem and AlmaLinux OSV files down to a few real packages (see PROVENANCE-lang.md).

Usage: python cut_lang.py SOURCE_DIR   (the directory of the full ``*.osv.jsonl.gz`` snapshots)

A record is kept when one of its affected entries names a selected package; only
those entries are kept (the other packages of a multi-package record are
dropped).  Records are otherwise unchanged.  Output: ``lang-<name>.osv.jsonl.gz``
beside this script, written with a fixed gzip mtime so reruns are byte-identical.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

SELECTION: dict[str, tuple[str, list[str]]] = {
    "npm": ("npm.osv.jsonl.gz", ["lodash", "minimist", "axios", "jsonwebtoken", "@babel/traverse", "semver",
                                 "express"]),
    "npm-malicious": ("npm-malicious.osv.jsonl.gz", ["cxp-jquery"]),
    "go": ("go.osv.jsonl.gz", ["stdlib", "golang.org/x/net", "github.com/docker/docker", "go.etcd.io/etcd",
                               "github.com/gin-gonic/gin"]),
    "maven": ("maven.osv.jsonl.gz", ["org.apache.logging.log4j:log4j-core", "org.yaml:snakeyaml",
                                     "org.springframework:spring-web", "com.google.guava:guava"]),
    "rubygems": ("rubygems.osv.jsonl.gz", ["rack", "nokogiri", "rexml"]),
    "rubygems-malicious": ("rubygems-malicious.osv.jsonl.gz", ["tzinfo-i18n"]),
    "crates-io": ("crates-io.osv.jsonl.gz", ["tokio", "openssl", "time", "regex", "smallvec"]),
    "crates-io-malicious": ("crates-io-malicious.osv.jsonl.gz", ["rustdecimal"]),
    "nuget": ("nuget.osv.jsonl.gz", ["Newtonsoft.Json", "System.Text.Encodings.Web", "Microsoft.Data.SqlClient",
                                     "System.Net.Http"]),
    "almalinux": ("almalinux.osv.jsonl.gz", ["openssl", "openssl-libs", "curl", "libcurl", "glibc",
                                             "python3-requests"]),
}


def main(source: Path) -> None:
    here = Path(__file__).resolve().parent
    for out_name, (src_name, names) in SELECTION.items():
        wanted = set(names)
        lines = []
        with gzip.open(source / src_name, "rt", encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                kept = [a for a in rec.get("affected", []) if a["package"]["name"] in wanted]
                if kept:
                    rec["affected"] = kept
                    lines.append(json.dumps(rec, separators=(",", ":"), sort_keys=True) + "\n")
        with open(here / f"lang-{out_name}.osv.jsonl.gz", "wb") as raw, \
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
            gz.write("".join(lines).encode())
        print(f"lang-{out_name}: {len(lines)} records")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

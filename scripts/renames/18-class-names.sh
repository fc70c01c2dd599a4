#!/bin/sh
# issue 18 item 8: one name, one meaning.  demo's BuiltImage (a build's record) is DemoBuild (builder.output's
# BuiltImage stays), demo's Engine is ContainerEngine (oci.daemon's Engine stays), sign.storage's Subject (the
# manifest being signed) is SignedSubject (sbom.model's Subject stays), sign.dsse's Statement is InTotoStatement.
set -eu
cd "$(git rev-parse --show-toplevel)"
files() { git grep -lz -P "$1" -- "$2" 2>/dev/null || true; }
files '\bBuiltImage\b' 'src/giropops/demo/*.py' | xargs -0 -r perl -pi -e 's/\bBuiltImage\b/DemoBuild/g'
files '\bEngine\b' 'src/giropops/demo/*.py' | xargs -0 -r perl -pi -e 's/\bEngine\b(?!\s+API)/ContainerEngine/g'
for f in src/giropops/sign/storage.py src/giropops/sign/image.py; do
  perl -pi -e 's/(?<![\w.])Subject\b(?!Mismatch)/SignedSubject/g' "$f"
done
files '(?<![/\w])Statement\b(?!/)' '*.py' | xargs -0 -r perl -pi -e 's/(?<![\/\w"])Statement\b(?![\/"])/InTotoStatement/g'

#!/bin/sh
# issue 18 item 8: the package giropops.builder (a name build-output tooling skips) becomes giropops.builder,
# tests/builder becomes tests/builder.  Mechanical: re-run after a merge that adds uses of the old name.
set -eu
cd "$(git rev-parse --show-toplevel)"
[ -d src/giropops/builder ] && git mv src/giropops/builder src/giropops/builder
[ -d tests/builder ] && git mv tests/builder tests/builder
git grep -lz -E 'giropops\.build\b|giropops/builder\b|tests\.build\b|tests/builder\b' -- '*.py' '*.md' '*.toml' '*.yaml' '*.sh' \
  | xargs -0 -r sed -i -E 's/giropops\.build\b/giropops.builder/g; s#giropops/builder\b#giropops/builder#g; s/tests\.build\b/tests.builder/g; s#tests/builder\b#tests/builder#g'

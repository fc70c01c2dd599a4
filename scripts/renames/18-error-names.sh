#!/bin/sh
# issue 18 item 8: no `Name_`-style classes.  ReferenceError_ -> ImageReferenceError, KeyError_ -> SigningKeyError,
# ImportError_ -> AdvisoryImportError (each named for what it is about; none shadows a builtin).
set -eu
cd "$(git rev-parse --show-toplevel)"
git grep -lz -P '\b(ReferenceError|KeyError|ImportError)_\b' -- '*.py' '*.md' | xargs -0 -r perl -pi -e \
  's/\bReferenceError_\b/ImageReferenceError/g; s/\bKeyError_\b/SigningKeyError/g; s/\bImportError_\b/AdvisoryImportError/g;
   s/  # trailing underscore: do not shadow the builtin$//'

#!/bin/sh
# Replace the vendored Mermaid bundle with a release from the npm registry.
#
#   docs/assets/javascripts/vendor/update-mermaid.sh [version-or-range]    (default: 11)
#
# Keep the major version that Material for MkDocs was written against (its bundle names
# mermaid@11); then build the site and run tests/test_site.py, which renders a diagram.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tarball=$(cd "$work" && npm pack --silent "mermaid@${1:-11}")
tar -xzf "$work/$tarball" -C "$work"
version=$(node -p "require(process.argv[1]).version" "$work/package/package.json")

cp "$work/package/dist/mermaid.min.js" "$here/mermaid.min.js"
cp "$work/package/LICENSE" "$here/mermaid.LICENSE"
{
  echo "mermaid $version"
  echo "source https://registry.npmjs.org/mermaid/-/$tarball (dist/mermaid.min.js, LICENSE)"
  echo "sha256 $(sha256sum "$here/mermaid.min.js" | cut -d' ' -f1)  mermaid.min.js"
} > "$here/mermaid.VERSION"
cat "$here/mermaid.VERSION"

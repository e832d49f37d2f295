#!/usr/bin/env bash
# Installs the pinned Go tools into ${RECS_CACHE_DIR:-$HOME/.cache/recs}/bin:
#   kustomize  renders k8s/ (tests/deploy)
#   vegeta     open-loop HTTP load (loadtests)
#
# Idempotent: a tool is rebuilt only when the binary there was not built from the pinned
# module version (read from the binary itself with `go version -m`, so a binary installed by
# hand or left by an older pin is replaced). Prints what it did. Needs Go on PATH; builds with
# GOTOOLCHAIN=local, so a pin that needs a newer Go fails here instead of fetching a toolchain.
#
# scripts/tools.py finds the tools there and reads the *_VERSION pins from this file (for
# tests/deploy and the bench report): change a pin here and only here.
set -euo pipefail

# v5.8.x needs Go 1.27; this machine has Go 1.26.
KUSTOMIZE_MODULE=sigs.k8s.io/kustomize/kustomize/v5
KUSTOMIZE_VERSION=v5.7.1
# The latest v12 (seen building with Go 1.26.8).
VEGETA_MODULE=github.com/tsenart/vegeta/v12
VEGETA_VERSION=v12.13.0

BIN_DIR="${RECS_CACHE_DIR:-$HOME/.cache/recs}/bin"
export GOTOOLCHAIN=local

die() {
    echo "tools.sh: $*" >&2
    exit 1
}

# The version of `module` that the Go binary `bin` was built from; nothing if none (also when
# `bin` is no Go binary at all).
built_from() {
    local bin=$1 module=$2
    [[ -x $bin ]] || return 0
    { go version -m "$bin" 2>/dev/null || true; } |
        awk -v m="$module" '$1 == "mod" && $2 == m { print $3 }'
}

install_tool() {
    local name=$1 module=$2 version=$3
    local bin="$BIN_DIR/$name" found started staging
    found=$(built_from "$bin" "$module")
    if [[ $found == "$version" ]]; then
        echo "tools.sh: $name $version already in $bin"
        return
    fi
    echo "tools.sh: $name: installing $module@$version (found: ${found:-none})"
    started=$SECONDS
    # Build next to the target, check, then rename over it: never a half-written binary, and
    # whatever was there (another version, a non-Go file) is replaced.
    staging=$(mktemp -d "$BIN_DIR/.install-$name.XXXXXX")
    trap 'rm -rf "$staging"' EXIT
    GOBIN="$staging" go install "$module@$version"
    found=$(built_from "$staging/$name" "$module")
    [[ $found == "$version" ]] || die "$name: the build reports ${found:-no version}, not $version"
    mv -f "$staging/$name" "$bin"
    rm -rf "$staging"
    trap - EXIT
    echo "tools.sh: $name $version installed in $bin ($((SECONDS - started)) s)"
}

command -v go >/dev/null || die "Go is not on PATH (needed to build kustomize and vegeta)"
mkdir -p "$BIN_DIR"

# Serialize concurrent runs (two `make test` at once) so each tool is built once.
if command -v flock >/dev/null; then
    exec 9>"$BIN_DIR/.tools.lock"
    flock 9
fi

echo "tools.sh: $(go version), GOTOOLCHAIN=$GOTOOLCHAIN, into $BIN_DIR"
install_tool kustomize "$KUSTOMIZE_MODULE" "$KUSTOMIZE_VERSION"
install_tool vegeta "$VEGETA_MODULE" "$VEGETA_VERSION"

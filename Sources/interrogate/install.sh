#!/usr/bin/env bash
# Builds the package in release mode and installs the interrogate command with
# its data under a prefix (default /usr/local), so it runs from anywhere, with
# the checkout gone:
#   PREFIX/bin/interrogate
#   PREFIX/share/clip-interrogator-swift/labels/  the reference's label lists (byte-identical) and their licence
#   PREFIX/share/clip-interrogator-swift/demo/    the demo model pair (clip/, blip/, labels/) and its model card
#   PREFIX/share/man/man1/interrogate.1           the manual page (swift-argument-parser's generate-manual)
#   PREFIX/share/bash-completion/completions/interrogate
#   PREFIX/share/zsh/site-functions/_interrogate
#   PREFIX/share/fish/vendor_completions.d/interrogate.fish
# Usage: bash Sources/interrogate/install.sh [--prefix DIR] [--no-man]
set -euo pipefail
prefix=/usr/local
manual=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --no-man) manual=0; shift ;;
        -h|--help) sed -n '2,13p' "$0" | cut -c3-; exit 0 ;;
        *) echo "install.sh: unknown option $1 (try --help)" >&2; exit 64 ;;
    esac
done
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
cd "$(dirname "$0")/../.."

swift build -c release
bin="$(swift build -c release --show-bin-path)"
share="$prefix/share/clip-interrogator-swift"

install -d "$prefix/bin" "$share"
install -m 755 "$bin/interrogate" "$prefix/bin/interrogate"
rm -rf "$share/labels" "$share/demo"
cp -R "$bin/swift-clip-interrogator_ClipInterrogator.resources/data" "$share/labels"
mkdir -p "$share/demo"
cp -R Weights/demo/clip Weights/demo/blip Weights/demo/labels Weights/demo/README.md "$share/demo/"

install -d "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions" \
    "$prefix/share/fish/vendor_completions.d"
"$prefix/bin/interrogate" --generate-completion-script bash > "$prefix/share/bash-completion/completions/interrogate"
"$prefix/bin/interrogate" --generate-completion-script zsh > "$prefix/share/zsh/site-functions/_interrogate"
"$prefix/bin/interrogate" --generate-completion-script fish > "$prefix/share/fish/vendor_completions.d/interrogate.fish"

if [ "$manual" = 1 ]; then
    swift package plugin generate-manual
    install -d "$prefix/share/man/man1"
    install -m 644 .build/plugins/GenerateManual/outputs/interrogate/interrogate.1 "$prefix/share/man/man1/interrogate.1"
fi
echo "installed $prefix/bin/interrogate (data in $share)"

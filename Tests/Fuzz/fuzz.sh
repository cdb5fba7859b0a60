#!/usr/bin/env bash
# Builds the libFuzzer harness (Tests/Fuzz/Sources) with AddressSanitizer and runs
# each target for a bounded time, from the seed corpora (Tests/Fuzz/seeds plus the
# committed fixtures named below) and a dictionary per target (Tests/Fuzz/dictionaries).
#
# usage: bash Tests/Fuzz/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]
#   default 60 s for each of: png jpeg safetensors config tokenizer labelcache resume
#   FUZZ_JOBS=N      run N targets at once (default 1)
#   FUZZ_ARGS="..."  extra libFuzzer options for every target
#
# The growing corpora live in .build-fuzz/corpus/<target> (kept between runs, so
# later runs start where earlier ones stopped); crashes, hangs and OOM inputs go to
# .build-fuzz/findings/<target>-*, logs to .build-fuzz/logs/<target>.log. The
# script exits 1 if any target reports a finding. Docs/reliability.md has the
# numbers of the runs so far and how to reproduce a finding.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(png jpeg safetensors config tokenizer labelcache resume)

CLIP_INTERROGATOR_FUZZ=1 swift build -c release --scratch-path .build-fuzz --product interrogate-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xcc -fsanitize=fuzzer-no-link,address \
    2>&1 | grep -v "ld.gold: warning: Cannot export local symbol" || true
binary=.build-fuzz/release/interrogate-fuzz
[ -x "$binary" ] || { echo "fuzz build failed" >&2; exit 1; }

# Seeds from the committed fixtures, copied so the corpus directories stay ours.
seeds() {
    case "$1" in
        png) ls Tests/Fixtures/imaging/inputs/*.png Tests/Fixtures/imaging/corrupt/*.png Tests/Fixtures/interrogator/images/*.png Tests/Fixtures/blip/*.png ;;
        jpeg) ls Tests/Fixtures/imaging/inputs/*.jpg Tests/Fixtures/imaging/corrupt/*.jpg Tests/Fixtures/interrogator/images/*.jpg ;;
        safetensors) ls Tests/Fixtures/core/python_written.safetensors Tests/Fixtures/interrogator/cache/*.safetensors ;;
        config) ls Tests/Fixtures/clip/*/config.json Tests/Fixtures/blip/*/config.json Tests/Fixtures/blip/*/preprocessor_config.json \
                   Tests/Fixtures/interrogator/clip/*.json Tests/Fixtures/imaging/configs/*.json Weights/demo/*/*config.json ;;
        labelcache) ls Tests/Fixtures/interrogator/cache/*.safetensors ;;
        *) ;;
    esac 2>/dev/null
}

run_target() {
    local target=$1 seed_dir=.build-fuzz/seeds/$1 corpus=.build-fuzz/corpus/$1 log=.build-fuzz/logs/$1.log
    mkdir -p "$seed_dir" "$corpus" .build-fuzz/findings .build-fuzz/logs
    for file in $(seeds "$target"); do cp -f "$file" "$seed_dir/$(echo "$file" | tr / _)"; done
    [ -d "Tests/Fuzz/seeds/$target" ] && cp -f Tests/Fuzz/seeds/"$target"/* "$seed_dir/"
    local max_len=16384
    case "$target" in png|jpeg) max_len=65536 ;; esac
    # shellcheck disable=SC2086
    FUZZ_TARGET=$target "$binary" "$corpus" "$seed_dir" -max_total_time="$seconds" -max_len=$max_len \
        -dict="Tests/Fuzz/dictionaries/$target.dict" -timeout=10 -rss_limit_mb=3072 -malloc_limit_mb=3072 \
        -artifact_prefix=".build-fuzz/findings/$target-" -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1
    local status=$?
    local stats
    stats=$(grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$log" | tr '\n' ' ')
    local coverage
    coverage=$(grep -E "^#[0-9]+.*(cov|DONE)" "$log" | tail -1 | grep -oE "cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*" || true)
    echo "$target: exit $status; $coverage; $stats"
    return $status
}

jobs=${FUZZ_JOBS:-1}
failed=0
pids=()
for target in "${targets[@]}"; do
    if [ "$jobs" -gt 1 ]; then
        run_target "$target" & pids+=($!)
        if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}" || failed=1; pids=("${pids[@]:1}"); fi
    else
        run_target "$target" || failed=1
    fi
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
if [ $failed -ne 0 ]; then
    echo "fuzzing found a problem: see .build-fuzz/findings and .build-fuzz/logs" >&2
    exit 1
fi

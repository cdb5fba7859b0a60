#!/usr/bin/env python3
"""run_side_by_side.py: the Swift benchmark (interrogate-bench) and its PyTorch counterpart
(Benchmarks/pytorch_bench.py) on the same stages, shapes and thread count, in one table.

    python3 Benchmarks/run_side_by_side.py [--stage 1,2] [--threads N] [--runs N] [--rounds K]
        [--markdown FILE] [--json FILE] [--extra-openblas-core NAME] [--perf]
        [--python .venv-ref/bin/python] [--no-build] [--pytorch-arg=--text-labels=2048 ...]

Steps: `swift build -c release --product interrogate-bench` (skipped with --no-build); then
for each requested stage, one process per side: `.build/release/interrogate-bench --stage N
--threads T --runs R --json ...` and `<python> Benchmarks/pytorch_bench.py --stage N --threads T
--runs R --json ...` (one process per stage, so peak RSS is the stage's own). With
--extra-openblas-core NAME the Swift side runs a second time per stage with
OPENBLAS_CORETYPE=NAME in its environment, reported in extra columns. (The library itself
switches OpenBLAS 0.3.21 off its generic Prescott kernel on CPUs it does not know, before the
first product; the core in force is in the BLAS line and in each measurement's `blasCore`.)

--perf profiles the Swift side of each stage (not 6) in one more run under `perf record -e
cpu-clock`, sampling only the timed runs (interrogate-bench enables perf through two FIFOs), and
reports the share of time in GEMM (OpenBLAS's kernels and packing plus the Swift skinny-product
kernels) and the top symbols. Stage 2 rows carry the tower's efficiency: its GFLOP/s (FLOPs
actually executed) over the sgemm probe's at the tower's own linear-layer shapes, same process.

Stage 6 (only when asked for: --stage 6) is load time and peak memory of a whole interrogation
in a fresh process: `interrogate-bench --full-interrogation DIR` against `pytorch_bench.py
--stage 6 --checkpoints DIR` (clip-interrogator 0.6.0 itself, models and label caches from the
same files); DIR (--checkpoints) is written first with `interrogate-bench --write-checkpoints
DIR` (about 3.7 GB) when missing. Peak RSS is per process, so per stage. Stage 6 also times
whole Swift interrogations in --stage6-modes (default best,turbo) with a 16-step chain. Stage 7
(only when asked for) is dataset throughput on the same files: `interrogate-bench --throughput
DIR --batch-size B` for each of --throughput-batches (fresh processes) against the reference's
per-image loop (`pytorch_bench.py --stage 7`), images per hour per mode.

Measurements are matched by (stage, name). Where the two sides measure different methods
of the same work, the pairs are listed in MAPPINGS below and compared per item (labels or
candidates): ratio = Swift seconds per item / PyTorch seconds per item. Otherwise
ratio = Swift median / PyTorch median (> 1: Swift slower).

--rounds K repeats stages 1-5 K times, each round running every stage on both sides again
(Swift, PyTorch, Swift, PyTorch, ...), so that a slow minute on a shared machine lands on
both sides in turn instead of on one. Each row then reports the median round (by ratio):
its times, and the median of the K per-round ratios, with all K ratios listed beside it.
(For an even K, the upper of the two middle rounds: the less favourable to Swift.) Stages 6
and 7 run once, in the first round.

Output: the table on stdout; --markdown FILE (Markdown: machine, threads, commands,
OpenBLAS environment and selected core, the table, notes) and --json FILE (default: the
Markdown path with .json; everything, raw measurements of both sides included). Raw per-run
JSON files go to --work-dir (default: a fresh temporary folder).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ beside the fixture scripts
sys.path.insert(0, os.path.join(ROOT, "Weights", "fixtures"))
from fixture_utils import cpu_model  # noqa: E402  (standard library only: this driver never imports torch)
SWIFT_BIN = os.path.join(ROOT, ".build", "release", "interrogate-bench")
PYTORCH_BENCH = os.path.join(ROOT, "Benchmarks", "pytorch_bench.py")
DEFAULT_PYTHON = os.path.join(ROOT, ".venv-ref", "bin", "python")
ALL_STAGES = ["1", "2", "3", "4", "5"]           # the default; stages 6 and 7 only when asked for
KNOWN_STAGES = ALL_STAGES + ["6", "7"]
DEFAULT_CHECKPOINTS = os.path.join(tempfile.gettempdir(), "interrogate-bench-checkpoints")
# pytorch_bench.py's stage 6 names (the Swift side prints a report; converted to these)
STAGE6 = "6 full interrogation"
STAGE6_LOAD = "load ViT-L/14 + BLIP-large + label caches from files"
STAGE6_FAST = "fast-mode interrogation, one 640x480 image"

# Explicit pairs where the two sides' names differ: (stage, Swift name regex, PyTorch name regex, note).
# Compared per item (both report items/s). A PyTorch row may pair with several Swift rows.
MAPPINGS = [
    ("3 labels", r"^ViT-L/14 text, true length, \d+ labels", r"^ViT-L/14 text, padded to 77, \d+ labels$",
     "Swift's method (true length) vs the reference's (padded to 77), per label"),
    ("3 labels", r"^ViT-L/14 text, padded to 77, \d+ labels$", r"^ViT-L/14 text, padded to 77, \d+ labels$",
     "both padded to 77, different label counts, per label"),
    ("4 chain step", r"^\d+ candidates, token tree", r"^\d+ candidates, rank_top",
     "Swift token tree over the cached prompt vs the reference's rank_top (tokenise + encode at 77), per candidate"),
    ("4 chain step", r"^\d+ candidates, full re-encoding", r"^\d+ candidates, rank_top",
     "Swift full re-encoding at true length vs the reference's rank_top, per candidate"),
] + [("7 throughput", rf"^{mode} mode, \d+ images, batch \d+$", rf"^{mode} mode, \d+ images, per-image loop$",
      f"{mode} mode: Swift batched captions and embeddings vs the reference's per-image loop, per image")
     for mode in ("caption", "fast", "classic")]


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return [f for f in flags if f.startswith(("avx", "fma", "amx"))]
    except OSError:
        pass
    return []


def run_logged(cmd, env=None, log=None):
    """Runs cmd, echoing and returning its output (stdout and stderr together)."""
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    rc = proc.wait()
    output = "".join(lines)
    if log is not None:
        log.append({"command": cmd, "returncode": rc})
    return rc, output


def env_line(env_overrides):
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in env_overrides.items())


def read_json(path):
    with open(path) as f:
        return json.load(f)


def swift_throughput_measurements(rows):
    """Throughput.Row list (one batch size) -> stage 7 measurements."""
    return [{"stage": "7 throughput", "name": f"{r['mode']} mode, {r['images']} images, batch {r['batchSize']}",
             "runs": 1, "medianSeconds": r["seconds"], "minSeconds": r["seconds"], "maxSeconds": r["seconds"],
             "itemsPerSecond": r["images"] / r["seconds"], "peakResidentMB": r["peakResidentMB"]} for r in rows]


def swift_stage6_measurements(report):
    """FullInterrogation.Report -> measurements named as pytorch_bench.py's stage 6."""
    def single(name, seconds, items=None):
        return {"stage": STAGE6, "name": name, "runs": 1, "medianSeconds": seconds, "minSeconds": seconds,
                "maxSeconds": seconds, "itemsPerSecond": None if items is None else items / seconds,
                "peakResidentMB": report["peakResidentMB"]}
    rows = [single(STAGE6_LOAD, report["loadSeconds"]), single(STAGE6_FAST, report["interrogateSeconds"], 1.0)]
    for mode in report.get("modes", []):
        # Swift only: the reference's best mode re-encodes ~2,000 texts at 77 tokens per step.
        steps = mode["chainSteps"]
        rows.append(single(f"{mode['mode']}-mode interrogation, one 640x480 image, 16-step chain "
                           f"({steps} steps run; caption {mode['captionSeconds']:.1f} s, "
                           f"{mode['chainTexts']} texts scored, {mode['chainTokensEncoded']} tokens encoded)",
                           mode["sixteenStepSeconds"], 1.0))
    return rows


def pair(stage, swift_rows, pytorch_rows):
    """Rows (swift, pytorch, basis, note) for one stage; either side may be None."""
    rows = []
    pt_by_name = {m["name"]: m for m in pytorch_rows}
    used_pt = set()
    for s in swift_rows:
        matched = False
        if s["name"] in pt_by_name:
            rows.append((s, pt_by_name[s["name"]], "time", ""))
            used_pt.add(s["name"])
            matched = True
        for mstage, sw_re, pt_re, note in MAPPINGS:
            if mstage != stage or not re.search(sw_re, s["name"]):
                continue
            for p in pytorch_rows:
                if p["name"] == s["name"] or not re.search(pt_re, p["name"]):
                    continue
                rows.append((s, p, "per item", note))
                used_pt.add(p["name"])
                matched = True
        if not matched:
            rows.append((s, None, "", "no PyTorch counterpart"))
    for p in pytorch_rows:
        if p["name"] not in used_pt:
            rows.append((None, p, "", "no Swift counterpart"))
    return rows


def ratio(s, p, basis):
    if s is None or p is None:
        return None
    if basis == "per item":
        si, pi = s.get("itemsPerSecond"), p.get("itemsPerSecond")
        return None if not si or not pi else pi / si
    return s["medianSeconds"] / p["medianSeconds"] if p["medianSeconds"] > 0 else None


def median_round(group):
    """One row from the same comparison in several rounds: the round whose ratio is the median (for
    an even count the upper of the two middle ones, the less favourable to Swift), with every
    round's ratio in `roundRatios`."""
    with_ratio = sorted((r for r in group if r["ratio"] is not None), key=lambda r: r["ratio"])
    chosen = with_ratio[len(with_ratio) // 2] if with_ratio else group[0]
    return dict(chosen, rounds=len(group), roundRatios=[r["ratio"] for r in group])


def fmt_rounds(r):
    return ", ".join(fmt_ratio(x) or "–" for x in r["roundRatios"])


def fmt_ms(m):
    return "" if m is None else f"{m['medianSeconds'] * 1000:.1f} ms"


def fmt_ratio(r):
    return "" if r is None else f"{r:.2f}×"


def fmt_mb(m):
    return "" if m is None else f"{m['peakResidentMB']:.0f} MB"


def fmt_efficiency(m):
    """Stage 2: the tower's GFLOP/s over the sgemm probe's at its own linear-layer shapes (by wall-clock
    time; by process CPU time in parentheses)."""
    if m is None or m.get("efficiency") is None:
        return ""
    cpu = m.get("cpuEfficiency")
    return f"{m['efficiency'] * 100:.0f}%" + ("" if cpu is None else f" (CPU {cpu * 100:.0f}%)")


def fmt_load(load):
    return "n/a" if load is None else "/".join(f"{x:.2f}" for x in load)


def fmt_gflops(m):
    return "" if m is None or m.get("gflops") is None else f"{m['gflops']:.1f}"


# Symbol classes of a profile: where the Swift side's time goes.
PERF_CLASSES = [
    ("BLAS (OpenBLAS GEMM/GEMV kernels and packing)", lambda dso, sym: "openblas" in dso and "thread_server" not in sym
     and "yield" not in sym),
    ("Swift skinny-product kernels", lambda dso, sym: "skinny" in sym.lower()),
    ("OpenBLAS thread pool (waiting)", lambda dso, sym: "openblas" in dso),
    ("operating system (page faults, scheduling)", lambda dso, sym: "kernel" in dso),
    ("everything else (attention, softmax, LayerNorm, activations, copies)", lambda dso, sym: True),
]


def perf_profile(cmd, env, work, stage, commands):
    """Runs cmd under `perf record -e cpu-clock`, sampling only inside the benchmark's timed runs
    (interrogate-bench enables and disables perf through two FIFOs), and classifies the samples."""
    data = os.path.join(work, f"perf-stage{stage}.data")
    ctl, ack = os.path.join(work, f"perf-ctl-{stage}"), os.path.join(work, f"perf-ack-{stage}")
    for fifo in (ctl, ack):
        if os.path.exists(fifo):
            os.unlink(fifo)
        os.mkfifo(fifo)
    env = dict(env, INTERROGATE_BENCH_PERF_CTL=ctl, INTERROGATE_BENCH_PERF_ACK=ack)
    perf_cmd = ["perf", "record", "-e", "cpu-clock", "-D", "-1", "--control", f"fifo:{ctl},{ack}", "-o", data, "--"] + cmd
    rc, _ = run_logged(perf_cmd, env=env, log=commands)
    commands[-1]["env"] = {"INTERROGATE_BENCH_PERF_CTL": ctl, "INTERROGATE_BENCH_PERF_ACK": ack}
    if rc != 0:
        return None
    report_cmd = ["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol", "--stdio"]
    proc = subprocess.run(report_cmd, cwd=ROOT, capture_output=True, text=True)
    commands.append({"command": report_cmd, "returncode": proc.returncode, "env": {}})
    rows = []
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*\S)", line)
        if m:
            # perf pads the symbol column (and may add IPC columns after two or more spaces)
            rows.append((float(m.group(1)), m.group(2), re.split(r"\s{2,}", m.group(3))[0]))
    if not rows:
        return None
    classes = {name: 0.0 for name, _ in PERF_CLASSES}
    for share, dso, sym in rows:
        for name, test in PERF_CLASSES:
            if test(dso.lower(), sym):
                classes[name] += share
                break
    gemm = classes[PERF_CLASSES[0][0]] + classes[PERF_CLASSES[1][0]]
    return {"gemm_share_percent": gemm, "classes_percent": classes,
            "top_symbols": [{"percent": a, "dso": b, "symbol": c[:120]} for a, b, c in rows[:15]],
            "data": data, "command": perf_cmd}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", action="append",
                    help="stage(s) to run: 1-6, repeatable or comma-separated (default: 1-5; 6 only when named)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both sides")
    ap.add_argument("--runs", type=int, default=10, help="passed to both sides (stages 2-5 use max(2, runs // 3))")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run stages 1-5 on both sides this many times, alternating, and report the median "
                         "round (default 1)")
    ap.add_argument("--markdown", help="write the Markdown report here")
    ap.add_argument("--json", help="write the combined JSON here (default: the --markdown path with .json)")
    ap.add_argument("--extra-openblas-core", metavar="NAME",
                    help="run the Swift side again with OPENBLAS_CORETYPE=NAME (e.g. SkylakeX, Haswell)")
    ap.add_argument("--python", default=DEFAULT_PYTHON, help="the reference venv's python")
    ap.add_argument("--pytorch-arg", action="append", default=[],
                    help="extra argument for pytorch_bench.py (e.g. --pytorch-arg=--text-labels=2048)")
    ap.add_argument("--no-build", action="store_true", help="use the existing .build/release/interrogate-bench")
    ap.add_argument("--perf", action="store_true",
                    help="after the timed runs, run each Swift stage (not 6) once more under `perf record -e cpu-clock`, "
                         "sampling only the timed runs, and report where the time goes (GEMM share and top symbols)")
    ap.add_argument("--checkpoints", default=DEFAULT_CHECKPOINTS, metavar="DIR",
                    help="stage 6: checkpoint folder (written with interrogate-bench --write-checkpoints DIR, "
                         "about 3.7 GB, when DIR/clip/model.safetensors is missing; default %(default)s)")
    ap.add_argument("--stage6-modes", default="best,turbo", metavar="MODES",
                    help="stage 6: whole Swift interrogations in these modes after the fast one, with a 16-step "
                         "chain (default %(default)s; empty for none)")
    ap.add_argument("--throughput-batches", default="1,8", metavar="SIZES",
                    help="stage 7: the Swift batch sizes, one process each (default %(default)s)")
    ap.add_argument("--throughput-images", type=int, default=16, metavar="N",
                    help="stage 7: images per mode on each side (default %(default)s)")
    ap.add_argument("--work-dir", help="folder for the raw per-run JSON files (default: a new temporary folder)")
    args = ap.parse_args()
    for option in ("threads", "runs", "rounds"):
        if getattr(args, option) < 1:
            ap.error(f"--{option} needs a whole number >= 1, not {getattr(args, option)}")

    stages = []
    for item in args.stage or ALL_STAGES:
        for s in item.split(","):
            s = s.strip()
            if s not in KNOWN_STAGES:
                ap.error(f"unknown stage {s!r} (1-6)")
            if s not in stages:
                stages.append(s)
    threads = max(1, args.threads)
    work = args.work_dir or tempfile.mkdtemp(prefix="side-by-side-")
    os.makedirs(work, exist_ok=True)
    json_path = args.json or (os.path.splitext(args.markdown)[0] + ".json" if args.markdown else None)
    commands = []

    build_cmd = ["swift", "build", "-c", "release", "--product", "interrogate-bench"]
    if args.no_build:
        if not os.path.exists(SWIFT_BIN):
            sys.exit(f"{SWIFT_BIN} does not exist: build it or drop --no-build")
        build = {"skipped": True, "binary_mtime": datetime.datetime.fromtimestamp(
            os.path.getmtime(SWIFT_BIN)).isoformat(timespec="seconds")}
    else:
        rc, _ = run_logged(build_cmd, log=commands)
        if rc != 0:
            sys.exit(f"swift build failed (exit {rc}); not running a possibly stale binary (see --no-build)")
        build = {"skipped": False, "command": build_cmd}

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    base_env = os.environ.copy()
    openblas_env = {k: os.environ.get(k) for k in ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                                                    "OPENBLAS_VERBOSE", "OMP_NUM_THREADS", "MKL_NUM_THREADS"]}
    swift_runs = {"default": {"env": {}, "blas": None, "results": []}}
    if args.extra_openblas_core:
        swift_runs["extra"] = {"env": {"OPENBLAS_CORETYPE": args.extra_openblas_core}, "blas": None, "results": []}
    pytorch = {"results": [], "header": None, "meta": None}
    failures = []

    common = ["--threads", str(threads), "--runs", str(args.runs)]
    checkpoints = os.path.abspath(args.checkpoints)
    if ("6" in stages or "7" in stages) and not os.path.exists(os.path.join(checkpoints, "clip", "model.safetensors")):
        rc, _ = run_logged([SWIFT_BIN, "--write-checkpoints", checkpoints], log=commands)
        if rc != 0:
            failures.append(f"interrogate-bench --write-checkpoints: exit {rc}")
            stages = [s for s in stages if s not in ("6", "7")]
    rounds = args.rounds
    for rnd, stage in [(r, st) for r in range(rounds) for st in stages if r == 0 or st not in ("6", "7")]:
        tag = "" if rnd == 0 else f"-round{rnd + 1}"
        for key, side in swift_runs.items():
            if stage == "7":
                # one fresh process per batch size, so each peak RSS is that batch size's
                for batch in args.throughput_batches.split(","):
                    cmd = [SWIFT_BIN, "--threads", str(threads), "--throughput", checkpoints, "--batch-size", batch,
                           "--images", str(args.throughput_images)]
                    rc, output = run_logged(cmd, env=dict(base_env, **side["env"]), log=commands)
                    commands[-1]["env"] = side["env"]
                    if output.startswith("threads:") and side["blas"] is None:
                        side["blas"] = output.splitlines()[0]
                    try:
                        side["results"] += swift_throughput_measurements(json.loads(output[output.index("["):output.rindex("]") + 1]))
                    except ValueError as e:
                        failures.append(f"Swift ({key}) stage 7, batch {batch}: exit {rc} ({e})")
                continue
            out = os.path.join(work, f"swift-{key}-stage{stage}{tag}.json")
            if stage == "6":
                # a fresh process; the report is printed as JSON (FullInterrogation.Report)
                cmd = [SWIFT_BIN, "--threads", str(threads), "--full-interrogation", checkpoints] \
                    + (["--modes", args.stage6_modes] if args.stage6_modes else [])
            else:
                cmd = [SWIFT_BIN, "--stage", stage] + common + ["--json", out]
            env = dict(base_env, **side["env"])
            if side["env"]:
                print(f"(environment: {env_line(side['env'])})")
            rc, output = run_logged(cmd, env=env, log=commands)
            commands[-1]["env"] = side["env"]
            first = output.splitlines()[0] if output else ""
            if first.startswith("threads:") and side["blas"] is None:
                side["blas"] = first
            if stage == "6" and rc == 0:
                try:
                    report = json.loads(output[output.index("{"):output.rindex("}") + 1])
                    side["results"] += swift_stage6_measurements(report)
                    side["stage6_report"] = report
                except ValueError as e:
                    failures.append(f"Swift ({key}) stage 6: unreadable report ({e})")
                continue
            if rc != 0 or not os.path.exists(out):
                failures.append(f"Swift ({key}) stage {stage}: exit {rc}")
                continue
            side["results"] += [dict(m, round=rnd) for m in read_json(out)]
        out = os.path.join(work, f"pytorch-stage{stage}{tag}.json")
        meta = os.path.join(work, "pytorch-meta.json")
        cmd = [args.python, PYTORCH_BENCH, "--stage", stage] + common + ["--json", out, "--meta", meta] \
            + (["--checkpoints", checkpoints] if stage in ("6", "7") else []) \
            + (["--throughput-images", str(args.throughput_images)] if stage == "7" else []) + args.pytorch_arg
        rc, output = run_logged(cmd, log=commands)
        commands[-1]["env"] = {}
        if output and pytorch["header"] is None:
            pytorch["header"] = output.splitlines()[0]
        if os.path.exists(meta) and pytorch["meta"] is None:
            pytorch["meta"] = read_json(meta)
        if rc != 0 or not os.path.exists(out):
            failures.append(f"PyTorch stage {stage}: exit {rc}")
            continue
        pytorch["results"] += [dict(m, round=rnd) for m in read_json(out)]

    profiles = {}
    if args.perf:
        for stage in [st for st in stages if st != "6"]:
            cmd = [SWIFT_BIN, "--stage", stage] + common + ["--json", os.path.join(work, f"swift-perf-stage{stage}.json")]
            profile = perf_profile(cmd, dict(base_env), work, stage, commands)
            if profile is None:
                failures.append(f"perf profile of stage {stage} failed")
            else:
                profiles[stage] = profile

    # -- pairing ------------------------------------------------------------------------------
    extra_label = f"OPENBLAS_CORETYPE={args.extra_openblas_core}" if args.extra_openblas_core else None
    stage_names = []
    for m in swift_runs["default"]["results"] + pytorch["results"]:
        if m["stage"] not in stage_names:
            stage_names.append(m["stage"])
    stage_names.sort(key=lambda s: (int(s.split()[0]) if s.split()[0].isdigit() else 99, s))
    rows = []
    for stage in stage_names:
        # Rows of each round, grouped by what they compare, in the first round's order.
        groups = {}
        for rnd in range(rounds):
            sw = [m for m in swift_runs["default"]["results"] if m["stage"] == stage and m.get("round", 0) == rnd]
            pt = [m for m in pytorch["results"] if m["stage"] == stage and m.get("round", 0) == rnd]
            extra = {m["name"]: m for m in swift_runs.get("extra", {}).get("results", [])
                     if m["stage"] == stage and m.get("round", 0) == rnd}
            for s, p, basis, note in pair(stage, sw, pt):
                x = extra.get(s["name"]) if s is not None else None
                groups.setdefault((s and s["name"], p and p["name"]), []).append({
                    "stage": stage,
                    "name": s["name"] if s is not None else p["name"],
                    "pytorchName": None if p is None else p["name"],
                    "basis": basis, "note": note,
                    "swift": s, "pytorch": p, "ratio": ratio(s, p, basis),
                    "swiftExtra": x, "ratioExtra": ratio(x, p, basis) if x is not None else None,
                })
        for group in groups.values():
            rows.append(median_round(group))

    # -- table ---------------------------------------------------------------------------------
    header = ["stage", "name", "Swift median", "PyTorch median", "ratio (Swift/PyTorch)", "Swift GFLOP/s",
              "PyTorch GFLOP/s", "Swift efficiency", "Swift peak RSS", "PyTorch peak RSS"]
    if extra_label:
        header += [f"Swift {extra_label}", "ratio"]
    if rounds > 1:
        header += [f"ratio in each of {rounds} rounds"]
    header += ["note"]
    table = []
    for r in rows:
        name = r["name"] if r["pytorchName"] in (None, r["name"]) else f"{r['name']} ↔ {r['pytorchName']}"
        cells = [r["stage"], name, fmt_ms(r["swift"]), fmt_ms(r["pytorch"]),
                 fmt_ratio(r["ratio"]) + (" per item" if r["basis"] == "per item" and r["ratio"] else ""),
                 fmt_gflops(r["swift"]), fmt_gflops(r["pytorch"]), fmt_efficiency(r["swift"]),
                 fmt_mb(r["swift"]), fmt_mb(r["pytorch"])]
        if extra_label:
            cells += [fmt_ms(r["swiftExtra"]), fmt_ratio(r["ratioExtra"])]
        if rounds > 1:
            cells += [fmt_rounds(r)]
        cells += [r["note"]]
        table.append(cells)

    widths = [max(len(row[c]) for row in [header] + table) for c in range(len(header))]
    print()
    for i, row in enumerate([header] + table):
        print("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    for f in failures:
        print("FAILED: " + f)

    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    machine = {"cpu_model": cpu_model(), "logical_cpus": os.cpu_count(),
               "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
               "cpu_flags": cpu_flags(), "platform": platform.platform(), "hostname": platform.node(),
               "load_average_before": load_before, "load_average_after": load_after}
    selected_core = None
    line = swift_runs["default"]["blas"] or ""
    mcore = re.search(r"\bcore (\S+)\s*$", line)
    if mcore:
        selected_core = mcore.group(1)
    # The core in force as each measurement recorded it (interrogate-bench's JSON `blasCore`).
    cores_in_json = sorted({m["blasCore"] for m in swift_runs["default"]["results"] if m.get("blasCore")})
    if cores_in_json:
        selected_core = ", ".join(cores_in_json)
    extra_core = None
    if "extra" in swift_runs:
        mx = re.search(r"\bcore (\S+)\s*$", swift_runs["extra"]["blas"] or "")
        extra_core = mx.group(1) if mx else None
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine, "threads": threads, "runs": args.runs, "rounds": rounds, "stages": stages,
        "build": build, "commands": commands, "failures": failures,
        "openblas": {"environment": openblas_env, "swift_blas_line": swift_runs["default"]["blas"],
                     "selected_core": selected_core,
                     "extra": None if "extra" not in swift_runs else {
                         "environment": swift_runs["extra"]["env"], "swift_blas_line": swift_runs["extra"]["blas"],
                         "selected_core": extra_core}},
        "pytorch": {"header": pytorch["header"], "meta": pytorch["meta"], "extra_args": args.pytorch_arg},
        "swift_stage6_reports": {k: v["stage6_report"] for k, v in swift_runs.items() if "stage6_report" in v},
        "checkpoints": checkpoints if "6" in stages else None,
        "mappings": [{"stage": s, "swift": a, "pytorch": b, "note": n} for s, a, b, n in MAPPINGS],
        "rows": rows,
        "profiles": profiles,
        "raw": {"swift": swift_runs["default"]["results"], "swiftExtra": swift_runs.get("extra", {}).get("results"),
                "pytorch": pytorch["results"]},
        "work_dir": work,
    }
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=2, ensure_ascii=False)
            f.write("\n")
        print(f"wrote {json_path}")

    if args.markdown:
        def md_cmd(c):
            prefix = env_line(c.get("env") or {})
            return (prefix + " " if prefix else "") + " ".join(shlex.quote(os.path.relpath(x, ROOT)
                                                                           if os.path.isabs(x) and x.startswith(ROOT)
                                                                           else x) for x in c["command"])
        meta = pytorch["meta"] or {}
        lines = [
            "# interrogate-bench: Swift vs PyTorch", "",
            f"- Date: {report['date']}",
            f"- Machine: {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs "
            f"({machine['affinity_cpus']} usable), flags {' '.join(machine['cpu_flags']) or 'n/a'}; {machine['platform']}",
            f"- Load average (1/5/15 min) before: {fmt_load(load_before)}, after: {fmt_load(load_after)} "
            "(other work on the machine distorts multi-threaded timings)",
            f"- Threads: {threads} on both sides (Swift `--threads`, PyTorch `torch.set_num_threads`); "
            f"`--runs {args.runs}` (stage 1: {args.runs} timed runs, stages 2-5: {max(2, args.runs // 3)}; "
            "one warm-up each; median, min-max in the JSON)"
            + (f"; {rounds} rounds of stages 1-5, both sides in turn, each row from its median round "
               "by ratio (every round's ratio in the last column but one)" if rounds > 1 else ""),
            f"- Swift BLAS: `{swift_runs['default']['blas']}`",
            f"- OpenBLAS environment: " + ", ".join(f"`{k}={v}`" if v is not None else f"`{k}` unset"
                                                     for k, v in openblas_env.items() if k.startswith("OPENBLAS")),
            f"- OpenBLAS core in force (automatic choice, see the BLAS line): **{selected_core or 'unknown'}**",
        ]
        if "extra" in swift_runs:
            lines.append(f"- Extra Swift run with `{extra_label}`: `{swift_runs['extra']['blas']}` "
                         f"(core **{extra_core or 'unknown'}**)")
        lines += [
            f"- PyTorch: torch {meta.get('torch')}, transformers {meta.get('transformers')}, BLAS {meta.get('blas')}, "
            f"CPU capability {meta.get('cpu_capability')}, intra-op threads {meta.get('torch_num_threads')}; "
            f"`{pytorch['header']}`",
            f"- Build: " + ("skipped (`--no-build`, binary from " + build["binary_mtime"] + ")" if build["skipped"]
                           else "`" + " ".join(build_cmd) + "`"),
            "", "Ratio = Swift time / PyTorch time (> 1: Swift slower); rows marked *per item* compare "
            "seconds per label / candidate of different methods or counts.", "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" if i < 2 or i == len(header) - 1 else "---:" for i in range(len(header))) + "|",
        ]
        for cells in table:
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        if profiles:
            lines += ["", "Profile of the Swift side (`perf record -e cpu-clock`, timed runs only; "
                      "GEMM = BLAS + skinny kernels):", "",
                      "| stage | GEMM share | " + " | ".join(name for name, _ in PERF_CLASSES) + " |",
                      "|---|---:|" + "---:|" * len(PERF_CLASSES)]
            for stage, prof in profiles.items():
                lines.append(f"| {stage} | {prof['gemm_share_percent']:.1f}% | "
                             + " | ".join(f"{prof['classes_percent'][name]:.1f}%" for name, _ in PERF_CLASSES) + " |")
            for stage, prof in profiles.items():
                lines += ["", f"Stage {stage}, top symbols:", ""]
                lines += [f"- {t['percent']:.2f}% `{t['dso']}` `{t['symbol']}`" for t in prof["top_symbols"][:10]]
        if failures:
            lines += ["", "Failures:", ""] + [f"- {f}" for f in failures]
        lines += ["", "Commands (from the repository root):", "", "```"]
        lines += [md_cmd(c) + (f"   # exit {c['returncode']}" if c["returncode"] else "") for c in commands]
        lines += ["```", ""]
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines))
        print(f"wrote {args.markdown}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

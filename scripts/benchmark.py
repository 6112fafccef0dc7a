"""Benchmark suite behind ``make bench``: model, post-processing, scorer, memory, sequence length,
whole-split evaluation.

Runs the measurements of ``bench_model.py``, ``bench_postprocess.py``, ``bench_scorer.py`` and
``bench_evaluation.py`` (imported, not copied), checks them against the speed targets of
docs/decisions.md D71, prints one table with PASS / MISS per target and writes everything to a
JSON file together with the environment (torch, threads, CPU, load average).

    python scripts/benchmark.py                    # full run, several minutes on 2 cores
    python scripts/benchmark.py --quick            # smoke run (seconds): one model, short T,
                                                   # 2 short videos for the evaluation section
    python scripts/benchmark.py --out bench.json --encoders logo --heads clff trident

Timings are only meaningful on an otherwise idle machine: the load average is recorded at start
and end, and a load above 1.0 at start prints a warning (and sets ``load_warning`` in the JSON).
docs/benchmarks.md explains every number.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import datetime as dt
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# scripts/ is not a package: running this file puts it on sys.path, importing it (tests) may not.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_compile  # noqa: E402
import bench_evaluation  # noqa: E402
import bench_model  # noqa: E402
import bench_padding  # noqa: E402
import bench_postprocess  # noqa: E402
import bench_scorer  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LOAD_WARN = 1.0

# docs/decisions.md D71. Percentages are of the sustained dense conv1d rate.
TARGETS = {
    "fwd_pct": (">=", 80.0),
    "train_pct": (">=", 70.0),
    "thumos_postprocess_ms": ("<", 30.0),
    "scorer_s": ("<", 1.0),
}
FULL_LENGTHS = (576, 1152, 2304, 4608)
QUICK_LENGTHS = (288, 576)  # multiples of 32, the 6-level padding divisor


def environment() -> dict[str, Any]:
    """What the numbers depend on: software, threads, CPU and how busy the machine is."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        git = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        git = f"{git}{'+dirty' if dirty else ''}" if git else "unknown"
    except (OSError, subprocess.SubprocessError):
        git = "unknown"
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
        "git": git,
        "load_avg_start": list(os.getloadavg()),
    }


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _release_free_memory() -> None:
    """Return freed heap pages to the OS so that RSS before a call excludes dead tensors."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name and sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):
            pass


def peak_rss(fn: Callable[[], object]) -> dict[str, Any]:
    """Peak resident memory while ``fn`` runs, in MB.

    tracemalloc cannot see torch's allocator, so this uses the kernel's high-water mark:
    writing 5 to /proc/self/clear_refs resets VmHWM to the current RSS, so the peak belongs to
    this call alone. ``delta_mb`` is the peak minus RSS just before (weights and inputs already
    resident); freed heap is trimmed first (glibc ``malloc_trim``) so that memory kept by the
    allocator from earlier cases does not hide this call's growth. Without that file
    (non-Linux) the process-wide ``ru_maxrss`` is reported and marked ``per_call: False``.
    """
    _release_free_memory()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kb("VmRSS")
        fn()
        peak = _status_kb("VmHWM")
        if before is not None and peak is not None:
            return {"peak_mb": peak / 1024, "delta_mb": (peak - before) / 1024, "per_call": True}
    except OSError:
        pass
    fn()
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    return {"peak_mb": maxrss, "delta_mb": None, "per_call": False}


def run_model(
    encoders: list[str], heads: list[str], batches: list[int], repeats: int, length: int
) -> list[dict[str, Any]]:
    rows = []
    for encoder in encoders:
        for head in heads:
            det = bench_model.build(encoder, head)
            for batch in batches:
                row = {"encoder": encoder, "head": head, "batch": batch, "length": length}
                row.update(bench_model.measure(det, batch, repeats, length=length))
                feats, mask = bench_model.make_inputs(batch, length)
                infer, train_step = bench_model.step_fns(det, feats, mask)
                det.eval()
                row["fwd_mem"] = peak_rss(infer)
                det.train()
                row["train_mem"] = peak_rss(train_step)
                rows.append(row)
                print(
                    f"  model {encoder}+{head} B={batch}: fwd {row['fwd_s']:.3f} s "
                    f"({row['fwd_pct']:.0f} %), train {row['train_s']:.3f} s "
                    f"({row['train_pct']:.0f} %)",
                    file=sys.stderr,
                    flush=True,
                )
    return rows


def run_lengths(lengths: tuple[int, ...], repeats: int) -> list[dict[str, Any]]:
    """LoGo + CLFF inference at batch 1 over sequence lengths (docs/decisions.md D90)."""
    det = bench_model.build("logo", "clff")
    rows = []
    for length in lengths:
        row = {"encoder": "logo", "head": "clff", "batch": 1, "length": length}
        row.update(bench_model.measure(det, 1, repeats, length=length, train=False))
        feats, mask = bench_model.make_inputs(1, length)
        infer, _ = bench_model.step_fns(det, feats, mask)
        det.eval()
        row["fwd_mem"] = peak_rss(infer)
        rows.append(row)
        print(f"  length T={length}: fwd {row['fwd_s']:.3f} s", file=sys.stderr, flush=True)
    return rows


def run_postprocess(
    thumos_bg: tuple[float, ...],
    anet_bg: tuple[float, ...],
    repeats: int,
    threads: int | None,
    thread_settings: tuple[str, ...] = ("1", "2"),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Post-processing rows at the default setting, and THUMOS rows per forced thread count.

    The default rows are ``PostProcessor()`` as shipped (it runs its torch ops at one thread)
    in a process with torch's thread count, or ``threads`` if given; they carry the target.
    The others force ``num_threads`` = 1, 2 inside post-processing (informational).
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        rows = []
        for name, case, bgs in (
            ("thumos", bench_postprocess.thumos_case, thumos_bg),
            ("anet", bench_postprocess.anet_case, anet_bg),
        ):
            for bg in bgs:
                row = {"dataset": name, "bg_mean": bg, "setting": "default"}
                row["process_threads"] = torch.get_num_threads()
                row.update(case(bg, repeats))
                row["mem"] = peak_rss(lambda case=case, bg=bg: case(bg, 1))
                rows.append(row)
        by_threads = []
        for setting in thread_settings:
            extra = bench_postprocess.setting_options(setting)
            for bg in thumos_bg:
                row = {"dataset": "thumos", "bg_mean": bg, "setting": f"threads={setting}"}
                row.update(bench_postprocess.thumos_case(bg, repeats, **extra))
                by_threads.append(row)
        return rows, by_threads
    finally:
        torch.set_num_threads(previous)


def run_scorer(gt_path: Path, repeats: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    if gt_path.is_file():
        row = {"case": "thumos14_test_gt", "gt": str(gt_path)}
        row.update(bench_scorer.thumos_case(gt_path, repeats, rng))
        row["mem"] = peak_rss(lambda: bench_scorer.thumos_case(gt_path, 1, rng))
        rows.append(row)
    else:
        print(f"warning: {gt_path} not found, THUMOS scorer case skipped", file=sys.stderr)
    row = {"case": "synthetic_20k_200cls"}
    row.update(bench_scorer.anet_case(repeats, rng))
    row["mem"] = peak_rss(lambda: bench_scorer.anet_case(1, rng))
    rows.append(row)
    return rows


def _postprocess_load_warning(results: dict[str, Any]) -> None:
    """Post-processing timings next to the load average; warn above 0.5 x cores."""
    load = os.getloadavg()
    cores = os.cpu_count() or 1
    results["postprocess_load"] = {"load_avg": list(load), "warning": load[0] > 0.5 * cores}
    rows = results["postprocess"] + results["postprocess_threads"]
    for r in rows:
        print(
            f"  postprocess {r['dataset']} bg={r['bg_mean']:g} [{r['setting']}]: best "
            f"{r['best_ms']:.1f} ms, median {r['wall_ms']:.1f} ms wall",
            file=sys.stderr,
            flush=True,
        )
    if load[0] > 0.5 * cores:
        print(
            f"WARNING: post-processing timed at 1-minute load {load[0]:.2f} > 0.5 x {cores} "
            "cores: not comparable with an idle machine",
            file=sys.stderr,
        )


def _check(value: float, target: str) -> str:
    op, bound = TARGETS[target]
    ok = value >= bound if op == ">=" else value < bound
    return "PASS" if ok else "MISS"


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The printed table: one row per number, with its target and verdict where it has one."""
    rows = []

    def add(case, metric, value, unit, target=None):
        check = {}
        if target is not None:
            op, bound = TARGETS[target]
            check = {"target": f"{op} {bound:g}", "status": _check(value, target)}
        rows.append({"case": case, "metric": metric, "value": value, "unit": unit, **check})
        # Above 100 % the reference conv1d rate itself was measured while descheduled.
        if unit == "%" and value > 100:
            rows[-1]["suspect"] = True

    for r in results["model"]:
        case = f"{r['encoder']}+{r['head']} B={r['batch']} T={r['length']}"
        add(case, "params", r["params_M"], "M")
        add(case, "inference", r["fwd_s"] * 1e3, "ms")
        add(case, "inference % conv rate", r["fwd_pct"], "%", "fwd_pct")
        add(case, "train step", r["train_s"] * 1e3, "ms")
        add(case, "train % conv rate", r["train_pct"], "%", "train_pct")
        add(case, "peak RSS inference (+delta)", r["fwd_mem"]["peak_mb"], "MB")
        add(case, "peak RSS train (+delta)", r["train_mem"]["peak_mb"], "MB")
        rows[-2]["delta_mb"] = r["fwd_mem"]["delta_mb"]
        rows[-1]["delta_mb"] = r["train_mem"]["delta_mb"]
    for r in results["postprocess"]:
        case = f"postprocess {r['dataset']} bg={r['bg_mean']:g} ({r['candidates']} cand.)"
        target = "thumos_postprocess_ms" if r["dataset"] == "thumos" else None
        add(case, "decode+Soft-NMS wall", r["wall_ms"], "ms", target)
        if "best_ms" in r:
            add(case, "decode+Soft-NMS best wall", r["best_ms"], "ms")
        add(case, "peak RSS (+delta)", r["mem"]["peak_mb"], "MB")
        rows[-1]["delta_mb"] = r["mem"]["delta_mb"]
    for r in results.get("postprocess_threads", []):
        case = f"postprocess {r['dataset']} bg={r['bg_mean']:g} {r['setting']}"
        add(case, "median wall (forced threads)", r["wall_ms"], "ms")
        add(case, "best wall (forced threads)", r["best_ms"], "ms")
    for r in results["scorer"]:
        case = f"scorer {r['case']} ({r['detections']} dets)"
        add(case, "evaluate_detections", r["seconds"], "s", "scorer_s")
        add(case, "peak RSS (+delta)", r["mem"]["peak_mb"], "MB")
        rows[-1]["delta_mb"] = r["mem"]["delta_mb"]
    for r in results.get("compile", []):
        case = f"compile logo+clff {r['backend']} T={r['length']}"
        add(case, "train step eager", r["eager_train_s"] * 1e3, "ms")
        add(case, "train step compiled", r["compiled_train_s"] * 1e3, "ms")
        add(case, "inference eager B=1", r["eager_infer_s"] * 1e3, "ms")
        add(case, "inference compiled B=1", r["compiled_infer_s"] * 1e3, "ms")
        add(case, "compile time train + infer", r["compile_train_s"] + r["compile_infer_s"], "s")
        add(case, "THUMOS run train, eager", r["thumos_train_eager_h"], "h")
        add(case, "THUMOS run train, compiled", r["thumos_train_compiled_h"], "h")
    for r in results.get("evaluation", {}).get("rows", []):
        case = f"evaluation {r['videos']} videos workers={r['workers']}"
        add(case, "total per video", r["total_ms_per_video"], "ms")
        add(case, "detector per video", r["detector_ms_per_video"], "ms")
        add(case, "post-processing per video", r["postprocess_ms_per_video"], "ms")
        add(case, "waited for NMS per video", r["wait_ms_per_video"], "ms")
    for case, entry in results.get("padding", {}).get("cases", {}).items():
        for setting, r in entry["settings"].items():
            label = f"padding {case} {entry['data']['videos']} videos {setting}"
            target = bench_padding.TARGETS.get((case, setting))
            add(label, "epoch", r["epoch_s"], "s")
            add(label, "speed-up over max_seq_len", r["speedup"], "x")
            if target is not None:
                rows[-1]["target"] = f">= {target:g}"
                rows[-1]["status"] = "PASS" if r["speedup"] >= target else "MISS"
            add(label, "pad fraction", 100 * r["pad_fraction"], "%")
            add(label, "peak memory", r["peak_mb"], "MB")
    for r in results["lengths"]:
        case = f"length logo+clff B=1 T={r['length']}"
        add(case, "inference", r["fwd_s"] * 1e3, "ms")
        add(case, "inference % conv rate", r["fwd_pct"], "%")
        add(case, "peak RSS inference (+delta)", r["fwd_mem"]["peak_mb"], "MB")
        rows[-1]["delta_mb"] = r["fwd_mem"]["delta_mb"]
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    width = max(len(r["case"]) for r in rows) if rows else 10
    lines = [f"{'case':<{width}}  {'metric':<28}{'value':>12}  {'target':<9}{'status'}"]
    lines.append("-" * len(lines[0]))
    for r in rows:
        value = f"{r['value']:.3f}" if r["unit"] in ("s", "h") else f"{r['value']:.1f}"
        if r.get("delta_mb") is not None:
            value += f" (+{r['delta_mb']:.0f})"
        lines.append(
            f"{r['case']:<{width}}  {r['metric']:<28}{value + ' ' + r['unit']:>16}  "
            f"{r.get('target', ''):<9}{r.get('status', '')}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced smoke run (seconds)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default logs/bench/)")
    parser.add_argument("--encoders", nargs="*", default=None, help="default: all in conf")
    parser.add_argument("--heads", nargs="*", default=None, help="default: all in conf")
    parser.add_argument("--batches", nargs="*", type=int, default=None, help="default: 1 2")
    parser.add_argument("--repeats", type=int, default=None, help="timing repeats (best kept)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the model")
    parser.add_argument(
        "--postprocess-threads",
        type=int,
        default=None,
        help="process torch threads for the default post-processing rows (default: torch's)",
    )
    parser.add_argument(
        "--evaluation-videos",
        type=int,
        default=None,
        help="fake THUMOS test videos evaluated end to end (default 212, quick 2; 0 skips)",
    )
    parser.add_argument(
        "--padding-cases",
        nargs="*",
        default=None,
        help="training-padding section: thumos anet own (default all; none skips)",
    )
    parser.add_argument("--gt", type=Path, default=bench_scorer.DEFAULT_GT)
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
    parser.add_argument(
        "--compile-backend",
        default=None,
        help="torch.compile backend of the eager-vs-compiled section (default inductor; "
        "'none' skips it; --quick skips it unless given)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    env = environment()
    load = env["load_avg_start"][0]
    env["load_warning"] = load > LOAD_WARN
    if env["load_warning"]:
        print(
            f"WARNING: 1-minute load average {load:.2f} > {LOAD_WARN}: other processes share the "
            "CPU, so timings (and % of conv rate) are not meaningful",
            file=sys.stderr,
        )

    quick = args.quick
    settings = {
        "quick": quick,
        "encoders": args.encoders or (["logo"] if quick else bench_model.all_encoders()),
        "heads": args.heads or (["clff"] if quick else bench_model.all_heads()),
        "batches": args.batches or ([1] if quick else [1, 2]),
        "repeats": args.repeats or (1 if quick else 3),
        "model_length": 288 if quick else bench_model.LENGTH,
        "lengths": list(QUICK_LENGTHS if quick else FULL_LENGTHS),
        "postprocess_repeats": 3 if quick else 20,
        "postprocess_threads": args.postprocess_threads,
        "postprocess_thread_settings": ["1", "2"],
        "thumos_bg": [-9.0] if quick else list(bench_postprocess.THUMOS_BG),
        "anet_bg": [-6.0] if quick else list(bench_postprocess.ANET_BG),
        "scorer_repeats": 1 if quick else 5,
        # Inductor compiles for minutes on 2 cores: the smoke run skips it unless asked.
        "compile_backend": args.compile_backend or (None if quick else "inductor"),
        "evaluation_videos": (
            args.evaluation_videos if args.evaluation_videos is not None else 2 if quick else 212
        ),
        "evaluation_max_steps": 576 if quick else 2304,
        "evaluation_workers": [0, 2],
        "padding_cases": (
            list(bench_padding.CASES) if args.padding_cases is None else args.padding_cases
        ),
        # One epoch per setting at the configs' widths, the smoke run at the synthetic model's
        # (docs/benchmarks.md "Training padding").
        "padding_width": "small" if quick else "paper",
        "padding_videos": 8 if quick else None,
        "padding_anet_videos": 32 if quick else 1600,
        "targets": {k: f"{op} {v:g}" for k, (op, v) in TARGETS.items()},
    }
    print(
        f"torch {env['torch']}, {env['torch_threads']} threads, {env['cpu_model']}, "
        f"load {load:.2f}",
        file=sys.stderr,
    )

    results: dict[str, Any] = {"environment": env, "settings": settings}
    sections = {
        "model": lambda: run_model(
            settings["encoders"],
            settings["heads"],
            settings["batches"],
            settings["repeats"],
            settings["model_length"],
        ),
        "postprocess": lambda: run_postprocess(
            tuple(settings["thumos_bg"]),
            tuple(settings["anet_bg"]),
            settings["postprocess_repeats"],
            settings["postprocess_threads"],
        ),
        "scorer": lambda: run_scorer(args.gt, settings["scorer_repeats"], seed=0),
        "lengths": lambda: run_lengths(tuple(settings["lengths"]), settings["repeats"]),
        "evaluation": lambda: (
            bench_evaluation.run(
                settings["evaluation_videos"],
                settings["evaluation_workers"],
                min_steps=min(300, settings["evaluation_max_steps"]),
                max_steps=settings["evaluation_max_steps"],
            )
            if settings["evaluation_videos"] > 0
            else {"split": None, "rows": []}
        ),
    }
    if settings["padding_cases"] and settings["padding_cases"] != ["none"]:
        sections["padding"] = lambda: bench_padding.measure(
            settings["padding_cases"],
            width=settings["padding_width"],
            videos=settings["padding_videos"],
            anet_videos=settings["padding_anet_videos"],
        )
    if settings["compile_backend"] not in (None, "none"):
        sections["compile"] = lambda: [
            bench_compile.measure(
                settings["compile_backend"],
                settings["model_length"],
                settings["repeats"],
                mode=None,
            )
        ]
    results["section_seconds"] = {}
    for name, run in sections.items():
        start = time.perf_counter()
        results[name] = run()
        if name == "postprocess":
            results[name], results["postprocess_threads"] = results[name]
            _postprocess_load_warning(results)
        results["section_seconds"][name] = time.perf_counter() - start
    env["load_avg_end"] = list(os.getloadavg())

    rows = summary_rows(results)
    results["summary"] = rows
    checked = [r for r in rows if "status" in r]
    results["passed"] = all(r["status"] == "PASS" for r in checked)

    print(format_table(rows))
    misses = sum(r["status"] == "MISS" for r in checked)
    suspect = sum(r.get("suspect", False) for r in rows)
    if suspect:
        print(f"{suspect} value(s) above 100 % of the conv rate: that row's timings are invalid")
    print(
        f"\n{len(checked) - misses}/{len(checked)} targets met; load average "
        f"{env['load_avg_start'][0]:.2f} at start, {env['load_avg_end'][0]:.2f} at end"
        + (" (busy machine: timings unreliable)" if env["load_warning"] else "")
    )
    out = args.out or REPO / "logs" / "bench" / f"{dt.datetime.now():%Y-%m-%d_%H-%M-%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 1 if args.strict and misses else 0


if __name__ == "__main__":
    sys.exit(main())

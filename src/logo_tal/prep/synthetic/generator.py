"""Synthetic TAL benchmark, written in the same on-disk formats as real data.

``python -m logo_tal.synthetic --out DIR [--preset default|tiny] [--format npy|h5]
[--seed N] [--noise-std X ...]`` writes::

    DIR/annotations.json     ActivityNet-style: classes, database{subset, duration, fps,
                             num_frames, annotations[segment, label, label_id]}
    DIR/features/<id>.npy    (T, C) float32   (or DIR/features.h5 keyed by <id>)

and everything is read back through :mod:`logo_tal.data.annotations` and
:mod:`logo_tal.data.feature_store`. Subsets are ``training`` and ``testing``.

Timeline model
    Each video has T steps (``min_steps..max_steps``) on the THUMOS grid (fps 30, stride 4,
    window 16) and the duration whose sliding-window length is exactly T. Instances per video
    ~ 1 + Poisson(``action_rate`` * duration); lengths ~ LogNormal(median ``length_median`` s,
    sigma ``length_sigma``) clipped to [``min_length``, ``max_length``]; both fitted to THUMOS14
    val+test (0.07 instances per second, median 3.0 s, mean 4.3 s: docs/decisions.md D4),
    which spans 4 to 150 feature steps, i.e. every pyramid level. Instances do not overlap; most
    of a video's instances share one class (probability ``main_class_prob``), as in THUMOS.
    Alternatively ``timelines=PATH`` takes windows of real annotated videos (e.g.
    THUMOS14 annotations in ActivityNet format), scaled by ``time_scale``, with class ids
    folded to ``num_classes``.

Signal model (per step i at clip-centre time t_i, all D channels)::

    x_i = relu(base + scene + drift(t_i) + sum_actions a_k env_k(t_i) W(u_k(t_i)) P[c_k]
               + sum_distractors d_j env_j(t_i) P[c_j, mid] + noise_i)

* ``P[c] = (start, middle, end)``: three sparse non-negative sub-patterns per class (density
  ``pattern_density``), each a mix of a pattern shared by all classes (weight
  ``class_overlap``) and a class-specific one, so the class and the position inside an action
  are both visible; ``W(u)`` moves weight from start (u = 0) through middle to end (u = 1) of
  the action, so the boundaries are learnable and not just edges of a box.
* ``env`` is a product of two sigmoids with time constant ``boundary_softness`` steps (soft
  ramps, like a 16-frame clip straddling a boundary). ``a_k`` = ``pattern_strength`` times a
  per-instance amplitude in [0.6, 1.4], with per-instance pattern jitter ``instance_jitter``.
* Distractors (``distractor_rate`` per second) carry only the *middle* sub-pattern of some class
  (strength ``distractor_strength``): locally they look like the middle of an action, but have
  no start/end evidence.
* ``scene``: a per-video sparse offset; ``drift``: slow sinusoids (periods 10-60 s) mixed into
  all channels, amplitude ``drift_strength``. ``noise``: Gaussian, std ``noise_std``, smoothed
  over 3 steps (I3D features are smooth in time). The final ReLU gives non-negative features
  with exact zeros, like post-ReLU I3D (docs/decisions.md D11: mean ~0.2, std ~0.2,
  4-13 % zeros).

Difficulty knobs: ``noise_std``, ``pattern_strength``, ``distractor_rate``,
``distractor_strength``, ``boundary_softness``, ``class_overlap``, ``drift_strength``,
``instance_jitter``. Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from logo_tal.core.grid import FeatureGrid

ANNOTATION_FILE = "annotations.json"
NPY_DIR = "features"
H5_FILE = "features.h5"
TRAIN_SUBSET = "training"
TEST_SUBSET = "testing"


@dataclass(frozen=True)
class SyntheticConfig:
    """All generator settings; see the module docstring for the model."""

    num_classes: int = 8
    input_dim: int = 64
    num_train: int = 160
    num_test: int = 50
    # THUMOS I3D grid (docs/decisions.md D6).
    fps: float = 30.0
    feat_stride: int = 4
    num_frames: int = 16
    min_steps: int = 192
    max_steps: int = 448
    # Timeline statistics fitted to THUMOS14 (docs/decisions.md D4): 6365 instances
    # over 412 videos of mean 213 s -> 0.07 per second; lengths median 3.0 s, mean 4.3 s ->
    # lognormal sigma = sqrt(2 ln(4.3 / 3.0)) = 0.85.
    action_rate: float = 0.07
    length_median: float = 3.0
    length_sigma: float = 0.85
    min_length: float = 0.5
    max_length: float = 20.0
    main_class_prob: float = 0.8
    # Signal.
    pattern_strength: float = 0.6
    pattern_density: float = 0.25
    class_overlap: float = 0.4
    instance_jitter: float = 0.25
    boundary_softness: float = 1.5
    distractor_rate: float = 0.04
    distractor_strength: float = 0.8
    drift_strength: float = 0.25
    noise_std: float = 0.35
    base_level: float = 0.3
    # Real timelines instead of sampled ones.
    timelines: str | None = None
    timeline_subsets: tuple[str, str] = ("validation", "test")
    time_scale: float = 1.0


PRESETS: dict[str, dict] = {
    "default": {},
    # For tests: generated in a few milliseconds, T <= 128.
    "tiny": dict(
        num_classes=3,
        input_dim=32,
        num_train=6,
        num_test=4,
        min_steps=64,
        max_steps=128,
        action_rate=0.2,
        length_median=1.5,
        length_sigma=0.5,
        max_length=5.0,
    ),
}


def make_config(preset: str = "default", **overrides) -> SyntheticConfig:
    """A preset with some fields replaced (None values are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    if "timeline_subsets" in values:
        values["timeline_subsets"] = tuple(values["timeline_subsets"])
    return SyntheticConfig(**values)


def _class_patterns(cfg: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """(K, 3, D) non-negative start/middle/end patterns, mean ~ ``pattern_density``."""

    def sparse(shape):
        active = rng.random(shape) < cfg.pattern_density
        return active * rng.uniform(0.5, 1.5, size=shape)

    shared = sparse((1, 3, cfg.input_dim))
    own = sparse((cfg.num_classes, 3, cfg.input_dim))
    return (cfg.class_overlap * shared + (1.0 - cfg.class_overlap) * own).astype(np.float64)


def _sample_lengths(cfg: SyntheticConfig, rng: np.random.Generator, n: int, cap: float):
    raw = cfg.length_median * np.exp(cfg.length_sigma * rng.standard_normal(n))
    return np.clip(raw, cfg.min_length, max(min(cfg.max_length, cap), cfg.min_length))


def _sample_timeline(cfg: SyntheticConfig, rng: np.random.Generator, duration: float):
    """Non-overlapping ``[(start, end, class)]`` inside ``[0, duration]``."""
    n = 1 + rng.poisson(cfg.action_rate * duration)
    lengths = _sample_lengths(cfg, rng, n, 0.5 * duration)
    # Keep at most 80 % of the video covered (THUMOS coverage is ~30 %; this only bites on
    # unlucky draws).
    while len(lengths) > 1 and lengths.sum() > 0.8 * duration:
        lengths = lengths[:-1]
    gaps = rng.dirichlet(np.ones(len(lengths) + 1)) * (duration - lengths.sum())
    main = int(rng.integers(cfg.num_classes))
    out, t = [], 0.0
    for length, gap in zip(lengths, gaps[:-1], strict=True):
        t += gap
        c = main if rng.random() < cfg.main_class_prob else int(rng.integers(cfg.num_classes))
        out.append((t, t + length, c))
        t += length
    return out


def _real_timeline(cfg, rng, duration: float, pool: list):
    """A ``duration``-long window of a real annotated video, scaled by ``time_scale``."""
    for _ in range(20):
        rec = pool[int(rng.integers(len(pool)))]
        real = rec.duration * cfg.time_scale
        st = float(rng.uniform(0.0, max(real - duration, 0.0)))
        segs = rec.segments * cfg.time_scale - st
        inside = (segs[:, 0] >= 0) & (segs[:, 1] <= duration)
        if inside.any():
            return [
                (float(s), float(e), int(c) % cfg.num_classes)
                for (s, e), c in zip(segs[inside], rec.labels[inside], strict=True)
            ]
    return _sample_timeline(cfg, rng, duration)


def _distractors(cfg, rng, duration: float, actions: list) -> list:
    out = []
    for _ in range(rng.poisson(cfg.distractor_rate * duration)):
        length = float(_sample_lengths(cfg, rng, 1, 0.5 * duration)[0])
        s = float(rng.uniform(0.0, max(duration - length, 0.0)))
        e = s + length
        if all(e <= a or s >= b for a, b, _ in actions + out):
            out.append((s, e, int(rng.integers(cfg.num_classes))))
    return out


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _render(
    cfg: SyntheticConfig,
    rng: np.random.Generator,
    patterns: np.ndarray,
    grid: FeatureGrid,
    length: int,
    actions: list,
    distractors: list,
) -> np.ndarray:
    """(T, D) float32 features of one video."""
    d = cfg.input_dim
    t = grid.to_seconds(np.arange(length))
    tau = max(cfg.boundary_softness, 1e-3) * grid.seconds_per_step
    x = np.full((length, d), cfg.base_level)
    x += (rng.random(d) < 0.3) * np.abs(rng.normal(0.0, cfg.drift_strength, d))
    periods = rng.uniform(10.0, 60.0, size=4)
    phases = rng.uniform(0, 2 * np.pi, size=4)
    latents = np.sin(2 * np.pi * t[:, None] / periods + phases)  # (T, 4)
    x += cfg.drift_strength * 0.5 * latents @ rng.standard_normal((4, d))

    def envelope(s, e):
        return _sigmoid((t - s) / tau) * _sigmoid((e - t) / tau)

    centres = np.array([0.0, 0.5, 1.0])
    for s, e, c in actions:
        u = np.clip((t - s) / max(e - s, 1e-6), 0.0, 1.0)
        w = np.exp(-0.5 * ((u[:, None] - centres) / 0.25) ** 2)
        w /= w.sum(axis=1, keepdims=True)
        pat = patterns[c] * (1.0 + cfg.instance_jitter * rng.standard_normal(patterns[c].shape))
        amp = cfg.pattern_strength * rng.uniform(0.6, 1.4)
        x += amp * envelope(s, e)[:, None] * (w @ np.clip(pat, 0.0, None))
    for s, e, c in distractors:
        amp = cfg.pattern_strength * cfg.distractor_strength * rng.uniform(0.6, 1.4)
        x += amp * envelope(s, e)[:, None] * patterns[c, 1]
    noise = rng.normal(0.0, cfg.noise_std, size=(length + 2, d))
    # [1, 2, 1] / sqrt(6) keeps the per-step std while correlating neighbours (rho = 2/3).
    x += (noise[:-2] + 2 * noise[1:-1] + noise[2:]) / np.sqrt(6.0)
    return np.maximum(x, 0.0).astype(np.float32)


def synthesize(cfg: SyntheticConfig, seed: int = 0) -> tuple[dict, dict[str, np.ndarray]]:
    """Build the benchmark in memory.

    Returns:
        The annotation file content and ``{video_id: (T, D) float32}``.
    """
    if cfg.min_steps < 2 or cfg.max_steps < cfg.min_steps:
        raise ValueError(f"need 2 <= min_steps <= max_steps, got {cfg.min_steps}, {cfg.max_steps}")
    root = np.random.SeedSequence(seed)
    pattern_seed, *video_seeds = root.spawn(1 + cfg.num_train + cfg.num_test)
    patterns = _class_patterns(cfg, np.random.default_rng(pattern_seed))
    grid = FeatureGrid(cfg.fps, cfg.feat_stride, cfg.num_frames)
    names = [f"class_{i:02d}" for i in range(cfg.num_classes)]
    pools = {}
    if cfg.timelines is not None:
        from logo_tal.data.annotations import load_annotations

        db = load_annotations(cfg.timelines, log_problems=False)
        for split, subset in zip((TRAIN_SUBSET, TEST_SUBSET), cfg.timeline_subsets, strict=True):
            pools[split] = [r for r in db.subset(subset) if len(r.labels)]
            if not pools[split]:
                raise ValueError(f"{cfg.timelines}: no annotated videos in subset {subset!r}")

    database, feats = {}, {}
    splits = [TRAIN_SUBSET] * cfg.num_train + [TEST_SUBSET] * cfg.num_test
    for i, (split, vseed) in enumerate(zip(splits, video_seeds, strict=True)):
        rng = np.random.default_rng(vseed)
        length = int(rng.integers(cfg.min_steps, cfg.max_steps + 1))
        frames = (length - 1) * cfg.feat_stride + cfg.num_frames
        duration = frames / cfg.fps
        if pools:
            actions = _real_timeline(cfg, rng, duration, pools[split])
        else:
            actions = _sample_timeline(cfg, rng, duration)
        distractors = _distractors(cfg, rng, duration, actions)
        vid = f"synth_{split}_{i:05d}"
        feats[vid] = _render(cfg, rng, patterns, grid, length, actions, distractors)
        database[vid] = {
            "subset": split,
            "duration": round(duration, 6),
            "fps": cfg.fps,
            "num_frames": frames,
            "annotations": [
                {
                    "segment": [round(s, 4), round(e, 4)],
                    "label": names[c],
                    "label_id": c,
                }
                for s, e, c in actions
            ],
        }
    meta = {k: v for k, v in dataclasses.asdict(cfg).items()}
    content = {
        "version": "logo-tal synthetic v1",
        "classes": names,
        "synthetic": {"seed": seed, **meta},
        "database": database,
    }
    return content, feats


def generate(
    out_dir: str | Path,
    preset: str = "default",
    seed: int = 0,
    format: str = "npy",
    overwrite: bool = True,
    **overrides,
) -> dict:
    """Write the benchmark to ``out_dir``.

    The annotation file is written last and atomically, so a reader that sees it also sees
    complete features.

    Args:
        out_dir: output directory (created).
        preset: ``"default"`` or ``"tiny"``.
        seed: random seed.
        format: ``"npy"`` (``features/<id>.npy``) or ``"h5"`` (``features.h5``).
        overwrite: replace an existing benchmark (else raise FileExistsError).
        **overrides: :class:`SyntheticConfig` fields.

    Returns:
        ``{"annotations": path, "features": path, "num_videos": n, "config": SyntheticConfig}``.
    """
    if format not in ("npy", "h5"):
        raise ValueError(f"format must be npy or h5, got {format!r}")
    cfg = make_config(preset, **overrides)
    out = Path(out_dir)
    ann_path = out / ANNOTATION_FILE
    if ann_path.exists() and not overwrite:
        raise FileExistsError(f"{ann_path} exists (pass overwrite=True)")
    content, feats = synthesize(cfg, seed)
    out.mkdir(parents=True, exist_ok=True)
    if format == "npy":
        feat_path = out / NPY_DIR
        feat_path.mkdir(exist_ok=True)
        for vid, arr in feats.items():
            np.save(feat_path / f"{vid}.npy", arr)
    else:
        import h5py

        feat_path = out / H5_FILE
        tmp = feat_path.with_name(feat_path.name + f".tmp{os.getpid()}")
        with h5py.File(tmp, "w") as f:
            for vid, arr in feats.items():
                f.create_dataset(vid, data=arr)
        os.replace(tmp, feat_path)
    tmp = ann_path.with_name(ann_path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(content, indent=1))
    os.replace(tmp, ann_path)
    return {
        "annotations": ann_path,
        "features": feat_path,
        "num_videos": len(feats),
        "config": cfg,
    }

"""The package's layering (docs/design.md, "Layers"): no module imports a layer above it.

Every ``logo_tal`` import of every module under ``src/logo_tal`` is read from the source
(function-level imports included), so a new module or a lazy import is checked too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module may import its own layer or any layer below it, except that the peers
# of one layer (data, models, utils; evaluation, prep; engine, sweeps) do not import each other.
COMMANDS = (
    "logo_tal.train",
    "logo_tal.evaluate",
    "logo_tal.predict",
    "logo_tal.score",
    "logo_tal.validate",
    "logo_tal.convert",
    "logo_tal.extract",
    "logo_tal.synthetic",
)
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundations", ("logo_tal", "logo_tal.core")),
    ("data", ("logo_tal.data",)),
    ("models", ("logo_tal.models",)),
    ("utils", ("logo_tal.utils",)),
    ("evaluation", ("logo_tal.evaluation",)),
    # Dataset preparation (converters, decoding, extraction, the synthetic benchmark): writes
    # what the data layer reads, apart from the training path.
    ("prep", ("logo_tal.prep",)),
    ("engine", ("logo_tal.engine",)),
    # Multirun summaries: read the files runs leave behind; beside the Lightning layer.
    ("sweeps", ("logo_tal.sweeps",)),
    # The commands at the package root, and what they share (logo_tal.app).
    ("entry points", ("logo_tal.app", *COMMANDS)),
]
RANK = {"foundations": 0, "data": 1, "models": 1, "utils": 1, "evaluation": 2, "prep": 2}
RANK.update({"engine": 3, "sweeps": 3, "entry points": 4})


def layer_of(module: str) -> str:
    """The layer of a dotted module name (the longest matching prefix wins)."""
    best, length = None, -1
    for layer, prefixes in LAYERS:
        for prefix in prefixes:
            exact = module == prefix
            inside = module.startswith(prefix + ".") and prefix != "logo_tal"
            if (exact or inside) and len(prefix) > length:
                best, length = layer, len(prefix)
    if best is None:
        raise KeyError(f"{module} is in no layer: add it to LAYERS and to docs/design.md")
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n == "logo_tal" or n.startswith("logo_tal."))
    return found


def allowed(source: str, target: str) -> bool:
    a, b = layer_of(source), layer_of(target)
    return a == b or RANK[b] < RANK[a]


MODULES = sorted(module_name(p) for p in (SRC / "logo_tal").rglob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_only_its_layer_and_below(module):
    path = SRC / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    bad = sorted(t for t in package_imports(path) if not allowed(module, t))
    assert not bad, f"{module} ({layer_of(module)}) imports {bad} from a layer above or beside"


def test_the_package_root_holds_only_the_commands():
    root = sorted(p.stem for p in (SRC / "logo_tal").glob("*.py") if p.stem != "__init__")
    assert [f"logo_tal.{m}" for m in root] == sorted(COMMANDS)
    for module in COMMANDS:
        tree = ast.parse((SRC / Path(*module.split("."))).with_suffix(".py").read_text())
        assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body), module


def test_the_rule_rejects_upward_and_sideways_imports():
    assert not allowed("logo_tal.models.detector", "logo_tal.data.batch")
    assert not allowed("logo_tal.data.collate", "logo_tal.models.detector")
    assert not allowed("logo_tal.evaluation.metric", "logo_tal.engine.lit_module")
    assert not allowed("logo_tal.core.grid", "logo_tal.data.annotations")
    assert not allowed("logo_tal.data.datamodule", "logo_tal.prep.synthetic.prepare")
    assert not allowed("logo_tal.evaluation.protocol", "logo_tal.prep.convert")
    assert allowed("logo_tal.engine.lit_module", "logo_tal.evaluation.metric")
    assert allowed("logo_tal.prep.extract.pipeline", "logo_tal.data.extraction_record")
    assert allowed("logo_tal.train", "logo_tal.app.build")
    with pytest.raises(KeyError, match="in no layer"):
        layer_of("logo_tal_other.x")

"""No function on the training or evaluation path has a body over 60 lines (docs/design.md).

The body is counted from the first statement after the docstring to the end of the function;
signatures and docstrings are free. Tools off the path (the data validator, the annotation
converters, the feature extractor, the synthetic generator and fake layouts, the false-positive
analysis) are exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "logo_tal"
MAX_BODY = 60
OFF_PATH = (
    "data/validate.py",
    "data/convert.py",
    "extract/",
    "data/synthetic/",
    "evaluation/errors.py",
)


def body_length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    first = body[0]
    is_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    if is_doc and isinstance(first.value.value, str):
        if len(body) == 1:
            return 0
        first = body[1]
    return node.end_lineno - first.lineno + 1


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [
        f"{node.name} ({body_length(node)} lines, line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and body_length(node) > MAX_BODY
    ]


PATH_MODULES = sorted(
    str(p.relative_to(SRC))
    for p in SRC.rglob("*.py")
    if not str(p.relative_to(SRC)).startswith(OFF_PATH)
)


@pytest.mark.parametrize("module", PATH_MODULES)
def test_functions_stay_short(module):
    assert not long_functions(SRC / module), f"{module}: {long_functions(SRC / module)}"


def test_the_counter_skips_the_docstring():
    tree = ast.parse('def f():\n    """doc\n\n    more"""\n    a = 1\n    return a\n')
    assert body_length(tree.body[0]) == 2

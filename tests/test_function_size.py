"""No function in src/ is over 60 lines (docs/design.md, "Function size").

A function is counted whole, from its first decorator (or its ``def``) to its last line:
signature, docstring and nested functions included, since that is what a reader has to hold.
Every module is checked, tools included; at most three functions may be exempt, each named in
:data:`EXEMPT` with its reason in docs/design.md (today: none).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "logo_tal"
MAX_LINES = 60
EXEMPT: dict[str, str] = {}  # "module.py:function" -> the reason, as in docs/design.md


def function_length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return node.end_lineno - first + 1


def long_functions(path: Path) -> list[str]:
    module = str(path.relative_to(SRC))
    return [
        f"{node.name} ({function_length(node)} lines, line {node.lineno})"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and function_length(node) > MAX_LINES
        and f"{module}:{node.name}" not in EXEMPT
    ]


MODULES = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_functions_stay_short(module):
    assert not long_functions(SRC / module), f"{module}: {long_functions(SRC / module)}"


def test_at_most_three_exemptions_each_explained_in_the_design_doc():
    assert len(EXEMPT) <= 3
    design = (SRC.parents[1] / "docs" / "design.md").read_text()
    for name in EXEMPT:
        assert name in design, f"{name} is exempt but docs/design.md does not say why"


def test_the_counter_counts_decorators_docstring_and_body():
    tree = ast.parse('@dec\ndef f():\n    """doc\n\n    more"""\n    a = 1\n    return a\n')
    assert function_length(tree.body[0]) == 7

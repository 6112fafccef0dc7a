"""logo_tal.core.errors: which exceptions are the user's to fix, and their one-line text."""

from __future__ import annotations

import pytest

from logo_tal.core.errors import (
    EXIT_BAD_INPUT,
    OneLineArgumentParser,
    UserInputError,
    describe,
    expected_error,
    one_line,
    parse_arguments,
    run_reporting,
)


def test_one_line_folds_lists_and_cuts_hydra_search_path():
    assert (
        one_line("invalid config:\n  - a is bad\n  - b is bad")
        == "invalid config: a is bad; b is bad"
    )
    hydra = "Could not find 'x'\n\nAvailable options in 'g':\n\ta\n\tb\nConfig search path:\n\tp"
    assert one_line(hydra) == "Could not find 'x'; Available options in 'g': a; b"


def test_expected_errors_and_causes():
    assert expected_error(UserInputError("x")) is not None
    assert expected_error(FileNotFoundError(2, "No such file", "/x")) is not None
    assert expected_error(RuntimeError("bug")) is None
    wrapper = RuntimeError("wrapped")
    wrapper.__cause__ = UserInputError("inner")
    assert str(expected_error(wrapper)) == "inner"
    context = RuntimeError("raised while handling")  # only __cause__ counts, not __context__
    context.__context__ = UserInputError("earlier")
    assert expected_error(context) is None
    assert describe(PermissionError(13, "Permission denied", "/data/x.npy")) == (
        "/data/x.npy: Permission denied"
    )


def test_run_reporting(capsys, monkeypatch):
    monkeypatch.delenv("LOGO_TAL_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    def bad():
        raise UserInputError("a.json: line 1\nline 2")

    assert run_reporting("prog", bad) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == "prog: error: a.json: line 1; line 2\n"
    assert run_reporting("prog", lambda: None) == 0
    monkeypatch.setenv("LOGO_TAL_DEBUG", "1")
    with pytest.raises(UserInputError):
        run_reporting("prog", bad)


def test_parse_arguments_returns_argparse_status_instead_of_exiting(capsys):
    parser = OneLineArgumentParser(prog="prog")
    parser.add_argument("--n", type=int, required=True)
    assert parse_arguments(parser, ["--n", "3"]).n == 3
    assert parse_arguments(parser, ["--help"]) == 0
    assert "usage: prog" in capsys.readouterr().out
    assert parse_arguments(parser, ["--n", "x"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("prog: error:") and "--n" in err and len(err.strip().splitlines()) == 1

"""`pacup --version`, `--help` of every command, `pacup models`, option validation."""

import re

import pytest
from cli_helpers import one_line_error

from pacup import __version__
from pacup.cli import _is_available
from pacup.models import list_models

ANSI = re.compile(r"\x1b\[")


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"pacup {__version__}"


def test_no_arguments_shows_help(invoke):
    result = invoke()
    assert "depth" in result.output and "flow" in result.output and "models" in result.output


@pytest.mark.parametrize(
    "command, example",
    [
        ([], "pacup depth LOW.png --guide RGB.png"),
        (["depth"], "pacup depth samples/depth/motorcycle_depth_x16.png"),
        (["flow"], "pacup flow samples/flow/synth_flow_x8.flo"),
        (["models"], "pacup models"),
        (["train"], "pacup train --task depth --factor 8"),
        (["eval"], "pacup eval --data ../shared/data/depth/motorcycle --protocol B --factor 8"),
    ],
)
def test_help_has_example_exit_codes_and_defaults(invoke, command, example):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())  # rich wraps help text to the terminal width
    assert "Example" in text
    assert example in text
    assert "Exit status" in text and "2 usage error" in text
    if command in (["depth"], ["flow"]):
        for default in ("default: auto", "default: torch", "current directory"):
            assert default in text, default
        assert "--random-weights" in text and "--skip-existing" in text and "--glob" in text
    if command == ["flow"]:
        assert "--max-flow" in text and "default: .flo" in text


def test_help_examples_name_files_that_exist():
    """The examples in --help point at the shipped samples; keep them in step."""
    from pathlib import Path

    from pacup.cli import DEPTH_EPILOG, FLOW_EPILOG

    root = Path(__file__).resolve().parents[2]
    for epilog in (DEPTH_EPILOG, FLOW_EPILOG):
        for path in re.findall(r"samples/\S+", epilog):
            assert (root / path).is_file(), path


def test_models_lists_the_registry(invoke):
    result = invoke("models")
    assert result.exit_code == 0
    out = result.stdout
    for header in ("name", "task", "factor", "available", "scores"):
        assert header in out
    entries = list_models()
    assert entries
    for entry in entries:
        assert entry.name in out
    if not any(_is_available(e) for e in entries):
        assert "--random-weights" in out
    assert not ANSI.search(result.output)  # not a terminal: no colour codes


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["depth", "x.png", "--guide", "g.png", "--device", "tpu"], "--device"),
        (["depth", "x.png", "--guide", "g.png", "--backend", "onnx"], "--backend"),
        (["flow", "x.flo", "--guide", "g.png", "--max-flow", "0"], "--max-flow"),
        (["depth", "x.png", "--guide", "g.png", "--depth-scale", "-1"], "--depth-scale"),
        (["depth", "x.png", "--guide", "g.png", "--tile", "0"], "--tile"),
        (["depth", "x.png"], "--guide"),
        (["depth", "x.png", "--guide", "g.png", "--no-such-option"], "--no-such-option"),
    ],
)
def test_bad_options_are_usage_errors(invoke, args, fragment):
    result = invoke(*args)
    assert result.exit_code == 2
    assert fragment in result.output


def test_glob_with_a_single_file_is_a_usage_error(invoke, depth_pair):
    low, guide = depth_pair
    result = invoke("depth", low, "--guide", guide, "--glob", "*.png", "--random-weights")
    assert result.exit_code == 2
    one_line_error(result.stderr, "--glob")

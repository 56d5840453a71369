"""Fixtures for the command-line tests: tiny generated inputs (nothing read from outside
the repository) and an in-process runner that keeps stdout and stderr apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import FACTOR, bicubic_model, depth_ramp, flow_ramp, guide_image
from typer.testing import CliRunner

from pacup.cli import app
from pacup.io import write_depth, write_flow, write_image


@pytest.fixture(autouse=True)
def hidden_weights(request):
    """Command-line tests run as on a machine without installed weights (so --random-weights
    and the missing-model messages are exercised), except those marked ``shipped_weights``."""
    if request.node.get_closest_marker("shipped_weights") is None:
        request.getfixturevalue("no_installed_weights")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(runner, monkeypatch, tmp_path):
    """Run the app in-process from ``tmp_path`` (so default outputs land there)."""
    monkeypatch.chdir(tmp_path)

    def run(*args):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture
def depth_pair(tmp_path) -> tuple[Path, Path]:
    """(low-res 16-bit PNG in mm, guide PNG) for x4, in ``tmp_path/in/``."""
    (tmp_path / "in").mkdir(exist_ok=True)
    low = tmp_path / "in" / "scene_depth.png"
    guide = tmp_path / "in" / "scene_rgb.png"
    write_depth(low, depth_ramp())
    write_image(guide, guide_image())
    return low, guide


@pytest.fixture
def flow_pair(tmp_path) -> tuple[Path, Path]:
    """(low-res .flo, guide PNG) for x4, in ``tmp_path/in/``."""
    (tmp_path / "in").mkdir(exist_ok=True)
    low = tmp_path / "in" / "scene_flow.flo"
    guide = tmp_path / "in" / "scene_img0.png"
    write_flow(low, flow_ramp())
    write_image(guide, guide_image(1))
    return low, guide


@pytest.fixture
def bicubic_model_file(tmp_path):
    """Factory: path of a saved bicubic-equivalent model for ``task`` at ``factor``."""
    from pacup.models import save_model

    def make(task: str, factor: int = FACTOR) -> Path:
        path = tmp_path / f"bicubic-{task}-x{factor}.safetensors"
        if not path.exists():
            save_model(bicubic_model(task, factor), path, {"task": task, "description": "test: bicubic"})
        return path

    return make

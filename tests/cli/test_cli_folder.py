"""Folder mode: pairing by stem, failures that do not stop the batch, --skip-existing,
--glob, the summary, and the usage errors specific to folders."""

import re

import numpy as np
import pytest
from cli_helpers import H, W, depth_ramp, flow_ramp, guide_image, no_temp_files, one_line_error

from pacup.io import read_depth, read_flow, read_guide, write_depth, write_flow, write_image


def make_depth_folder(tmp_path, stems=("a", "b", "c"), corrupt=(), guide_ext=".png"):
    low_dir, rgb_dir = tmp_path / "low", tmp_path / "rgb"
    low_dir.mkdir()
    rgb_dir.mkdir()
    for i, stem in enumerate(stems):
        if stem in corrupt:
            (low_dir / f"{stem}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        else:
            write_depth(low_dir / f"{stem}.png", depth_ramp(base=1000.0 + 100 * i))
        write_image(rgb_dir / f"{stem}{guide_ext}", guide_image(i))
    return low_dir, rgb_dir


def summary_counts(stdout):
    """(ok, failed, skipped) from the summary table's data row."""
    assert "pacup summary" in stdout, stdout
    rows = [line for line in stdout.splitlines() if re.search(r"\d+(\.\d+)? s", line) and "[" not in line]
    numbers = re.findall(r"(?<![\w.])(\d+)(?![\w.])", rows[-1])
    return tuple(int(n) for n in numbers[:3])


def test_corrupt_file_in_the_middle_does_not_stop_the_batch(invoke, tmp_path):
    low_dir, rgb_dir = make_depth_folder(tmp_path, corrupt=("b",), guide_ext=".jpg")
    out_dir = tmp_path / "out"  # created by the command
    result = invoke("depth", low_dir, "--guide", rgb_dir, "-o", out_dir, "--random-weights")
    assert result.exit_code == 1
    line = one_line_error(result.stderr, str(low_dir / "b.png"))
    assert "a.png" not in line and "c.png" not in line
    for stem in ("a", "c"):
        depth, _ = read_depth(out_dir / f"{stem}.png")
        assert depth.shape == (H, W)
    assert not (out_dir / "b.png").exists()
    assert no_temp_files(out_dir)
    assert summary_counts(result.stdout) == (2, 1, 0)
    # Without a terminal there is no progress bar: one plain log line per good file.
    assert "[1/3] ok a.png" in result.stdout and "[3/3] ok c.png" in result.stdout
    assert "\x1b[" not in result.output


def test_skip_existing(invoke, tmp_path):
    low_dir, rgb_dir = make_depth_folder(tmp_path)
    out_dir = tmp_path / "out"
    result = invoke("depth", low_dir, "--guide", rgb_dir, "-o", out_dir, "--random-weights")
    assert result.exit_code == 0, result.output
    assert summary_counts(result.stdout) == (3, 0, 0)

    (out_dir / "a.png").write_bytes(b"sentinel")
    (out_dir / "c.png").unlink()
    result = invoke("depth", low_dir, "--guide", rgb_dir, "-o", out_dir, "--random-weights", "--skip-existing")
    assert result.exit_code == 0, result.output
    assert summary_counts(result.stdout) == (1, 0, 2)
    assert (out_dir / "a.png").read_bytes() == b"sentinel"
    assert read_depth(out_dir / "c.png")[0].shape == (H, W)

    # Asking for a visualisation that does not exist yet makes the item run again.
    result = invoke("depth", low_dir, "--guide", rgb_dir, "-o", out_dir, "--random-weights", "--skip-existing",
                    "--vis", tmp_path / "vis")
    assert result.exit_code == 0, result.output
    assert summary_counts(result.stdout) == (3, 0, 0)
    assert read_guide(tmp_path / "vis" / "b.png").shape == (H, W, 3)


def test_unpaired_files_are_reported(invoke, tmp_path):
    low_dir, rgb_dir = make_depth_folder(tmp_path, stems=("a", "b"))
    (rgb_dir / "b.png").rename(rgb_dir / "zz.png")
    result = invoke("depth", low_dir, "--guide", rgb_dir, "-o", tmp_path / "out", "--random-weights")
    assert result.exit_code == 1
    one_line_error(result.stderr, str(low_dir / "b.png"), "no guide")
    assert "zz.png" in result.stderr and "no input" in result.stderr
    assert (tmp_path / "out" / "a.png").is_file()
    assert summary_counts(result.stdout) == (1, 1, 0)


def test_glob_and_hidden_files(invoke, tmp_path):
    low_dir, rgb_dir = make_depth_folder(tmp_path, stems=("keep_1", "keep_2", "other"))
    (low_dir / ".keep_3.tmp-1234.png").write_bytes(b"an interrupted write")
    result = invoke("depth", low_dir, "--guide", rgb_dir, "-o", tmp_path / "out", "--random-weights",
                    "--glob", "keep_*")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["keep_1.png", "keep_2.png"]
    assert "no input" not in result.stderr  # other.png's guide is unused on purpose, not unpaired


def test_flow_folder_with_vis_and_out_ext(invoke, tmp_path):
    low_dir, rgb_dir = tmp_path / "flow", tmp_path / "frames"
    low_dir.mkdir()
    rgb_dir.mkdir()
    for i, stem in enumerate(("f0", "f1")):
        write_flow(low_dir / f"{stem}.flo", flow_ramp() * (i + 1))
        write_image(rgb_dir / f"{stem}.png", guide_image(i))
    result = invoke("flow", low_dir, "--guide", rgb_dir, "-o", tmp_path / "out", "--random-weights",
                    "--out-ext", ".npy", "--vis", tmp_path / "vis", "--vis-strip", tmp_path / "strip", "--max-flow", "20")
    assert result.exit_code == 0, result.output
    for stem in ("f0", "f1"):
        assert np.load(tmp_path / "out" / f"{stem}.npy").shape == (H, W, 2)
        assert read_guide(tmp_path / "vis" / f"{stem}.png").shape == (H, W, 3)
        assert read_guide(tmp_path / "strip" / f"{stem}.png").shape == (H, 3 * W + 8, 3)

    result = invoke("flow", low_dir, "--guide", rgb_dir, "-o", tmp_path / "out_flo", "--random-weights")
    assert result.exit_code == 0, result.output
    assert read_flow(tmp_path / "out_flo" / "f1.flo")[0].shape == (H, W, 2)  # default format .flo


def test_missing_model_stops_the_batch_once(invoke, tmp_path, no_installed_weights):
    low_dir, rgb_dir = make_depth_folder(tmp_path)
    result = invoke("depth", low_dir, "--guide", rgb_dir, "-o", tmp_path / "out")
    assert result.exit_code == 2
    one_line_error(result.stderr, "--random-weights")
    assert not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    "setup, fragments",
    [
        ("empty", ["low", "no input files"]),
        ("only-other-files", ["low", "no input files"]),
        ("no-output", ["-o"]),
        ("guide-is-a-file", ["--guide", "folder"]),
        ("output-is-input", ["differ"]),
        ("bad-out-ext", [".jpg"]),
    ],
)
def test_folder_usage_errors(invoke, tmp_path, setup, fragments):
    low_dir, rgb_dir = make_depth_folder(tmp_path, stems=() if setup == "empty" else ("a",))
    args = ["depth", low_dir, "--guide", rgb_dir, "-o", tmp_path / "out", "--random-weights"]
    if setup == "only-other-files":
        (low_dir / "a.png").rename(low_dir / "a.txt")
    elif setup == "no-output":
        args = args[:4] + args[6:]
    elif setup == "guide-is-a-file":
        args[3] = rgb_dir / "a.png"
    elif setup == "output-is-input":
        args[5] = low_dir
    elif setup == "bad-out-ext":
        args += ["--out-ext", "jpg"]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    one_line_error(result.stderr, *fragments)
    assert not (tmp_path / "out").exists()


def test_interrupt_stops_with_a_summary(invoke, tmp_path, monkeypatch):
    import pacup.cli

    low_dir, rgb_dir = make_depth_folder(tmp_path)
    real_process = pacup.cli.process
    calls = []

    def interrupted_on_second(job, settings):
        calls.append(job.low.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_process(job, settings)

    monkeypatch.setattr(pacup.cli, "process", interrupted_on_second)
    result = invoke("depth", low_dir, "--guide", rgb_dir, "-o", tmp_path / "out", "--random-weights")
    assert result.exit_code == 130
    assert calls == ["a.png", "b.png"]  # nothing after the interrupt
    assert "interrupted" in result.stdout and summary_counts(result.stdout) == (1, 0, 0)
    one_line_error(result.stderr, "interrupted after 1 of 3")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]

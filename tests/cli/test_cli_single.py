"""`pacup depth` / `pacup flow` on single files: outputs, units, visualisations, errors."""

import struct

import numpy as np
import pytest
from cli_helpers import FACTOR, H, LOW_H, LOW_W, W, bicubic_reference, depth_ramp, flow_ramp, guide_image, no_temp_files, one_line_error

import pacup
from pacup.io import read_depth, read_flow, read_guide, write_depth, write_image

# Bicubic differs near the borders depending on how the pipeline pads; compare the interior.
B = 2 * FACTOR


def interior(a):
    return a[B:-B, B:-B]


# --------------------------------------------------------------------------- success


def test_depth_random_weights_default_output_in_cwd(invoke, depth_pair, tmp_path):
    low, guide = depth_pair
    result = invoke("depth", low, "--guide", guide, "--random-weights")
    assert result.exit_code == 0, result.output
    out = tmp_path / "scene_depth_up.png"  # current directory, not next to the input
    assert out.is_file() and not (tmp_path / "in" / "scene_depth_up.png").exists()
    depth, _ = read_depth(out)
    assert depth.shape == (H, W)
    assert "UNTRAINED" in result.stderr and result.stderr.count("UNTRAINED") == 1
    assert "wrote" in result.stdout and str(out.name) in result.stdout


def test_depth_without_weights_says_what_to_do(invoke, depth_pair, tmp_path):
    low, guide = depth_pair
    result = invoke("depth", low, "--guide", guide)
    assert result.exit_code == 2
    one_line_error(result.stderr, f"depth-x{FACTOR}", "--random-weights", "--model")
    assert not (tmp_path / "scene_depth_up.png").exists()


def test_depth_keeps_input_units(invoke, depth_pair, bicubic_model_file, tmp_path):
    low, guide = depth_pair
    result = invoke("depth", low, "--guide", guide, "--model", bicubic_model_file("depth"), "-o", "up.png")
    assert result.exit_code == 0, result.output
    depth, valid = read_depth(tmp_path / "up.png")
    assert valid.all()
    expected = bicubic_reference(depth_ramp(), FACTOR)
    np.testing.assert_allclose(interior(depth), interior(expected), atol=1.0)  # mm, PNG rounds to 1


def test_depth_scale_converts_units_and_format_follows_extension(invoke, depth_pair, bicubic_model_file, tmp_path):
    low, guide = depth_pair
    model = bicubic_model_file("depth")
    expected = bicubic_reference(depth_ramp(), FACTOR)

    result = invoke("depth", low, "--guide", guide, "--model", model, "--depth-scale", "1000",
                    "--out-depth-scale", "1", "-o", "metres.npy")
    assert result.exit_code == 0, result.output
    metres = np.load(tmp_path / "metres.npy")
    assert metres.dtype == np.float32 and metres.shape == (H, W)
    np.testing.assert_allclose(interior(metres), interior(expected) / 1000, atol=2e-4)

    # --depth-scale alone applies on read and write: the file keeps millimetres.
    result = invoke("depth", low, "--guide", guide, "--model", model, "--depth-scale", "1000", "-o", "mm.pfm")
    assert result.exit_code == 0, result.output
    mm, _ = read_depth(tmp_path / "mm.pfm")
    np.testing.assert_allclose(interior(mm), interior(expected), atol=0.2)


def test_depth_png_output_of_metres_warns(invoke, bicubic_model_file, tmp_path):
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "m.npy", depth_ramp() / 1000)
    write_image(tmp_path / "in" / "m.png", guide_image())
    result = invoke("depth", tmp_path / "in" / "m.npy", "--guide", tmp_path / "in" / "m.png",
                    "--model", bicubic_model_file("depth"), "-o", "m_up.png")
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "--out-depth-scale" in result.stderr


def test_flow_default_is_flo_in_full_res_pixels(invoke, flow_pair, bicubic_model_file, tmp_path):
    low, guide = flow_pair
    result = invoke("flow", low, "--guide", guide, "--model", bicubic_model_file("flow"))
    assert result.exit_code == 0, result.output
    flow, valid = read_flow(tmp_path / "scene_flow_up.flo")
    assert flow.shape == (H, W, 2) and valid.all()
    expected = FACTOR * bicubic_reference(flow_ramp(), FACTOR)
    np.testing.assert_allclose(interior(flow), interior(expected), atol=1e-3)


def test_flow_output_format_follows_extension(invoke, flow_pair, bicubic_model_file, tmp_path):
    low, guide = flow_pair
    result = invoke("flow", low, "--guide", guide, "--model", bicubic_model_file("flow"), "--out-ext", "npy")
    assert result.exit_code == 0, result.output
    flow = np.load(tmp_path / "scene_flow_up.npy")
    assert flow.shape == (H, W, 2)


@pytest.mark.parametrize("task", ["depth", "flow"])
def test_vis_and_strip(invoke, depth_pair, flow_pair, task, tmp_path):
    low, guide = depth_pair if task == "depth" else flow_pair
    result = invoke(task, low, "--guide", guide, "--random-weights", "-o", f"out{'.png' if task == 'depth' else '.flo'}",
                    "--vis", "vis.png", "--vis-strip", "strip.png")
    assert result.exit_code == 0, result.output
    vis = read_guide(tmp_path / "vis.png")
    strip = read_guide(tmp_path / "strip.png")
    assert vis.shape == (H, W, 3)
    assert strip.shape == (H, 3 * W + 2 * 4, 3)  # guide | input | result with 4-px gaps
    np.testing.assert_array_equal(strip[:, :W], read_guide(guide))


def test_flow_max_flow_fixes_the_normalisation(invoke, flow_pair, bicubic_model_file, tmp_path):
    low, guide = flow_pair
    model = bicubic_model_file("flow")
    # |flow| is a few pixels: against --max-flow 1000 every colour is nearly white ...
    result = invoke("flow", low, "--guide", guide, "--model", model, "-o", "a.flo", "--max-flow", "1000",
                    "--vis", "white.png", "--vis-strip", "white_strip.png")
    assert result.exit_code == 0, result.output
    assert read_guide(tmp_path / "white.png").min() > 240
    strip = read_guide(tmp_path / "white_strip.png")
    assert strip[:, W + 4 :].min() > 240  # input panel and result panel share the normalisation
    # ... and against 0.01 px every vector is out of range (saturated and darkened).
    result = invoke("flow", low, "--guide", guide, "--model", model, "-o", "b.flo", "--max-flow", "0.01",
                    "--vis", "dark.png")
    assert result.exit_code == 0, result.output
    dark = read_guide(tmp_path / "dark.png")
    assert dark.max(axis=2).max() <= 192 and dark.min(axis=2).max() < 10


def test_quiet_prints_nothing_on_success(invoke, depth_pair):
    low, guide = depth_pair
    result = invoke("depth", low, "--guide", guide, "--random-weights", "--quiet")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "UNTRAINED" in result.stderr  # the random-weights warning is never silenced


def test_skip_existing_single_file(invoke, depth_pair, tmp_path):
    low, guide = depth_pair
    out = tmp_path / "scene_depth_up.png"
    out.write_bytes(b"sentinel")
    result = invoke("depth", low, "--guide", guide, "--random-weights", "--skip-existing")
    assert result.exit_code == 0
    assert out.read_bytes() == b"sentinel"
    assert "skipped" in result.stdout


# --------------------------------------------------------------------------- bad inputs (exit 2)


def _write_truncated_flo(path):
    path.write_bytes(struct.pack("<fii", 202021.25, LOW_W, LOW_H) + b"\0" * 40)


def _write_wrong_tag_flo(path):
    path.write_bytes(b"NOPE" + struct.pack("<ii", LOW_W, LOW_H) + b"\0" * (LOW_W * LOW_H * 8))


@pytest.mark.parametrize(
    "task, make_low, fragments",
    [
        ("depth", None, ["not found"]),
        ("depth", lambda p: p.write_bytes(b"definitely not a PNG"), []),
        ("depth", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30), []),
        ("flow", _write_truncated_flo, ["truncated"]),
        ("flow", _write_wrong_tag_flo, ["tag"]),
    ],
    ids=["missing", "garbage-png", "truncated-png", "truncated-flo", "wrong-tag-flo"],
)
def test_unreadable_input(invoke, task, make_low, fragments, tmp_path):
    (tmp_path / "in").mkdir()
    low = tmp_path / "in" / ("bad.png" if task == "depth" else "bad.flo")
    if make_low is not None:
        make_low(low)
    guide = tmp_path / "in" / "g.png"
    write_image(guide, guide_image())
    result = invoke(task, low, "--guide", guide, "--random-weights")
    assert result.exit_code == 2
    one_line_error(result.stderr, str(low), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nothing written


def test_missing_guide(invoke, depth_pair, tmp_path):
    low, _ = depth_pair
    result = invoke("depth", low, "--guide", tmp_path / "nope.png", "--random-weights")
    assert result.exit_code == 2
    one_line_error(result.stderr, "nope.png", "not found")


@pytest.mark.parametrize(
    "guide_size, extra, fragments",
    [
        ((H, 2 * W), [], []),  # ratios differ between the axes
        ((LOW_H - 2, LOW_W - 2), [], []),  # guide smaller than the input
        ((H, W), ["--factor", "8"], ["8"]),  # factor disagrees with the sizes
        ((LOW_H * 32, LOW_W * 32), [], ["32"]),  # beyond x16
    ],
    ids=["size-mismatch", "guide-smaller", "factor-mismatch", "unsupported-factor"],
)
def test_size_and_factor_mismatch(invoke, tmp_path, guide_size, extra, fragments):
    (tmp_path / "in").mkdir()
    low, guide = tmp_path / "in" / "d.png", tmp_path / "in" / "g.png"
    write_depth(low, depth_ramp())
    write_image(guide, guide_image(0, *guide_size))
    result = invoke("depth", low, "--guide", guide, "--random-weights", *extra)
    assert result.exit_code == 2, result.output
    line = one_line_error(result.stderr, str(low), *fragments)
    assert str(guide) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_unknown_output_extension(invoke, depth_pair, tmp_path):
    low, guide = depth_pair
    result = invoke("depth", low, "--guide", guide, "--random-weights", "-o", "out.jpg")
    assert result.exit_code == 2
    one_line_error(result.stderr, "out.jpg", "extension")
    result = invoke("depth", low, "--guide", guide, "--random-weights", "--vis", "vis.nope")
    assert result.exit_code == 2
    one_line_error(result.stderr, "vis.nope")


def test_input_with_unknown_extension_is_named(invoke, tmp_path):
    (tmp_path / "in").mkdir()
    low, guide = tmp_path / "in" / "depth.jpg", tmp_path / "in" / "g.png"
    write_image(low, guide_image(0, LOW_H, LOW_W))
    write_image(guide, guide_image())
    result = invoke("depth", low, "--guide", guide, "--random-weights")
    assert result.exit_code == 2
    line = one_line_error(result.stderr, str(low), "extension", ".npy")
    assert "_up" not in line  # about the input, not the default output name derived from it


def test_output_that_is_a_folder(invoke, depth_pair, tmp_path):
    low, guide = depth_pair
    (tmp_path / "outdir").mkdir()
    result = invoke("depth", low, "--guide", guide, "--random-weights", "-o", tmp_path / "outdir")
    assert result.exit_code == 2
    one_line_error(result.stderr, "outdir", "folder")
    assert not list((tmp_path / "outdir").iterdir())


def test_output_over_input_is_refused(invoke, depth_pair):
    low, guide = depth_pair
    before = low.read_bytes()
    result = invoke("depth", low, "--guide", guide, "--random-weights", "-o", low)
    assert result.exit_code == 2
    one_line_error(result.stderr, str(low), "overwrite")
    assert low.read_bytes() == before


def test_unknown_model_and_wrong_task(invoke, depth_pair, tmp_path):
    low, guide = depth_pair
    result = invoke("depth", low, "--guide", guide, "--model", "no-such-model")
    assert result.exit_code == 2
    one_line_error(result.stderr, "no-such-model")
    result = invoke("depth", low, "--guide", guide, "--model", f"flow-x{FACTOR}", "--random-weights")
    assert result.exit_code == 2
    one_line_error(result.stderr, "flow")


def test_corrupt_model_file(invoke, depth_pair, tmp_path):
    low, guide = depth_pair
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    result = invoke("depth", low, "--guide", guide, "--model", bad)
    assert result.exit_code == 2
    one_line_error(result.stderr, str(bad))


def test_cuda_requested_without_cuda(invoke, depth_pair):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    low, guide = depth_pair
    result = invoke("depth", low, "--guide", guide, "--random-weights", "--device", "cuda")
    assert result.exit_code == 2
    one_line_error(result.stderr, "cuda")


# --------------------------------------------------------------------------- failures (exit 1)


def test_missing_output_directory(invoke, depth_pair, tmp_path):
    low, guide = depth_pair
    result = invoke("depth", low, "--guide", guide, "--random-weights", "-o", tmp_path / "nodir" / "out.png")
    assert result.exit_code == 1
    one_line_error(result.stderr, "out.png", "does not exist")


def test_model_failure_leaves_no_output(invoke, depth_pair, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("simulated kernel failure")

    monkeypatch.setattr(pacup, "upsample_depth", boom)
    low, guide = depth_pair
    result = invoke("depth", low, "--guide", guide, "--random-weights", "-o", "out.png", "--vis", "vis.png")
    assert result.exit_code == 1
    one_line_error(result.stderr, str(low), "simulated kernel failure")
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "vis.png").exists()
    assert no_temp_files(tmp_path)

    result = invoke("depth", low, "--guide", guide, "--random-weights", "--debug")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "simulated kernel failure" in result.stderr


def test_failed_write_leaves_no_partial_file(invoke, depth_pair, tmp_path, monkeypatch):
    """A failure half-way through writing the output leaves neither the file nor a temp file."""
    import pacup.io.depth as depth_module

    real_atomic_write = depth_module.atomic_write

    def disk_full(path, write):
        def half(fh):
            fh.write(b"\x89PNG partial")
            raise OSError(28, "No space left on device")

        return real_atomic_write(path, half)

    monkeypatch.setattr(depth_module, "atomic_write", disk_full)
    low, guide = depth_pair
    result = invoke("depth", low, "--guide", guide, "--random-weights", "-o", "out.png")
    assert result.exit_code == 1
    one_line_error(result.stderr, "out.png", "no space left")
    assert not (tmp_path / "out.png").exists()
    assert no_temp_files(tmp_path)

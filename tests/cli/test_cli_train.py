"""`pacup train` and `pacup eval`: tiny runs end to end, Ctrl-C and resume, usage errors."""

import json

import pytest
from cli_helpers import one_line_error
from safetensors.torch import load_file

TINY = ("--factor", "4", "--steps", "4", "--batch", "2", "--crop", "32", "--val-every", "0", "--log-every", "1",
        "--ckpt-every", "100", "--threads", "1", "--synthetic-pool", "8")


def test_train_writes_a_model_the_other_commands_take(invoke, tmp_path, depth_pair):
    run = tmp_path / "run"
    result = invoke("train", "--task", "depth", *TINY, "-o", run)
    assert result.exit_code == 0, result.output
    assert "trained 4 steps" in result.stdout
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4]
    cfg = json.loads((run / "config.json").read_text())
    # The released recipe's data mix and warmup are the defaults.
    assert (cfg["factor"], cfg["disparity"], cfg["clutter"], cfg["frames"], cfg["guide_aug"], cfg["warmup"],
            cfg["misalign"], cfg["guide_contrast"], cfg["two_tone"], cfg["texture_gain"]) == \
        (4, 0.5, 0.5, 0.0, 0.0, 150, 0.0, 1.0, 0.0, 1.0)
    model = run / "model.safetensors"
    # The model runs in `pacup depth` and in `pacup eval`.
    low, guide = depth_pair
    result = invoke("depth", low, "--guide", guide, "--model", model, "-o", tmp_path / "up.png")
    assert result.exit_code == 0, result.output
    out_json = tmp_path / "eval.json"
    result = invoke("eval", "--data", "synthetic-depth", "--n", "1", "--size", "32", "--factor", "4",
                    "--method", "bicubic", "--method", model, "--json", out_json, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "run/model" in result.stdout and "bicubic" in result.stdout
    names = [r["method"] for r in json.loads(out_json.read_text())["results"]]
    assert names == ["bicubic", "run/model"]
    result = invoke("eval", "--data", "synthetic-depth", "--n", "1", "--size", "32", "--factor", "4",
                    "--method", model, "--ensemble", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "run/model+ensemble" in result.stdout
    # A finished run is not overwritten by accident.
    result = invoke("train", "--task", "depth", *TINY, "-o", run)
    assert result.exit_code == 2
    one_line_error(result.stderr, str(run), "model.safetensors")


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes_the_same_run(invoke, tmp_path, monkeypatch):
    import pacup.train.loop as loop

    straight = tmp_path / "straight"
    assert invoke("train", "--task", "flow", *TINY, "--guide-contrast", "2", "-o", straight).exit_code == 0
    cfg = json.loads((straight / "config.json").read_text())
    assert (cfg["disparity"], cfg["clutter"], cfg["frames"], cfg["guide_aug"], cfg["guide_contrast"]) == \
        (0.0, 0.0, 0.5, 0.8, 2.0)

    real_loss, calls = loop.masked_loss, {"n": 0}

    def interrupt_on_third_step(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_loss(*args, **kw)

    run = tmp_path / "interrupted"
    monkeypatch.setattr(loop, "masked_loss", interrupt_on_third_step)
    result = invoke("train", "--task", "flow", *TINY, "--guide-contrast", "2", "-o", run)
    assert result.exit_code == 130
    assert "--resume" in result.stderr
    import torch

    assert torch.load(run / "last_state.pt", weights_only=False)["step"] == 2
    assert not (run / "model.safetensors").exists()

    monkeypatch.setattr(loop, "masked_loss", real_loss)
    # Resuming with another recipe would make a run that is neither: refused, nothing written.
    result = invoke("train", "--task", "flow", *TINY, "-o", run, "--resume")
    assert result.exit_code == 2
    one_line_error(result.stderr, "config.json", "guide_contrast 1.0", "2.0")
    assert torch.load(run / "last_state.pt", weights_only=False)["step"] == 2
    result = invoke("train", "--task", "flow", *TINY, "--guide-contrast", "2", "-o", run, "--resume")
    assert result.exit_code == 0, result.output
    a, b = load_file(straight / "model.safetensors"), load_file(run / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_train_ablation(invoke, tmp_path):
    run = tmp_path / "k1"
    result = invoke("train", "--task", "depth", *TINY, "--ablation", "k1", "-o", run, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    from pacup.train.ablations import load_any_model

    assert type(load_any_model(run / "model.safetensors")).__name__ == "PacJointUpsampleK1"


def test_train_with_leaky_activations(invoke, tmp_path):
    run = tmp_path / "leaky"
    result = invoke("train", "--task", "flow", *TINY, "--negative-slope", "0.1", "-o", run, "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["negative_slope"] == 0.1
    from pacup.models import load_model

    model, _ = load_model(run / "model.safetensors")
    assert model.config["negative_slope"] == 0.1  # the file rebuilds the leaky network
    result = invoke("train", "--task", "flow", *TINY, "--negative-slope", "1", "-o", tmp_path / "bad")
    assert result.exit_code == 2 and "--negative-slope" in result.stderr


def test_train_with_pyramid_guidance(invoke, tmp_path):
    run = tmp_path / "pyramid"
    result = invoke("train", "--task", "depth", *TINY, "--guide-pyramid", "-o", run, "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["guide_pyramid"] is True
    from pacup.models import load_model

    model, _ = load_model(run / "model.safetensors")
    assert model.guide_pyramid and model.config["guide_pyramid"] is True
    # A fine-tune takes the architecture from its source file.
    tuned = tmp_path / "tuned"
    result = invoke("train", "--task", "depth", *TINY, "--init-from", run / "model.safetensors", "-o", tuned, "--quiet")
    assert result.exit_code == 0, result.output
    assert load_model(tuned / "model.safetensors")[0].guide_pyramid


def test_train_fine_tunes_with_a_constant_learning_rate(invoke, tmp_path):
    # The released depth-x16's last 500 steps: --init-from, --loss mse, --lr-schedule constant.
    base = tmp_path / "base"
    assert invoke("train", "--task", "depth", *TINY, "--warmup", "0", "-o", base, "--quiet").exit_code == 0
    ft = tmp_path / "ft"
    result = invoke("train", "--task", "depth", *TINY, "--init-from", base / "model.safetensors", "--loss", "mse",
                    "--lr", "2e-4", "--lr-schedule", "constant", "--warmup", "0", "-o", ft, "--quiet")
    assert result.exit_code == 0, result.output
    cfg = json.loads((ft / "config.json").read_text())
    assert (cfg["lr_schedule"], cfg["loss"], cfg["init_from"]) == ("constant", "mse", str(base / "model.safetensors"))
    lrs = [json.loads(x)["lr"] for x in (ft / "log.jsonl").read_text().splitlines()]
    assert lrs == pytest.approx([2e-4] * 4)
    cosine = [json.loads(x)["lr"] for x in (base / "log.jsonl").read_text().splitlines()]
    assert cosine == sorted(cosine, reverse=True) and cosine[-1] < 1e-3  # the default decays from --lr
    result = invoke("train", "--task", "depth", *TINY, "--lr-schedule", "linear", "-o", tmp_path / "bad")
    assert result.exit_code == 2 and "--lr-schedule" in result.stderr


def test_train_with_a_moving_average(invoke, tmp_path):
    import torch

    run = tmp_path / "ema"
    # --val-every 4 (the last one given wins): the summary line then reports both scores.
    result = invoke("train", "--task", "depth", *TINY, "--val-every", "4", "--ema", "0.99", "-o", run)
    assert result.exit_code == 0, result.output
    assert "moving average:" in result.stdout and "x bicubic" in result.stdout
    assert json.loads((run / "config.json").read_text())["ema"] == 0.99
    avg, raw = load_file(str(run / "model.safetensors")), load_file(str(run / "raw.safetensors"))
    assert any(not torch.equal(avg[k], raw[k]) for k in raw)
    result = invoke("train", "--task", "depth", *TINY, "--ema", "1", "-o", tmp_path / "bad")
    assert result.exit_code == 2 and "--ema" in result.stderr


@pytest.mark.shipped_weights
def test_train_fine_tunes_a_released_model(invoke, tmp_path):
    run = tmp_path / "ft"
    result = invoke("train", "--task", "depth", *TINY, "--init-from", "depth-x4", "--lr", "2e-4", "-o", run)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["init_from"] == "depth-x4"


@pytest.mark.parametrize("args, fragments", [
    (("train", "--factor", "3"), ["--factor", "2, 4, 8, 16"]),
    (("train", "--data", "no/such/folder"), ["no/such/folder", "not a folder"]),
    (("train", "--data", "synthetic-cats"), ["synthetic-cats"]),
    (("train", "--factor", "8", "--crop", "36"), ["--crop 36", "multiple"]),
    (("train", "--resume", "-o", "empty_run"), ["empty_run", "nothing to resume"]),
    (("train", "--task", "flow", "--clutter", "0.5"), ["clutter", "depth only"]),
    (("train", "--task", "flow", "--misalign", "0.5"), ["misalign", "depth only"]),
    (("train", "--task", "depth", "--two-tone", "0.5"), ["two_tone", "flow only"]),
    (("train", "--task", "flow", "--texture-gain", "4"), ["texture_gain", "depth only"]),
    (("train", "--init-from", "no/such.safetensors"), ["--init-from no/such.safetensors"]),
    (("eval", "--data", "no/such/folder"), ["no/such/folder", "not a folder"]),
    (("eval", "--data", "synthetic-depth", "--factor", "5"), ["--factor"]),
    (("eval", "--data", "synthetic-depth", "--n", "1", "--size", "32", "--factor", "4", "--method", "nosuch"),
     ["unknown model 'nosuch'"]),
    (("eval", "--data", "synthetic-depth", "--n", "1", "--size", "32", "--factor", "4", "--task", "flow"),
     ["synthetic-depth", "not flow"]),
    (("eval", "--data", "synthetic-depth", "--json", "out.txt"), ["out.txt", "JSON"]),
])
def test_usage_errors(invoke, args, fragments):
    result = invoke(*args)
    assert result.exit_code == 2
    one_line_error(result.stderr, *fragments)


def test_eval_reads_a_user_folder(invoke, tmp_path):
    """RGB + ground-truth pairs in a folder (the layout pacup.train.folders documents)."""
    import numpy as np

    from pacup.io import write_depth, write_image

    data = tmp_path / "mine"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        gt = np.full((48, 64), 2000.0, np.float32)
        gt[:, 30:] = 1200.0
        write_depth(data / f"s{i}_depth.png", gt)
        rgb = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        rgb[:, 30:] = 255 - rgb[:, 30:] // 4
        write_image(data / f"s{i}_rgb.png", rgb)
    result = invoke("eval", "--data", data, "--factor", "4", "--method", "bicubic", "--method", "jbu")
    assert result.exit_code == 0, result.output
    assert "2 image(s)" in result.stdout and "jbu" in result.stdout


@pytest.mark.shipped_weights
def test_eval_and_models_use_the_released_weights(invoke):
    result = invoke("eval", "--data", "synthetic-depth", "--n", "1", "--size", "64", "--factor", "4",
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    for name in ("bicubic", "jbu", "guided", "depth-x4"):
        assert name in result.stdout
    result = invoke("models")
    assert result.exit_code == 0
    lines = [line for line in result.stdout.splitlines() if "depth-x4" in line]
    assert lines and "yes" in lines[0]

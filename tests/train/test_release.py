"""The release tool: runs -> score rows, markdown table, weights with clean metadata."""

import json

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from pacup.io import write_depth, write_image
from pacup.train.loop import TrainConfig, train
from pacup.train.release import RELEASED_LABEL, evaluate_runs, markdown, write_weights

TINY = dict(task="depth", factor=4, variant="lite", crop=32, batch=2, threads=1, log_every=1, steps=3,
            synthetic_pool=4, progress=False, val_every=3, val_size=2)


def _folder(root):
    root.mkdir()
    rng = np.random.default_rng(0)
    gt = np.full((48, 64), 2000.0, np.float32)
    gt[:, 30:] = 1200.0
    write_depth(root / "s0_depth.png", gt)
    rgb = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    rgb[:, 30:] = 255 - rgb[:, 30:] // 4
    write_image(root / "s0_rgb.png", rgb)
    return root


def test_release_scores_a_run_with_its_ablation_and_ships_the_average(tmp_path):
    runs = tmp_path / "runs"
    s = train(TrainConfig(**TINY, ema=0.9, out_dir=str(runs / "depth-x4-pac")))
    train(TrainConfig(**TINY, ablation="k1", out_dir=str(runs / "depth-x4-k1")))
    rows = evaluate_runs(runs, {"depth": _folder(tmp_path / "data"), "flow": None}, factors=(4, 8))
    methods = [r["method"] for r in rows]
    assert methods == ["bicubic", "guided", "jbu", RELEASED_LABEL, RELEASED_LABEL + " --ensemble",
                       "K = 1 ablation"]  # no x8 run, no concat run: nothing invented for them
    pac = rows[3]
    assert rows[0]["vs_bicubic"] == 1.0 and pac["vs_bicubic"] == pac["value"] / rows[0]["value"]
    # The shipped file is the moving average, so the run's validation figure is the average's.
    assert pac["run"]["ema"] == 0.9 and pac["run"]["val_rel_rmse"] == s["ema_val_rel_rmse"]
    assert rows[5]["run"]["ema"] == 0.0
    table = markdown(rows)
    assert table.splitlines()[0] == f"| depth: {pac['metric']} (ratio to bicubic) | x4 |"
    assert f"| {RELEASED_LABEL} | {pac['value']:.3f} ({pac['vs_bicubic']:.2f}) |" in table

    weights = tmp_path / "weights"
    weights.mkdir()
    released = write_weights(runs, rows, weights)
    assert list(released) == ["depth-x4", "depth-x4-k1"] and released["depth-x4"]["variant"] == "lite"
    shipped = weights / "depth-x4.safetensors"
    avg = load_file(str(runs / "depth-x4-pac" / "model.safetensors"))
    got = load_file(str(shipped))
    assert all(torch.equal(got[k], avg[k]) for k in avg)
    with safe_open(str(shipped), "pt") as f:
        meta = f.metadata()
    assert "moving average of the weights with decay 0.9" in meta["description"]
    assert meta["description"].startswith("PacJointUpsample Lite x4 (depth)")
    assert json.loads(meta["scores"])["vs_bicubic"] == round(pac["vs_bicubic"], 3)
    assert json.loads(meta["training"])["ema"] == 0.9


def test_release_of_a_leaky_network_names_its_activation_for_the_registry(tmp_path):
    from pacup.models import registry as R

    runs = tmp_path / "runs"
    train(TrainConfig(**{**TINY, "val_every": 0}, negative_slope=0.1, out_dir=str(runs / "depth-x4-pac")))
    rows = evaluate_runs(runs, {"depth": _folder(tmp_path / "data"), "flow": None}, factors=(4,))
    weights = tmp_path / "weights"
    weights.mkdir()
    released = write_weights(runs, rows, weights)["depth-x4"]
    # What goes into the registry's table rebuilds the shipped file's architecture.
    assert released["variant"] == {"variant": "lite", "negative_slope": 0.1}
    assert released["description"].startswith("PacJointUpsample Lite with leaky ReLU 0.1 x4 (depth)")
    with safe_open(str(weights / "depth-x4.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["config"]) == R._config(4, released["variant"])
    assert R.arch_words(R._config(4, released["variant"])) == "PacJointUpsample Lite with leaky ReLU 0.1"
    assert R.arch_words(R._config(8, "full")) == "PacJointUpsample Full"


def test_release_of_a_pyramid_guidance_network_names_it_for_the_registry(tmp_path):
    from pacup.models import registry as R

    runs = tmp_path / "runs"
    train(TrainConfig(**{**TINY, "val_every": 0}, guide_pyramid=True, out_dir=str(runs / "depth-x4-pac")))
    rows = evaluate_runs(runs, {"depth": _folder(tmp_path / "data"), "flow": None}, factors=(4,))
    weights = tmp_path / "weights"
    weights.mkdir()
    released = write_weights(runs, rows, weights)["depth-x4"]
    assert released["variant"] == {"variant": "lite", "guide_pyramid": True}
    assert released["description"].startswith("PacJointUpsample Lite with pyramid guidance x4 (depth)")
    with safe_open(str(weights / "depth-x4.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["config"]) == R._config(4, released["variant"])
    both = R._config(4, {"variant": "full", "negative_slope": 0.1, "guide_pyramid": True})
    assert R.arch_words(both) == "PacJointUpsample Full with leaky ReLU 0.1 and pyramid guidance"


def test_release_of_a_fine_tune_describes_its_whole_training(tmp_path):
    # A model fine-tuned from another run (--init-from RUN/model.safetensors): the shipped
    # description, the score rows and the file's metadata give both stages, not the last one.
    runs = tmp_path / "runs"
    base = tmp_path / "base"
    train(TrainConfig(**{**TINY, "val_every": 0}, out_dir=str(base)))
    train(TrainConfig(**{**TINY, "val_every": 0, "steps": 2}, init_from=str(base / "model.safetensors"),
                      loss="mse", lr=2e-4, lr_schedule="constant", out_dir=str(runs / "depth-x4-pac")))
    rows = evaluate_runs(runs, {"depth": _folder(tmp_path / "data"), "flow": None}, factors=(4,))
    facts = next(r for r in rows if r["method"] == RELEASED_LABEL)["run"]
    assert (facts["steps"], facts["loss"], facts["lr_schedule"]) == (2, "mse", "constant")
    assert (facts["init_from"]["steps"], facts["init_from"]["loss"]) == (3, "l1")
    assert "init_from" not in facts["init_from"]
    weights = tmp_path / "weights"
    weights.mkdir()
    desc = write_weights(runs, rows, weights)["depth-x4"]["description"]
    assert ("trained by `pacup train` for 3 steps (batch 2, 32-px crops), then fine-tuned for 2 steps "
            "(batch 2, 32-px crops; MSE loss, constant learning rate 0.0002) on synthetic RGB-D rooms only.") in desc
    with safe_open(str(weights / "depth-x4.safetensors"), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["training"])["init_from"] == str(base / "model.safetensors")
    assert [c["steps"] for c in json.loads(meta["training_sources"])] == [3]


def test_release_of_a_grown_network_names_both_factors(tmp_path):
    # A network grown from a smaller factor (--init-from an x2 run into an x4 one).
    runs = tmp_path / "runs"
    base = tmp_path / "base"
    train(TrainConfig(**{**TINY, "val_every": 0, "factor": 2}, out_dir=str(base)))
    train(TrainConfig(**{**TINY, "val_every": 0, "steps": 2}, init_from=str(base / "model.safetensors"),
                      loss="mse", lr=5e-4, out_dir=str(runs / "depth-x4-pac")))
    rows = evaluate_runs(runs, {"depth": _folder(tmp_path / "data"), "flow": None}, factors=(4,))
    facts = next(r for r in rows if r["method"] == RELEASED_LABEL)["run"]
    assert (facts["factor"], facts["init_from"]["factor"]) == (4, 2)
    weights = tmp_path / "weights"
    weights.mkdir()
    desc = write_weights(runs, rows, weights)["depth-x4"]["description"]
    assert ("trained by `pacup train` for 3 steps (batch 2, 32-px crops) at x2, then grown to x4 "
            "(pacup.train.grow) and trained for 2 steps (batch 2, 32-px crops; MSE loss, peak learning rate "
            "0.0005) on synthetic RGB-D rooms only.") in desc


def test_release_ships_the_ablations_beside_the_model_with_an_index(tmp_path):
    # The ablations go to weights/ablations/ (not the package), listed with sha256 and
    # scores in index.json, so that the model card's comparisons can be rerun by pacup eval.
    import hashlib

    from pacup.train.ablations import PacJointUpsampleK1, load_any_model
    from pacup.train.evaluate import evaluate
    from pacup.train.folders import load_dataset

    runs = tmp_path / "runs"
    train(TrainConfig(**{**TINY, "val_every": 0}, out_dir=str(runs / "depth-x4-pac")))
    train(TrainConfig(**{**TINY, "val_every": 0}, ablation="k1", out_dir=str(runs / "depth-x4-k1")))
    data = _folder(tmp_path / "data")
    rows = evaluate_runs(runs, {"depth": data, "flow": None}, factors=(4,))
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "ablations").mkdir()
    (weights / "ablations" / "index.json").write_text(json.dumps({"flow-x8-k1": {"sha256": "x"}}))
    shipped = write_weights(runs, rows, weights)["depth-x4-k1"]
    path = weights / "ablations" / "depth-x4-k1.safetensors"
    assert shipped["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    index = json.loads((weights / "ablations" / "index.json").read_text())
    assert list(index) == ["depth-x4-k1", "flow-x8-k1"] and index["depth-x4-k1"] == shipped  # merged, sorted
    assert shipped["description"].startswith("K = 1 ablation (PacJointUpsampleK1) of PacJointUpsample Lite x4 (depth); "
                                             "trained by `pacup train` for 3 steps")
    model = load_any_model(path)
    assert isinstance(model, PacJointUpsampleK1)
    row = next(r for r in rows if r["method"] == "K = 1 ablation")
    again = evaluate(str(path), load_dataset(str(data), "depth"), "B", 4)
    assert again["metrics"][row["metric"]] == row["value"]  # the shipped file scores as its run did


def test_release_scores_new_ablations_against_the_released_model(tmp_path):
    # No PAC run (it shipped earlier, or its run is gone): --released puts the registered
    # weights in its place; without it nothing is scored, and no file is written for them.
    runs = tmp_path / "runs"
    train(TrainConfig(**{**TINY, "val_every": 0}, ablation="k1", out_dir=str(runs / "depth-x4-k1")))
    data = _folder(tmp_path / "data")
    assert evaluate_runs(runs, {"depth": data, "flow": None}, factors=(4,)) == []
    rows = evaluate_runs(runs, {"depth": data, "flow": None}, factors=(4, 8), released=True)
    assert [r["method"] for r in rows] == ["bicubic", "guided", "jbu", RELEASED_LABEL, RELEASED_LABEL + " --ensemble",
                                           "K = 1 ablation"]  # x8: no ablation run, so no row
    released = next(r for r in rows if r["method"] == RELEASED_LABEL)
    assert "run" not in released and released["factor"] == 4
    from pacup.train.evaluate import evaluate
    from pacup.train.folders import load_dataset

    direct = evaluate("depth-x4", load_dataset(str(data), "depth"), "B", 4)
    assert released["value"] == direct["metrics"][released["metric"]]
    weights = tmp_path / "weights"
    weights.mkdir()
    assert list(write_weights(runs, rows, weights)) == ["depth-x4-k1"]
    assert not (weights / "depth-x4.safetensors").exists()

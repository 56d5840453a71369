"""The ablation weights in weights/ablations/ (the model card's K = 1 and concat-CNN
comparisons): listed in index.json with their sha256 and scores, loadable by pacup eval,
trained, and behind the released model they are compared with, as recorded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from safetensors import safe_open

from pacup.models import registry as R
from pacup.train.ablations import ConcatJointUpsample, PacJointUpsampleK1, load_any_model

FOLDER = Path(__file__).resolve().parents[2] / "weights" / "ablations"
INDEX = json.loads((FOLDER / "index.json").read_text())
ARCHS = {"k1": PacJointUpsampleK1, "concat": ConcatJointUpsample}


def test_index_lists_every_file_and_only_those():
    assert INDEX, "weights/ablations/index.json is empty"
    assert sorted(p.stem for p in FOLDER.glob("*.safetensors")) == sorted(INDEX)


@pytest.mark.parametrize("name", sorted(INDEX))
def test_ablation_file_matches_its_entry_and_is_trained(name, assert_trained):
    entry, path = INDEX[name], FOLDER / f"{name}.safetensors"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    task, fx, kind = name.split("-")
    model = load_any_model(path)
    assert isinstance(model, ARCHS[kind]) and model.factor == int(fx[1:])
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert meta["task"] == task and json.loads(meta["scores"]) == entry["scores"]
    assert meta["description"] == entry["description"]
    # The comparison the model card draws: the released model of that name is ahead.
    released = R._RELEASED[f"{task}-{fx}"][1]
    assert released["vs_bicubic"] < entry["scores"]["vs_bicubic"]
    assert_trained(model, task, model.factor)

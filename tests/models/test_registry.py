"""Model registry: names, defaults, missing weights, random weights, save/load, checksums."""

from __future__ import annotations

import json
import os
import warnings

import pytest
import torch

from pacup.errors import InputError, ModelFileError, ModelNotAvailableError
from pacup.models import (
    ModelEntry,
    PacJointUpsample,
    RandomWeightsWarning,
    build_model,
    default_model,
    file_sha256,
    get_entry,
    list_models,
    load_model,
    save_model,
    weights_dirs,
)
from pacup.models import registry as R


def _inputs(factor, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 1, 5, 6, generator=g), torch.rand(1, 3, 5 * factor, 6 * factor, generator=g)


def test_registry_lists_every_name():
    names = [e.name for e in list_models()]
    for task in ("depth", "flow"):
        for f in (2, 4, 8, 16):
            assert f"{task}-x{f}" in names
            assert default_model(task, f) == f"{task}-x{f}"
    for e in list_models():
        assert e.file == f"{e.name}.safetensors"
        assert e.config["factor"] == e.factor
        assert build_model(e.config).factor == e.factor
        assert e.description
        assert e.available == (e.name in R._RELEASED)
    assert {e.task for e in list_models("flow")} == {"flow"}


@pytest.mark.parametrize("task,factor", [("depth", 8), ("depth", 16), ("flow", 4), ("flow", 8), ("flow", 16)])
def test_released_alternatives_are_listed_but_never_the_default(task, factor):
    # depth-x8, depth-x16, flow-x4, flow-x8 and flow-x16 are full-width networks; the Lite
    # ones they replaced ship under the same name with "-lite".
    name = f"{task}-x{factor}"
    alt = get_entry(f"{name}-lite")
    assert (alt.task, alt.factor, alt.config["variant"]) == (task, factor, "lite")
    assert get_entry(name).config["variant"] == "full"
    assert default_model(task, factor) == name
    assert f"give --model {name}-lite" in alt.description
    assert alt.sha256 != get_entry(name).sha256
    names = [e.name for e in list_models(task)]
    assert names.index(f"{name}-lite") == names.index(name) + 1


def test_released_entries_build_the_architecture_they_name():
    # _RELEASED's third field is a variant name or a dict of PacJointUpsample options.
    for n, (_, _, arch) in R._RELEASED.items():
        opts = {"variant": arch} if isinstance(arch, str) else arch
        config = get_entry(n).config
        for key, value in opts.items():
            assert config[key] == value, (n, key)
        assert config.get("negative_slope", 0.0) == opts.get("negative_slope", 0.0)
        built = build_model(config).config
        assert built["channels"] == (32 if opts["variant"] == "full" else 16)
        assert built.get("negative_slope", 0.0) == opts.get("negative_slope", 0.0)
    for leaky in ("flow-x4", "flow-x8", "flow-x16"):
        assert get_entry(leaky).config["negative_slope"] == 0.1
        assert "leaky ReLU 0.1" in get_entry(leaky).description
    for relu in ("flow-x4-lite", "flow-x8-lite", "flow-x16-lite"):
        assert "leaky" not in get_entry(relu).description and get_entry(relu).config["negative_slope"] == 0.0


def test_unknown_names_and_tasks():
    with pytest.raises(ModelNotAvailableError, match="unknown model 'depth-x5'.*depth-x8"):
        get_entry("depth-x5")
    with pytest.raises(ModelNotAvailableError, match="unknown model 'nonsense'"):
        load_model("nonsense")
    with pytest.raises(InputError, match="no depth model for factor 3"):
        default_model("depth", 3)
    with pytest.raises(InputError, match="unknown task"):
        default_model("normals", 4)
    with pytest.raises(InputError, match="task and factor"):
        load_model(None, task="depth")


def test_missing_weights_raise_a_clear_error(no_installed_weights):
    with pytest.raises(ModelNotAvailableError) as err:
        load_model("depth-x8")
    msg = str(err.value)
    assert "no trained weights are installed" in msg and "depth-x8.safetensors" in msg
    assert "allow_random=True" in msg and "--random-weights" in msg
    with pytest.raises(ModelNotAvailableError):
        load_model(None, task="flow", factor=4)


def test_allow_random_warns_and_is_reproducible(no_installed_weights):
    before = torch.random.get_rng_state()
    with pytest.warns(RandomWeightsWarning, match="RANDOM"):
        m1, entry = load_model("depth-x4", allow_random=True)
    # Building random weights must not disturb the caller's random stream.
    assert torch.equal(before, torch.random.get_rng_state())
    with pytest.warns(RandomWeightsWarning):
        m2, _ = load_model(None, task="depth", factor=4, allow_random=True)
    assert entry.name == "depth-x4" and isinstance(m1, PacJointUpsample) and m1.factor == 4
    assert not m1.training
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def test_task_and_factor_checked():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        with pytest.raises(InputError, match="is a depth model, not a flow model"):
            load_model("depth-x4", task="flow", allow_random=True)
        with pytest.raises(InputError, match="upsamples x4, but x8 is needed"):
            load_model("depth-x4", factor=8, allow_random=True)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(7)
    net = PacJointUpsample(4, "lite", residual=True, guide_scale=2.5).eval()
    with torch.no_grad():
        net.guide_scale.fill_(6.0)  # a "trained" value differing from the config's initial one
    path = tmp_path / "mine.safetensors"
    sha = save_model(net, path, {"task": "flow", "scores": {"epe": 0.3}, "description": "test", "steps": 12})
    assert sha == file_sha256(path)
    loaded, entry = load_model(path)
    assert loaded.config == net.config
    assert entry.name == "mine" and entry.task == "flow" and entry.factor == 4
    assert entry.scores == {"epe": 0.3} and entry.description == "test" and entry.sha256 == sha
    assert entry.available
    low, guide = _inputs(4)
    with torch.no_grad():
        assert torch.equal(loaded(low, guide), net(low, guide))
    # A string path works too, and the stored metadata is plain JSON.
    loaded2, _ = load_model(str(path), task="flow", factor=4)
    assert loaded2.config == net.config
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
    assert json.loads(meta["config"]) == net.config and meta["steps"] == "12"
    with pytest.raises(InputError, match="upsamples x4, but x8"):
        load_model(path, factor=8)


def test_save_model_is_byte_deterministic(tmp_path):
    # The same model and metadata give the same file (so the same registered sha256) every
    # time; safetensors alone orders its header from a hash map (measured: it differed).
    from safetensors.torch import load_file

    torch.manual_seed(3)
    net = PacJointUpsample(8, "lite", residual=True)
    meta = {"task": "depth", "description": "d \"quoted\" \u00e9", "scores": {"b": 1, "a": 2}, "z": "1", "m": "2"}
    shas = {save_model(net, tmp_path / f"m{i}.safetensors", meta) for i in range(6)}
    assert len(shas) == 1
    raw = (tmp_path / "m0.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0 and json.loads(raw[8 : 8 + n])["__metadata__"]["description"] == meta["description"]
    got = load_file(str(tmp_path / "m0.safetensors"))
    assert got.keys() == net.state_dict().keys()
    assert all(torch.equal(got[k], v.float()) for k, v in net.state_dict().items())
    _, entry = load_model(tmp_path / "m0.safetensors")
    assert entry.description == meta["description"] and entry.scores == {"a": 2, "b": 1}


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_model_permissions_follow_umask(tmp_path):
    # Written through a temporary file renamed into place, like every other pacup output:
    # readable by the team (0644 under umask 022), not mkstemp's owner-only 0600.
    old = os.umask(0o022)
    try:
        save_model(PacJointUpsample(2), tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o644


def test_save_model_rejects_bad_input(tmp_path):
    with pytest.raises(InputError, match="no config"):
        save_model(torch.nn.Conv2d(1, 1, 3), tmp_path / "a.safetensors")
    with pytest.raises(InputError, match="override 'config'"):
        save_model(PacJointUpsample(2), tmp_path / "a.safetensors", {"config": "{}"})
    with pytest.raises(InputError, match="task"):
        save_model(PacJointUpsample(2), tmp_path / "a.safetensors", {"task": "normals"})
    with pytest.raises(ModelFileError, match="does not exist"):
        save_model(PacJointUpsample(2), tmp_path / "nodir" / "a.safetensors")
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


def test_bad_files_raise_model_file_error(tmp_path):
    missing = tmp_path / "gone.safetensors"
    with pytest.raises(ModelFileError, match="gone.safetensors: model file does not exist"):
        load_model(missing)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00not a safetensors file at all")
    with pytest.raises(ModelFileError, match="junk.safetensors: not a readable safetensors file"):
        load_model(junk)
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(ModelFileError, match="plain.safetensors: no pacup model config"):
        load_model(plain)
    wrong = tmp_path / "wrong.safetensors"
    state = PacJointUpsample(2).state_dict()
    save_file(state, str(wrong), metadata={"pacup_format": "1", "config": json.dumps(PacJointUpsample(4).config)})
    with pytest.raises(ModelFileError, match="wrong.safetensors: weights do not fit the config"):
        load_model(wrong)


@pytest.fixture
def fake_release(tmp_path, monkeypatch):
    """A registry entry 'depth-x2' whose file lives in a temporary weights folder."""
    torch.manual_seed(11)
    net = PacJointUpsample(2).eval()
    sha = save_model(net, tmp_path / "depth-x2.safetensors", {"task": "depth"})
    entry = ModelEntry("depth-x2", "depth", 2, net.config, "depth-x2.safetensors", sha, {}, "test release")
    monkeypatch.setitem(R._REGISTRY, "depth-x2", entry)
    monkeypatch.setattr(R, "weights_dirs", lambda: [tmp_path])
    return net, entry, tmp_path


def test_released_file_loads_with_checksum(fake_release):
    net, entry, _ = fake_release
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a real release must not warn
        loaded, got = load_model(None, task="depth", factor=2)
    assert got == entry and entry.available
    low, guide = _inputs(2)
    with torch.no_grad():
        assert torch.equal(loaded(low, guide), net(low, guide))


def test_checksum_mismatch_names_the_file(fake_release, monkeypatch):
    _, entry, folder = fake_release
    monkeypatch.setitem(R._REGISTRY, "depth-x2", ModelEntry(**{**entry.__dict__, "sha256": "0" * 64}))
    with pytest.raises(ModelFileError, match=r"depth-x2\.safetensors: checksum mismatch.*expected sha256 0{64}"):
        load_model("depth-x2")
    # allow_random never hides a corrupt file.
    with pytest.raises(ModelFileError):
        load_model("depth-x2", allow_random=True)
    (folder / "depth-x2.safetensors").unlink()
    with pytest.raises(ModelNotAvailableError, match="depth-x2"):
        load_model("depth-x2")


def test_registry_file_must_match_entry_config(fake_release, monkeypatch):
    _, entry, folder = fake_release
    other = PacJointUpsample(2, "lite")
    sha = save_model(other, folder / "depth-x2.safetensors")
    monkeypatch.setitem(R._REGISTRY, "depth-x2", ModelEntry(**{**entry.__dict__, "sha256": sha}))
    with pytest.raises(ModelFileError, match="differs from the registry entry"):
        load_model("depth-x2")


def test_weights_dirs_include_the_checkout_folder():
    dirs = weights_dirs()
    assert dirs and all(d.is_dir() for d in dirs)
    assert any(d.name in ("weights", "_weights") for d in dirs)


@pytest.mark.parametrize("name", sorted(R._RELEASED))
def test_released_weights_are_trained(name, assert_trained):
    """Every released file is installed, passes its checksum, and beats bicubic on scenes of
    the synthetic evaluation split (seeded apart from training): trained, not random."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, entry = load_model(name)
    assert entry.available and entry.sha256 == R._RELEASED[name][0]
    assert entry.scores == R._RELEASED[name][1]
    assert_trained(model, entry.task, entry.factor)

"""Shared test settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Test tensors are tiny and gain nothing from intra-op threads; on a loaded machine the
    threads' synchronisation costs seconds per test."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def no_installed_weights(monkeypatch):
    """Behave as a machine on which no weight file is installed (whatever ships in weights/)."""
    from pacup.models import registry

    monkeypatch.setattr(registry, "weights_dirs", lambda: [])


@pytest.fixture
def assert_trained():
    """``assert_trained(model, task, factor)``: the model beats bicubic by 5 % on scenes of
    the synthetic evaluation split (seeded apart from training): trained, not random (a
    random concat-CNN, whose output starts at bicubic, scores 0.995 and fails)."""
    from pacup.train.evaluate import evaluate
    from pacup.train.folders import synthetic_split

    def check(model, task: str, factor: int):
        samples = synthetic_split(task, n=3, size=128)
        protocol = "B" if task == "depth" else "flow"
        ours = evaluate(model, samples, protocol, factor)
        bicubic = evaluate("bicubic", samples, protocol, factor)
        key = "rmse" if task == "depth" else "epe"
        assert ours["metrics"][key] < 0.95 * bicubic["metrics"][key], (ours["metrics"], bicubic["metrics"])

    return check

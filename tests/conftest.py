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

"""DataLoader workers under loky's start method (cells of `nlpx ablate ... hydra/launcher=joblib`)."""

import multiprocessing

import pytest
import torch
from torch.utils.data import DataLoader

from nlpx.data.loader_workers import worker_kwargs


def test_no_workers_is_just_the_count():
    assert worker_kwargs(0) == {"num_workers": 0}


def test_standard_start_method_keeps_the_dataloaders_default():
    assert multiprocessing.get_start_method(allow_none=True) in (None, "fork", "spawn", "forkserver")
    assert worker_kwargs(2) == {"num_workers": 2, "persistent_workers": True}


@pytest.fixture
def loky_default():
    """The process-wide default start method as a joblib (loky) worker has it when the Hydra joblib
    launcher runs a cell (seen there: multiprocessing.get_start_method() == "loky")."""
    import joblib.externals.loky.backend.context as loky_context

    assert "loky" in loky_context.mp.context._concrete_contexts  # importing it registers the method

    before = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("loky", force=True)
    yield
    multiprocessing.set_start_method(before, force=True)


def test_workers_start_under_lokys_default(loky_default):
    data = torch.arange(6)
    # what the loaders did before: torch's DataLoader cannot start its worker with loky's context
    with pytest.raises(AttributeError, match="has no attribute 'env'"):
        list(DataLoader(data, batch_size=2, num_workers=1))
    kwargs = worker_kwargs(1)
    assert kwargs["multiprocessing_context"].get_start_method() == multiprocessing.get_all_start_methods()[0]
    assert [b.tolist() for b in DataLoader(data, batch_size=2, **kwargs)] == [[0, 1], [2, 3], [4, 5]]

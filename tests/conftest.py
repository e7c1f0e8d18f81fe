import pytest
import torch

from tests.scenes import disc_scene


@pytest.fixture
def scene():
    return disc_scene()


@pytest.fixture(scope="module")
def disc():
    return disc_scene()


@pytest.fixture
def box_around():
    def make(gt: torch.Tensor, margin: int):
        ys, xs = torch.nonzero(gt, as_tuple=True)
        h, w = gt.shape
        return (max(0, xs.min().item() - margin), max(0, ys.min().item() - margin),
                min(w, xs.max().item() + 1 + margin), min(h, ys.max().item() + 1 + margin))
    return make

import pytest
import torch

from tests.scenes import disc_scene


@pytest.fixture
def scene():
    return disc_scene()


@pytest.fixture
def box_around():
    def make(gt: torch.Tensor, margin: int):
        ys, xs = torch.nonzero(gt, as_tuple=True)
        h, w = gt.shape
        return (max(0, xs.min().item() - margin), max(0, ys.min().item() - margin),
                min(w, xs.max().item() + 1 + margin), min(h, ys.max().item() + 1 + margin))
    return make


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """(SD-inpainting folder, DINO folder) of tiny random models, written once per session."""
    from export.random_weights import save_tiny_sd_inpainting, save_tiny_vit

    root = tmp_path_factory.mktemp("weights")
    return str(save_tiny_sd_inpainting(root / "sd")), str(save_tiny_vit(root / "dino", "dino"))

import pytest
import torch

from tests.scenes import disc_scene

# The suite's longest chain: the GPU script's dry run waits for the session's AOTInductor packages
# (tests/aoti_engine.py, minutes to compile), then runs for minutes itself. It goes first, so that
# one xdist worker starts the chain at once while the other takes the rest; the other AOTInductor
# tests go last, when the packages are made, so that no worker sits waiting on their file lock.
# (xdist still hands out its groups, largest first, before these: the benchmarks and the browser.)
FIRST = ("tests/test_gpu_script.py::",)
LAST = ("tests/test_aoti.py::",)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: 0 if item.nodeid.startswith(FIRST) else 2 if item.nodeid.startswith(LAST) else 1)


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


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """(SD-inpainting folder, DINO folder) of tiny random models, written once per session."""
    from tests.shared import tiny_sd_checkpoint, tiny_vit_checkpoint

    return str(tiny_sd_checkpoint(tmp_path_factory)), str(tiny_vit_checkpoint(tmp_path_factory, "dino"))


@pytest.fixture
def coco_dataset(tmp_path):
    """(root, annotations, detections, annotations dict): see tests.scenes.coco_scenes."""
    pytest.importorskip("pycocotools", reason="the coco extra is not installed: pip install -e '.[coco]'")
    from tests.scenes import coco_scenes
    root = tmp_path / "coco"
    return (root, *coco_scenes(root))

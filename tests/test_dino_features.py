"""DinoFeatures on tiny random DINO / DINOv2 ViTs saved in the real transformers format."""
import pytest
import torch
from transformers import Dinov2Model, Dinov2WithRegistersModel, ViTModel

from paintseg_engine.features.dino import IMAGENET_MEAN, IMAGENET_STD, DinoFeatures
from paintseg_engine.pretrained import MissingWeightsError
from export.random_weights import TINY_VIT, TINY_VIT_KINDS
from tests.shared import tiny_vit_checkpoint

# kind -> (model class, patch size, tokens before the patches: CLS and registers)
KINDS = {"dino": (ViTModel, 8, 1), "dinov2": (Dinov2Model, 14, 1), "dinov2_registers": (Dinov2WithRegistersModel, 14, 5)}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return {kind: tiny_vit_checkpoint(tmp_path_factory, kind) for kind in TINY_VIT_KINDS}


def images(n=2, height=40, width=52, seed=0):
    return torch.rand(n, 3, height, width, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", TINY_VIT_KINDS)
def test_grid_of_patch_features_at_input_size(checkpoints, kind):
    model_class, patch, _ = KINDS[kind]
    features = DinoFeatures(str(checkpoints[kind]), input_size=6 * patch)
    assert isinstance(features.vit, model_class)
    out = features(images())
    assert out.shape == (2, TINY_VIT["hidden_size"], 6, 6)


@pytest.mark.parametrize("kind", TINY_VIT_KINDS)
def test_features_are_the_last_block_patch_tokens_without_cls_or_registers(checkpoints, kind):
    _, patch, leading_tokens = KINDS[kind]
    features = DinoFeatures(str(checkpoints[kind]), input_size=4 * patch)
    batch = images()
    with torch.no_grad():
        tokens = features.vit(features.preprocess(batch), **features.forward_options).last_hidden_state
    assert tokens.shape[1] == leading_tokens + 16
    expected = tokens[:, leading_tokens:].transpose(1, 2).reshape(2, -1, 4, 4)
    torch.testing.assert_close(features(batch), expected)


def test_imagenet_normalisation_at_input_size(checkpoints):
    features = DinoFeatures(str(checkpoints["dino"]), input_size=32)
    assert (IMAGENET_MEAN, IMAGENET_STD) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    mean, std = torch.tensor(IMAGENET_MEAN)[None, :, None, None], torch.tensor(IMAGENET_STD)[None, :, None, None]
    at_mean = features.preprocess(mean.expand(1, 3, 20, 30))
    one_std_above = features.preprocess((mean + std).expand(1, 3, 20, 30))
    assert at_mean.shape == (1, 3, 32, 32)
    torch.testing.assert_close(at_mean, torch.zeros_like(at_mean))
    torch.testing.assert_close(one_std_above, torch.ones_like(one_std_above))


def test_each_image_is_featurised_independently_of_its_batch(checkpoints):
    features = DinoFeatures(str(checkpoints["dino"]), input_size=32)
    batch = images(3)
    torch.testing.assert_close(features(batch)[1:2], features(batch[1:2]), rtol=1e-4, atol=1e-5)


def test_precision_setting(checkpoints):
    features = DinoFeatures(str(checkpoints["dinov2"]), input_size=28, dtype="bfloat16")
    assert features.vit.dtype == torch.bfloat16
    assert features(images()).dtype == torch.bfloat16


@pytest.mark.parametrize("bad, message", [
    (dict(input_size=30), "input_size must be a multiple of the patch size 8"),
    (dict(dtype="half"), "dtype must be one of"),
])
def test_bad_settings_name_the_setting(checkpoints, bad, message):
    with pytest.raises(ValueError, match=message):
        DinoFeatures(str(checkpoints["dino"]), **{"input_size": 32, **bad})


def test_rejects_images_that_are_not_a_batch(checkpoints):
    with pytest.raises(ValueError, match=r"images must be \[N, 3, H, W\]"):
        DinoFeatures(str(checkpoints["dino"]), input_size=32)(torch.rand(3, 32, 32))


def test_missing_folder_says_what_to_download_where(tmp_path):
    folder = tmp_path / "dino-vitb8"
    with pytest.raises(MissingWeightsError) as error:
        DinoFeatures(str(folder))
    assert f"hf download facebook/dino-vitb8 --local-dir {folder}" in str(error.value)


def test_missing_hub_model_offline_says_what_to_download_where():
    with pytest.raises(MissingWeightsError, match="hf download facebook/dinov2-base --local-dir checkpoints/dinov2-base"):
        DinoFeatures("facebook/dinov2-base", input_size=840, local_files_only=True)

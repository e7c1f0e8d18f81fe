"""The weight-free painter's exemplar methods fill a hole with texture copied from outside it."""
import cv2
import pytest
import torch

from paintseg_engine.painters import OpenCVPainter


def stripes(height=64, width=64, period=8):
    """Black and white vertical stripes: a texture no propagating fill can reproduce."""
    xx = torch.arange(width)[None, :].expand(height, width)
    gray = ((xx // (period // 2)) % 2).float()
    return gray[None].expand(3, height, width).clone()


def hole(height=64, width=64):
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[20:44, 20:44] = True
    return mask


def centre_std(method: str) -> float:
    """Standard deviation of the painted hole's centre, far from its border (stripes: 0.5)."""
    painter = OpenCVPainter(methods=(method,), work_size=64)
    painter.set_image(stripes())
    painted = painter.paint(hole(), num_samples=1)[0]
    return painted[0, 26:38, 26:38].std().item()


@pytest.mark.skipif(not hasattr(cv2, "xphoto"), reason="needs opencv-contrib (cv2.xphoto)")
@pytest.mark.parametrize("method", ["shiftmap", "fsr_fast"])
def test_exemplar_fill_keeps_the_texture_where_telea_smears_it(method):
    assert centre_std(method) > 0.4  # black and white stripes deep inside the hole
    assert centre_std("telea") < 0.3  # smeared towards grey


@pytest.mark.skipif(not hasattr(cv2, "xphoto"), reason="needs opencv-contrib (cv2.xphoto)")
def test_exemplar_fill_leaves_the_rest_of_the_image_alone():
    image, mask = stripes(), hole()
    painter = OpenCVPainter(methods=("shiftmap", "telea"), work_size=64)
    painter.set_image(image)
    painted = painter.paint(mask, num_samples=3)
    assert painted.shape == (3, 3, 64, 64)
    assert torch.equal(painted[:, :, ~mask], image[:, ~mask].expand(3, -1, -1))
    assert torch.equal(painted[0], painted[2])  # samples cycle through the (deterministic) methods


def test_without_opencv_contrib_exemplar_methods_name_the_package(monkeypatch):
    monkeypatch.delattr(cv2, "xphoto", raising=False)
    with pytest.raises(ImportError, match="opencv-contrib-python-headless"):
        OpenCVPainter(methods=("telea", "shiftmap"))
    OpenCVPainter(methods=("telea", "ns"))  # the propagating methods need no contrib module


def test_unknown_method_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="shiftmap"):
        OpenCVPainter(methods=("patchmatch",))
    with pytest.raises(ValueError, match="at least one method"):
        OpenCVPainter(methods=())

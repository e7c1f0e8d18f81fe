"""Each dataset layout, on small generated data written in that layout."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from paintseg_engine.data import LAYOUTS
from paintseg_engine.run.datamodule import DatasetSpec, PaintSegDataModule, SegmentationFolder

H, W = 24, 32


def object_mask(value=255, void=None):
    mask = np.zeros((H, W), np.uint8)
    mask[6:18, 8:24] = value
    if void is not None:
        mask[5, 8:24] = void  # a one-pixel unlabeled band above the object
    return mask


def write_pair(root, image_dir, mask_dir, stem, mask, image_ext=".jpg", mask_ext=".png"):
    (root / image_dir).mkdir(parents=True, exist_ok=True)
    (root / mask_dir).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(root / image_dir / f"{stem}{image_ext}")
    Image.fromarray(mask).save(root / mask_dir / f"{stem}{mask_ext}")


# layout -> (image folder, mask folder, mask file extension, object value, void value or None)
BINARY_LAYOUTS = {
    "folder": ("images", "masks", ".png", 255, 128),
    "grabcut": ("data_GT", "boundary_GT", ".bmp", 255, 128),
    "berkeley": ("images", "masks", ".png", 255, 128),
    "davis": ("img", "gt", ".png", 1, None),  # any non-zero value is object
    "coco_mval": ("img", "gt", ".png", 255, None),
    "ecssd": ("images", "ground_truth_mask", ".png", 255, None),
    "duts_te": ("DUTS-TE-Image", "DUTS-TE-Mask", ".png", 255, None),
}


@pytest.mark.parametrize("layout", sorted(BINARY_LAYOUTS))
def test_binary_layouts_read_object_and_void(tmp_path, layout):
    image_dir, mask_dir, mask_ext, value, void = BINARY_LAYOUTS[layout]
    for stem in ("b", "a"):
        write_pair(tmp_path, image_dir, mask_dir, stem, object_mask(value, void), mask_ext=mask_ext)
    data = SegmentationFolder(tmp_path, "d", layout=layout)
    assert [s.name for s in data.samples] == ["a", "b"]
    item = data[0]
    assert item.gt.sum() == 12 * 16 and item.gt[6, 8] and not item.gt[5, 8]
    assert item.image.shape == (3, H, W) and item.name == "a" and item.dataset == "d"
    if void is None:
        assert item.ignore is None
    else:
        assert item.ignore.sum() == 16 and not (item.gt & item.ignore).any()


@pytest.mark.parametrize("layout", ["grabcut", "coco_mval", "davis"])
def test_layouts_also_accept_images_and_masks(tmp_path, layout):
    write_pair(tmp_path, "images", "masks", "x", object_mask())
    assert SegmentationFolder(tmp_path, "d", layout=layout)[0].gt.sum() == 12 * 16


def test_saliency_masks_binarize_at_half(tmp_path):
    mask = object_mask()
    mask[6, 8:24] = 100  # an anti-aliased edge below half is background
    write_pair(tmp_path, "images", "ground_truth_mask", "s", mask)
    assert SegmentationFolder(tmp_path, "d", layout="ecssd")[0].gt.sum() == 11 * 16


def write_voc(root):
    mask = np.zeros((H, W), np.uint8)
    mask[2:10, 2:12] = 1
    mask[12:22, 14:30] = 2
    mask[11, :] = 255  # void outline
    palette = Image.fromarray(mask, "P")
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [224, 224, 192] * 253)
    for stem in ("2007_000001", "2007_000002"):
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        (root / "SegmentationObject").mkdir(exist_ok=True)
        Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(root / "JPEGImages" / f"{stem}.jpg")
        palette.save(root / "SegmentationObject" / f"{stem}.png")
    (root / "ImageSets/Segmentation").mkdir(parents=True)
    (root / "ImageSets/Segmentation/val.txt").write_text("2007_000002\n")
    (root / "ImageSets/Segmentation/train.txt").write_text("2007_000001\n2007_000002\n")


def test_pascal_voc_gives_one_item_per_instance_of_the_split(tmp_path):
    write_voc(tmp_path)
    val = SegmentationFolder(tmp_path, "voc", layout="pascal_voc")
    assert [s.name for s in val.samples] == ["2007_000002_1", "2007_000002_2"]
    first, second = val[0], val[1]
    assert first.gt.sum() == 8 * 10 and second.gt.sum() == 10 * 16
    assert not (first.gt & second.gt).any() and first.ignore.sum() == W
    train = SegmentationFolder(tmp_path, "voc", layout="pascal_voc", split="train")
    assert len(train) == 4


def test_max_images_and_skip_work_on_items(tmp_path):
    for i in range(9):
        write_pair(tmp_path, "images", "masks", f"im{i}", object_mask())
    data = SegmentationFolder(tmp_path, "d", max_images=3, skip={"im4"})
    assert [s.name for s in data.samples] == ["im0", "im8"]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_missing_dataset_names_dataset_path_and_layout(tmp_path, layout):
    with pytest.raises(FileNotFoundError, match=f"'mine'.*{tmp_path / 'nowhere'}.*'{layout}' layout"):
        SegmentationFolder(tmp_path / "nowhere", "mine", layout=layout)
    (tmp_path / "empty").mkdir()
    folder = LAYOUTS[layout].folders[0][0]
    with pytest.raises(FileNotFoundError, match=f"'mine'.*no image folder.*<root>/{folder}/"):
        SegmentationFolder(tmp_path / "empty", "mine", layout=layout)
    (tmp_path / "empty" / folder).mkdir()
    masks = LAYOUTS[layout].folders[0][1]
    with pytest.raises(FileNotFoundError, match=f"'mine'.*no mask folder .*{masks}.*'{layout}' layout"):
        SegmentationFolder(tmp_path / "empty", "mine", layout=layout)


def test_bad_layout_and_missing_list_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown layout 'voc'"):
        SegmentationFolder(tmp_path, "d", layout="voc")
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "SegmentationObject").mkdir()
    with pytest.raises(FileNotFoundError, match="no list .*val.txt"):
        SegmentationFolder(tmp_path, "d", layout="pascal_voc")


def test_datamodule_reads_each_dataset_in_its_layout(tmp_path):
    write_pair(tmp_path / "g", "data_GT", "boundary_GT", "x", object_mask(255, 128), mask_ext=".bmp")
    write_voc(tmp_path / "v")
    dm = PaintSegDataModule([DatasetSpec("g", str(tmp_path / "g"), layout="grabcut"),
                             {"name": "v", "root": str(tmp_path / "v"), "layout": "pascal_voc"}])
    loaders = dm.predict_dataloader()
    assert [len(loader.dataset) for loader in loaders] == [1, 2]


SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.mark.parametrize("name, layout, count", [("GrabCut", "grabcut", 50), ("COCO_MVal", "coco_mval", 400)])
def test_shared_datasets_read_in_their_layouts(name, layout, count):
    if not (SHARED / name).is_dir():
        pytest.skip(f"{SHARED / name} is absent")
    data = SegmentationFolder(SHARED / name, name, layout=layout)
    items = [data[0], data[len(data) // 2]]
    assert len(data) == count and all(i.gt.any() and i.gt.shape == i.image.shape[-2:] for i in items)
    if layout == "grabcut":  # 42 of the 50 masks mark an unlabeled band
        assert any(i.ignore is not None for i in items)

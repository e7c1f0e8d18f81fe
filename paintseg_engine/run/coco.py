"""A COCO dataset (``layout: coco``) as predict items: one item per image, holding every instance
still to segment on it, so the segmenter sets the image once and answers each instance's prompt.

An instance is named ``<image stem>_a<annotation id>`` (ground truth) or ``<image stem>_d<k>``
(a detection), and is resumed, recorded and failed on its own: an image whose instances are all
finished is not read again. Every item also carries the dataset's ``CocoScope`` (annotations file,
image ids, category ids): what its mask AP is computed on, images without instances included.
"""
from __future__ import annotations

from pathlib import Path

from torch import Tensor
from torch.utils.data import Dataset

from ..coco_eval import box_to_xywh
from ..data.coco import (CocoAnnotations, CocoImage, CocoInstance, CocoScope, decode_segmentation, encode_mask,
                         list_coco_images)
from ..data.protocols import PromptSettings, prompt_from_gt
from ..errors import ITEM_ERRORS, ItemError, SettingsError
from ..imageio import load_image
from ..limits import DEFAULT_MAX_PIXELS, check_max_pixels
from ..prompts import BoxPrompt, Prompt
from .records import Item


class CocoImages(Dataset):
    """Items (``Item``, records.py): one per image, named by the image's stem, with ``instances``
    (each an ``Item`` with its ``prompt``, ``gt``, and ``coco``: image id, category id, score) and
    the dataset's ``coco_scope``. Prompts come from the ground truth (``prompt`` kind,
    ``settings``) or, given ``detections``, are the detector's boxes scoring at least
    ``score_threshold`` (``gt`` None). An image that cannot be read carries its ``error``, and each
    of its instances fails with it; an instance whose annotation cannot be decoded carries its own."""

    def __init__(self, root: str | Path, name: str, annotations: str | Path, prompt: str = "box",
                 skip: set[str] | None = None, max_images: int | None = None, categories: list | None = None,
                 detections: str | Path | None = None, score_threshold: float = 0.0,
                 settings: PromptSettings | None = None, coarse_mask_dir: str | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        if detections is not None and prompt != "box":
            raise SettingsError(f"dataset {name!r}: a detections file gives boxes; the prompt must be box, got {prompt!r}")
        self.name, self.prompt = name, prompt
        self.settings, self.coarse_mask_dir = settings or PromptSettings(), coarse_mask_dir
        self.max_pixels = check_max_pixels(max_pixels)
        coco = CocoAnnotations(annotations, categories)
        images = list_coco_images(root, coco, max_images=max_images, detections=detections,
                                  score_threshold=score_threshold)
        self.scope = CocoScope(str(coco.path.resolve()), tuple(i.image_id for i in images), tuple(coco.category_ids))
        # Every instance of the listed images, finished or not: what the run's table counts.
        self.item_names = [x.name for image in images for x in image.instances]
        skip = skip or set()
        # An image with nothing left to do is dropped; one with no instance at all stays (it is cheap,
        # and it carries the scope to the writer even when no image has an instance).
        self.images = [CocoImage(i.image_id, i.path, i.height, i.width,
                                 tuple(x for x in i.instances if x.name not in skip)) for i in images
                       if not i.instances or any(x.name not in skip for x in i.instances)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Item:
        image = self.images[index]
        name = image.path.stem
        if not image.instances:
            return Item(name, self.name, instances=[], coco_scope=self.scope)
        try:
            pixels = self.load_image(image)
        except ITEM_ERRORS as error:
            return Item(name, self.name, error=str(error), coco_scope=self.scope,
                        instances=[Item(i.name, self.name) for i in image.instances])
        return Item(name, self.name, pixels, instances=[self.instance(image, i) for i in image.instances],
                    coco_scope=self.scope)

    def load_image(self, image: CocoImage):
        pixels = load_image(image.path, max_pixels=self.max_pixels)
        if tuple(pixels.shape[-2:]) != (image.height, image.width):
            stored = load_image(image.path, apply_exif=False, max_pixels=self.max_pixels)
            if tuple(stored.shape[-2:]) != (image.height, image.width):
                raise ItemError(f"image {image.path} is {tuple(pixels.shape[-2:])} but its annotations say "
                                f"{(image.height, image.width)} (HxW)")
            pixels = stored  # annotated on the pixels as stored, before EXIF rotation
        return pixels

    def instance(self, image: CocoImage, instance: CocoInstance) -> Item:
        coco = {"image_id": image.image_id, "category_id": instance.category_id, "score": instance.score}
        if instance.segmentation is None:  # a detection: its box is the prompt, no ground truth
            return Item(instance.name, self.name, prompt=BoxPrompt(instance.box), coco=coco)
        try:
            gt = decode_segmentation(instance.segmentation, image.height, image.width)
            if not gt.any():
                raise ItemError("it is empty: no object to prompt")
            prompt = prompt_from_gt(gt, self.prompt, instance.name, self.settings, self.coarse_mask_dir)
        except ITEM_ERRORS as error:
            return Item(instance.name, self.name, error=f"{self.scope.annotations}, {instance.name}: {error}")
        return Item(instance.name, self.name, prompt=prompt, gt=gt, coco=coco)


def coco_record(tag: dict, mask: Tensor, prompt: Prompt) -> dict:
    """What a record keeps for the COCO results and AP of its instance: ``tag`` (image id, category
    id, score), the mask as RLE, and the prompt's own starting region (RLE, and its box as
    [x, y, w, h]), scored as the prompt's AP (a box prompt: the filled rectangle)."""
    height, width = mask.shape
    return {**tag, "segmentation": encode_mask(mask),
            "prompt_segmentation": encode_mask(prompt.initial_mask(height, width)),
            "prompt_bbox": box_to_xywh(prompt.region_box(height, width))}

"""The painter interface: fill the masked part of one image, several times."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor


class Painter(ABC):
    """Paints the masked region of an image from its unmasked context.

    Images are float tensors in [0, 1], shape [3, H, W]; masks are bool [H, W],
    True where pixels are to be repainted. AMCP calls ``set_image`` once per image
    (so painters can cache per-image work, such as VAE latents) and then, per iteration,
    ``paint_many`` with the masks of the prompts it answers together (``paint`` for one);
    ``reset_image`` drops all of it.
    """

    def set_image(self, image: Tensor) -> None:
        self._image = image

    def reset_image(self) -> None:
        """Forget the image and what was computed from it; a painter that caches more extends this."""
        self._image = None

    @property
    def image(self) -> Tensor:
        if getattr(self, "_image", None) is None:
            raise RuntimeError(f"{type(self).__name__}.set_image() must be called before paint()")
        return self._image

    @abstractmethod
    def paint(self, mask: Tensor, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
        """Return ``num_samples`` painted versions of the current image, [N, 3, H, W] in [0, 1].

        Pixels outside ``mask`` may differ from the input (a latent painter passes them
        through its VAE); AMCP decides whether to paste the original back.
        """

    def paint_many(self, masks: list[Tensor], num_samples: int,
                   generators: list[torch.Generator | None]) -> list[Tensor]:
        """``paint(mask, num_samples, generator)`` for each mask and its generator, in order.

        A painter that can share work between the masks (one network call for all their samples)
        overrides this; each result must stay the one ``paint`` gives with that mask's generator.
        """
        check_stack(masks, generators)
        return [self.paint(mask, num_samples, generator) for mask, generator in zip(masks, generators)]


def check_stack(masks: list[Tensor], generators: list[torch.Generator | None]) -> None:
    """Refuse a ``paint_many`` call whose masks and generators do not pair up."""
    if len(masks) != len(generators):
        raise ValueError(f"paint_many takes one generator per mask, got {len(masks)} masks and "
                         f"{len(generators)} generators")

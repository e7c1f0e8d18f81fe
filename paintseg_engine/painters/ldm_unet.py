"""latent-diffusion's UNet (``openaimodel.UNetModel``) as a diffusers ``UNet2DModel``.

The two differ in one setting only: the original fixes the number of attention heads
(``num_heads``) at every level, so the head width grows with the channels, while ``UNet2DModel``
fixes the head width. ``attention_heads`` sets the count instead; everything else, and the
folder format (``save_pretrained`` / ``from_pretrained``), is ``UNet2DModel``'s.
"""
from __future__ import annotations

import inspect

from diffusers import UNet2DModel
from diffusers.models.attention_processor import Attention


class LDMUNet2DModel(UNet2DModel):
    def __init__(self, attention_heads: int | None = None, **unet_2d_config):
        super().__init__(**unet_2d_config)
        self.register_to_config(attention_heads=attention_heads)
        if attention_heads is None:
            return
        for module in self.modules():
            if isinstance(module, Attention):
                if module.inner_dim % attention_heads:
                    raise ValueError(f"attention_heads={attention_heads} does not divide an attention's "
                                     f"{module.inner_dim} channels")
                module.heads = module.sliceable_head_dim = attention_heads
                module.scale = (module.inner_dim // attention_heads) ** -0.5


# diffusers reads a model's config keys off its __init__ signature: UNet2DModel's, and attention_heads.
_parent = inspect.signature(UNet2DModel.__init__)
LDMUNet2DModel.__init__.__signature__ = _parent.replace(parameters=[
    *_parent.parameters.values(),
    inspect.Parameter("attention_heads", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="int | None")])

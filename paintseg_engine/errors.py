"""The engine's error types, on the bottom floor: every part may raise them, none imports upward
to do so. Each names what a user can fix from its one-line message; the commands print them
without a traceback (``USER_ERRORS``), and a dataset run records an item's ``ITEM_ERRORS`` as a
failed item and goes on. Nothing else (a bug, an engine that does not fit) is an item's fault:
it stops the run.
"""
from __future__ import annotations


class SettingsError(ValueError):
    """A setting outside its allowed range; the message names it and the range."""


class ConfigError(ValueError):
    """A config that cannot give a segmenter here: absent, invalid, an old key, or its weights missing."""


class PromptError(ValueError):
    """A prompt that cannot describe an object in the given image (or that a segmenter cannot take).

    Among several prompts answered together, ``index`` says which one (None where there is one
    prompt); ``reason`` is the message without the ``prompts[index]: `` that names it."""

    def __init__(self, reason: str, index: int | None = None):
        super().__init__(reason if index is None else f"prompts[{index}]: {reason}")
        self.reason, self.index = reason, index


class ImageLoadError(ValueError):
    """An image or mask file that is missing, unreadable or not an image."""


class ImageTooLargeError(ImageLoadError):
    """An image of more pixels than the limit: refused before it is decoded."""


class ItemError(ValueError):
    """One dataset item that cannot be segmented or scored: no mask, a mask of another size, no object."""


class CocoFileError(ValueError):
    """A COCO annotations or detection results file that cannot be read as one; the message names it."""


class MissingWeightsError(FileNotFoundError):
    """Pretrained weights are neither in the given folder nor reachable on the hub."""


class BackendUnavailable(RuntimeError):
    """A backend's library or device is not present here (e.g. onnxruntime-gpu, tensorrt)."""


class EngineMismatch(ValueError):
    """An engine directory does not fit what it is asked to run: another model, shapes outside
    the exported ranges, another TensorRT version or GPU, a missing or altered file."""


class RunFolderError(RuntimeError):
    """The run folder cannot take this run: other settings, another run writing, not writable."""


class RunFailed(RuntimeError):
    """Items of the run failed under ``on_error: stop``; the message names the first."""


# What one item may fail with and the run go on: its files (unreadable, absent: OSError) and what
# they say. Deliberately not ValueError, the base of SettingsError and EngineMismatch: an engine
# that does not fit fails the run, it is not a bad image.
ITEM_ERRORS = (ImageLoadError, PromptError, ItemError, OSError)

# Errors a user can fix from their message alone: printed as one line, no traceback. OSError:
# what the machine refused (a full disk, a name too long), with the path it names.
USER_ERRORS = (RunFailed, RunFolderError, SettingsError, ConfigError, MissingWeightsError, EngineMismatch,
               BackendUnavailable, ImageLoadError, PromptError, ItemError, OSError, CocoFileError)

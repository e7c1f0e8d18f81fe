from .base import UNetRunner, VAERunner

__all__ = ["UNetRunner", "VAERunner"]

"""Errors of the exported-model backends: what is missing, or what does not match."""
from __future__ import annotations

from ..errors import BackendUnavailable, EngineMismatch

__all__ = ["BackendUnavailable", "EngineMismatch"]

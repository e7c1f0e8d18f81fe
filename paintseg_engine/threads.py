"""How many intra-op threads torch uses, chosen from the components that do the work.

torch starts one OpenMP thread per core. On the weight-free components' small tensors (a 320 px
frame, a few feature maps) a parallel region is shorter than the cost of waking its threads, and
on a machine with other work the threads spin waiting for each other: measured here, one
``paintseg segment`` took 6.5 s with torch's default threads and 1.1 s with one thread, the same
mask. A network (a diffusion UNet, a ViT) at full size is the opposite: large matrix products that
every core speeds up. So the policy is: one thread unless a component holds weights, then every
core this process may use (shared fairly among the processes of a multi-process run).

OpenCV, which the weight-free painter calls, and numpy's BLAS, which the graph cut's colour
models call, keep thread pools of their own: they get the same count. (BLAS's default, one
thread per core, doubled the refinement's time when two processes shared the 2 cores here.)

``threads`` in a config (``model.threads``) or ``paintseg segment --threads`` overrides it: a
positive count, or ``auto`` for the policy.
"""
from __future__ import annotations

import os
from typing import Literal, Union

import cv2
import torch
from threadpoolctl import threadpool_limits

Threads = Union[int, Literal["auto"]]


def usable_cores() -> int:
    """The cores this process may run on (its affinity, as a container or taskset limits it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def has_weights(component: object) -> bool:
    """Whether ``component`` is a network with parameters (weight-free components are plain objects)."""
    return isinstance(component, torch.nn.Module) and any(True for _ in component.parameters())


def check_threads(threads: Threads) -> Threads:
    if threads != "auto" and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be 'auto' or an integer >= 1, got {threads!r}")
    return threads


def choose_threads(threads: Threads, components: tuple[object, ...], processes: int = 1) -> int:
    """The intra-op thread count for ``components``: ``threads`` itself, or under ``auto`` one
    thread for weight-free work and the cores shared by the ``processes`` on this machine for a network."""
    if check_threads(threads) != "auto":
        return threads
    if not any(has_weights(part) for part in components):
        return 1
    return max(1, usable_cores() // max(1, processes))


def use_threads(threads: Threads, *components: object, processes: int = 1) -> int:
    """Set torch's intra-op threads, OpenCV's and BLAS's, for work on ``components`` (see
    choose_threads); returns the count."""
    count = choose_threads(threads, components, processes)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    cv2.setNumThreads(count)
    threadpool_limits(count, user_api="blas")
    return count

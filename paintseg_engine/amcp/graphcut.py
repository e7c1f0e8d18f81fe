"""GrabCut (Rother et al., 2004) with OpenCV's energy and steps, on a faster max-flow.

OpenCV's ``cv2.grabCut`` builds a new graph over every pixel at every iteration and solves it
from scratch. Between iterations only the colour models, so the terminal links, change; the
neighbour links depend on the image alone. Here the graph is built once, over the *probable*
pixels only (a sure pixel's label is fixed, so its links to probable neighbours become their
terminal links), and each later iteration changes the terminal links and reuses the previous
flow and search trees (Kohli & Torr's dynamic graph cuts, in Kolmogorov's max-flow: PyMaxflow).
Everything else is OpenCV's: 5-component full-covariance colour models started by its k-means
(k-means++, 10 iterations, its global generator), gamma 50, lambda 9 gamma, beta from the mean
squared neighbour difference, the 8-neighbourhood. So the masks are OpenCV's (tested); only the
time differs, and a colour model of a grey or saturated region, which OpenCV's determinant test
misses, gets its singular variance (``ColourModel.fit``).

``grabcut_starts`` cuts one window from several starts on that one graph and gives each cut's
GrabCut energy, so that a caller can keep the cut that fits the image best (refine.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import maxflow
import numpy as np

COMPONENTS = 5  # Gaussians per colour model, as OpenCV
GAMMA = 50.0  # the neighbour links' weight, as OpenCV
KMEANS_ITERATIONS = 10  # OpenCV's k-means start of the colour models
SINGULAR_VARIANCE = 0.01  # added to a singular covariance's diagonal, as OpenCV
EPSILON = np.finfo(np.float64).eps
FAR_COST = 700.0  # -log of the smallest density kept, about float64's smallest normal (e^-708)
# Each pixel's neighbours up-left of it (as OpenCV's leftW, upleftW, upW, uprightW): (dy, dx, weight factor).
NEIGHBOURS = ((0, -1, 1.0), (-1, -1, 1 / np.sqrt(2)), (-1, 0, 1.0), (-1, 1, 1 / np.sqrt(2)))


def quadratic_features(pixels: np.ndarray) -> np.ndarray:
    """[n, 10] float64: r², g², b², rg, rb, gb, r, g, b, 1 of each pixel. A Gaussian's Mahalanobis
    distance is linear in them, and so are a model's moments: one matrix product each."""
    r, g, b = pixels.T
    features = np.empty((len(pixels), 10))
    for column, value in enumerate((r * r, g * g, b * b, r * g, r * b, g * b, r, g, b, 1.0)):
        features[:, column] = value
    return features


@dataclass
class ColourModel:
    """A Gaussian mixture over RGB as OpenCV's GrabCut keeps it."""

    weights: np.ndarray  # [K]
    distance: np.ndarray  # [10, K]: quadratic features -> each component's Mahalanobis distance
    log_norm: np.ndarray  # [K]: -log sqrt(det covariance); -inf for an empty component

    @classmethod
    def fit(cls, features: np.ndarray, component: np.ndarray) -> "ColourModel":
        """Each component's mean and covariance from the pixels assigned to it."""
        moments = np.eye(COMPONENTS)[component].T @ features  # per component: sums of the quadratic features
        count = moments[:, 9]
        used = count > 0
        mean = moments[:, 6:9] / np.maximum(count, 1)[:, None]
        second = moments[:, [0, 3, 4, 3, 1, 5, 4, 5, 2]].reshape(COMPONENTS, 3, 3) / np.maximum(count, 1)[:, None, None]
        covariance = second - mean[:, :, None] * mean[:, None, :]
        # OpenCV adds the variance where the determinant is at most DBL_EPSILON. A nearly
        # rank-deficient covariance (a grey or saturated region: its colours on a line or plane of
        # RGB) can pass that test on rounding alone, and then the expanded distance below loses its
        # sign to cancellation (distances of -1e5: densities that overflow). Colours are whole
        # numbers, so a variance under SINGULAR_VARIANCE in any direction is rounding too.
        singular = np.linalg.eigvalsh(covariance)[:, 0] < SINGULAR_VARIANCE
        covariance[singular] += np.eye(3) * SINGULAR_VARIANCE
        inverse = np.linalg.inv(covariance)
        distance = np.zeros((10, COMPONENTS))
        b = np.einsum("kij,kj->ki", inverse, mean)
        distance[0], distance[1], distance[2] = inverse[:, 0, 0], inverse[:, 1, 1], inverse[:, 2, 2]
        distance[3], distance[4], distance[5] = 2 * inverse[:, 0, 1], 2 * inverse[:, 0, 2], 2 * inverse[:, 1, 2]
        distance[6:9] = -2 * b.T
        distance[9] = (b * mean).sum(1)
        log_norm = np.where(used, -0.5 * np.log(np.abs(np.linalg.det(covariance))), -np.inf)
        return cls(count / max(1, count.sum()), distance, log_norm)

    def component_log_densities(self, features: np.ndarray) -> np.ndarray:
        """[n, K]: log of each component's density (unweighted, as OpenCV assigns components)."""
        return -0.5 * (features @ self.distance) + self.log_norm

    def refit(self, features: np.ndarray) -> "ColourModel":
        """The model fitted anew to its pixels (``features``), each given to its likeliest component."""
        return ColourModel.fit(features, self.component_log_densities(features).argmax(1))

    def neg_log_likelihood(self, features: np.ndarray) -> np.ndarray:
        """[n]: -log of the mixture's density. Where it underflows (OpenCV's cost is then infinite)
        the cost is capped at ``FAR_COST``: still above what all of a pixel's neighbour links weigh."""
        density = np.exp(self.component_log_densities(features)) @ self.weights
        return -np.log(np.maximum(density, np.exp(-FAR_COST)))


def start_model(pixels: np.ndarray, features: np.ndarray) -> ColourModel:
    """A colour model from OpenCV's k-means of ``pixels`` (its global generator, seeded by the caller)."""
    criteria = (cv2.TERM_CRITERIA_MAX_ITER, KMEANS_ITERATIONS, 0.0)
    _, labels, _ = cv2.kmeans(pixels.astype(np.float32), COMPONENTS, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    return ColourModel.fit(features, labels.ravel())


def neighbour_pairs(height: int, width: int):
    """For each of ``NEIGHBOURS``: (the pixels that have that neighbour, those neighbours, its
    weight factor), the first two as slices of an [h, w] grid, equal in shape."""
    for dy, dx, factor in NEIGHBOURS:
        here = (slice(-dy, height), slice(max(0, -dx), width - max(0, dx)))
        there = (slice(0, height + dy), slice(max(0, dx), width + min(0, dx)))
        yield here, there, factor


def neighbour_links(image: np.ndarray, gamma: float = GAMMA) -> list[tuple[tuple, tuple, np.ndarray]]:
    """(here, there, weight) for each of ``NEIGHBOURS``: the link between each pixel and that
    neighbour, gamma exp(-beta |colour difference|²), beta from the mean over all pairs."""
    height, width = image.shape[:2]
    pairs = [(here, there, factor, ((image[here] - image[there]) ** 2).sum(-1))
             for here, there, factor in neighbour_pairs(height, width)]
    total, count = sum(d.sum() for *_, d in pairs), sum(d.size for *_, d in pairs)
    beta = 0.0 if total <= EPSILON else count / (2 * total)
    return [(here, there, gamma * factor * np.exp(-beta * d)) for here, there, factor, d in pairs]


def grabcut(image: np.ndarray, labels: np.ndarray, iterations: int, seed: int, gamma: float = GAMMA) -> np.ndarray:
    """Bool [h, w]: OpenCV's GrabCut in mask mode on ``image`` (uint8 [h, w, 3], the channel
    order OpenCV is given), from ``labels`` (uint8, GC_* classes; its probable pixels updated in
    place), ``iterations`` times; ``seed`` seeds the colour models' k-means as cv2.setRNGSeed
    does for cv2.grabCut. ``gamma`` weighs the neighbour links (OpenCV's 50 by default). Definite
    and probable foreground count as object."""
    return grabcut_starts(image, [labels], iterations, seed, gamma)[0][0]


def grabcut_starts(image: np.ndarray, starts: list[np.ndarray], iterations: int, seed: int,
                   gamma: float = GAMMA) -> list[tuple[np.ndarray, float]]:
    """``grabcut`` from each of ``starts`` (GC_* labels, each updated in place, all with the same
    sure pixels): for each, its mask and the GrabCut energy it ends at, every pixel's colour cost
    under its label's model (the last iteration's) plus the neighbour links its outline cuts, less
    the links between two sure pixels (the same for every start). The lower energy is the cut that
    fits the image better. The starts share one graph: the same probable pixels, neighbour links
    and links to sure pixels; each start after the first changes only the terminal links of the
    flow the one before left (dynamic graph cuts again). Without probable pixels or iterations
    there is no cut: the energy is infinite."""
    sure_background, sure_object = starts[0] == cv2.GC_BGD, starts[0] == cv2.GC_FGD
    if any(((s == cv2.GC_BGD) != sure_background).any() or ((s == cv2.GC_FGD) != sure_object).any() for s in starts):
        raise ValueError("grabcut_starts: every start must have the same sure pixels")
    pixels = image.reshape(-1, 3).astype(np.float64)
    features = quadratic_features(pixels)
    probable = ~(sure_background | sure_object)
    count = int(probable.sum())
    links = None if count == 0 or iterations == 0 else probable_graph(image, probable, sure_object, gamma)
    ids, probable_flat = np.arange(count), probable.reshape(-1)
    probable_features = features[probable_flat]
    results, previous = [], None
    for labels in starts:
        flat = labels.reshape(-1)
        is_background = (flat == cv2.GC_BGD) | (flat == cv2.GC_PR_BGD)
        if is_background.all() or not is_background.any():
            raise ValueError("grabcut needs both background and object pixels to fit its colour models")
        cv2.setRNGSeed(seed)
        background = start_model(pixels[is_background], features[is_background])
        foreground = start_model(pixels[~is_background], features[~is_background])
        if links is None:
            results.append(((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD), float("inf")))
            continue
        graph, to_object, to_background = links
        for _ in range(iterations):
            is_background = (flat == cv2.GC_BGD) | (flat == cv2.GC_PR_BGD)
            background = background.refit(features[is_background])
            foreground = foreground.refit(features[~is_background])
            source = background.neg_log_likelihood(probable_features) + to_object
            sink = foreground.neg_log_likelihood(probable_features) + to_background
            if previous is None:
                graph.add_grid_tedges(ids, source, sink)
                flow = graph.maxflow()
            else:  # only the terminal links change: keep the flow and the search trees
                graph.add_grid_tedges(ids, source - previous[0], sink - previous[1])
                graph.mark_grid_nodes(ids)
                flow = graph.maxflow(reuse_trees=True)
            previous = (source, sink)
            flat[probable_flat] = np.where(graph.get_grid_segments(ids), cv2.GC_PR_BGD, cv2.GC_PR_FGD)
        # The max flow is the cut's energy over the probable pixels (their colour costs, their
        # links to each other and to sure neighbours); the sure pixels' colour costs complete it.
        energy = (flow + background.neg_log_likelihood(features[sure_background.reshape(-1)]).sum()
                  + foreground.neg_log_likelihood(features[sure_object.reshape(-1)]).sum())
        results.append(((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD), float(energy)))
    return results


def probable_graph(image: np.ndarray, probable: np.ndarray, sure_object: np.ndarray, gamma: float):
    """(graph, links to sure object, links to sure background): a node per probable pixel, joined
    to its probable neighbours; a link to a sure neighbour becomes a terminal link."""
    height, width = probable.shape
    count = int(probable.sum())
    node = np.full((height, width), -1, np.int64)
    node[probable] = np.arange(count)
    to_object, to_background = np.zeros(count), np.zeros(count)
    heads, tails, capacities = [], [], []
    for here, there, weight in neighbour_links(image.astype(np.float64), gamma):
        here_p, there_p = probable[here], probable[there]
        both = here_p & there_p
        heads.append(node[here][both]), tails.append(node[there][both]), capacities.append(weight[both])
        for a, b, a_p, b_p in ((here, there, here_p, there_p), (there, here, there_p, here_p)):
            one = a_p & ~b_p
            ids, w, sure = node[a][one], weight[one], sure_object[b][one]
            to_object += np.bincount(ids[sure], w[sure], count)
            to_background += np.bincount(ids[~sure], w[~sure], count)
    graph = maxflow.Graph[float](count, sum(len(h) for h in heads))
    graph.add_nodes(count)
    capacity = np.concatenate(capacities)
    graph.add_edges(np.concatenate(heads), np.concatenate(tails), capacity, capacity)
    return graph, to_object, to_background

"""Theano's theano.tensor.nnet.neighbours: images2neibs (the patches of 4-d images as the rows of a
matrix) and neibs2images (patches summed back into images), numpy ops with each other's gradient."""

from __future__ import annotations

import numpy as np

from ..graph import Apply, Op
from .type import TensorType
from .variable import as_tensor_variable

_MODES = ("valid", "ignore_borders", "half", "full")


def _pair(value, what):
    pair = tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"images2neibs: {what} must be two positive ints, got {value!r}")
    return pair


class _Patches(Op):
    """What both directions share: the patch size, step and mode, and the grid of patches."""

    fresh_outputs = True

    def __init__(self, neib_shape, neib_step=None, mode="valid"):
        if mode == "wrap_centered":
            raise NotImplementedError("images2neibs: mode='wrap_centered' is not supported; use 'valid', "
                                      "'ignore_borders', 'half' or 'full'")
        if mode not in _MODES:
            raise ValueError(f"images2neibs: mode must be one of {_MODES}, got {mode!r}")
        self.neib_shape = _pair(neib_shape, "neib_shape")
        self.neib_step = _pair(neib_step if neib_step is not None else neib_shape, "neib_step")
        self.mode = mode

    def signature(self):
        return f"{type(self).__name__}{{{self.neib_shape}, step={self.neib_step}, {self.mode}}}"

    def __reduce__(self):
        return type(self), (self.neib_shape, self.neib_step, self.mode)

    def grid(self, shape):
        """(padding rows, cols), (patch rows, cols) over images of `shape` (.., rows, cols)."""
        pads, counts = [], []
        for size, n, step in zip(shape[-2:], self.neib_shape, self.neib_step):
            pad = {"half": n // 2, "full": n - 1}.get(self.mode, 0)
            extent = size + 2 * pad - n
            if extent < 0:
                raise ValueError(f"images2neibs: patches of {self.neib_shape} do not fit images of "
                                 f"{tuple(shape[-2:])} (mode {self.mode!r})")
            if self.mode == "valid" and extent % step:
                raise ValueError(f"images2neibs: mode 'valid' needs the images' {tuple(shape[-2:])} minus the "
                                 f"patch {self.neib_shape} to be a multiple of the step {self.neib_step} "
                                 f"(use mode='ignore_borders' to drop the rest)")
            pads.append(pad)
            counts.append(extent // step + 1)
        return tuple(pads), tuple(counts)

    def windows(self, padded, counts):
        """A (n, rows, cols, nh, nw) view of the patches of `padded` (n, rows, cols)."""
        win = np.lib.stride_tricks.sliding_window_view(padded, self.neib_shape, axis=(1, 2))
        return win[:, ::self.neib_step[0], ::self.neib_step[1]][:, :counts[0], :counts[1]]


class Images2Neibs(_Patches):
    """images2neibs: one row per patch, patches of image (b, c) in row-major order, images in order."""

    def make_node(self, ten4):
        ten4 = as_tensor_variable(ten4)
        if ten4.ndim != 4:
            raise TypeError(f"images2neibs takes a 4-d tensor (batch, channels, rows, cols), got {ten4.type}")
        return Apply(self, [ten4], [TensorType(ten4.dtype, (False, False))])

    def perform(self, node, inputs):
        (x,) = inputs
        (ph, pw), counts = self.grid(x.shape)
        flat = x.reshape(-1, *x.shape[2:])
        padded = np.pad(flat, ((0, 0), (ph, ph), (pw, pw))) if ph or pw else flat
        patches = self.windows(padded, counts)
        return [np.ascontiguousarray(patches).reshape(-1, self.neib_shape[0] * self.neib_shape[1])]

    def grad(self, inputs, output_grads, outputs):
        (x,), (g,) = inputs, output_grads
        return [Neibs2Images(self.neib_shape, self.neib_step, self.mode)(g, x.shape)]


class Neibs2Images(_Patches):
    """The patches (rows of `neibs`) added back into images of `shape` where images2neibs took them
    (overlapping patches add up; parts no patch covers are 0)."""

    def make_node(self, neibs, shape):
        neibs, shape = as_tensor_variable(neibs), as_tensor_variable(shape)
        if neibs.ndim != 2:
            raise TypeError(f"neibs2images takes the matrix of patches, got {neibs.type}")
        return Apply(self, [neibs, shape], [TensorType(neibs.dtype, (False,) * 4)])

    def perform(self, node, inputs):
        neibs, shape = inputs
        shape = tuple(int(s) for s in shape)
        if len(shape) != 4:
            raise ValueError(f"neibs2images: original_shape must have 4 entries, got {shape}")
        (ph, pw), (nr, nc) = self.grid(shape)
        n, (nh, nw) = shape[0] * shape[1], self.neib_shape
        if neibs.shape != (n * nr * nc, nh * nw):
            raise ValueError(f"neibs2images: {neibs.shape[0]} patches of {neibs.shape[1]} for images of "
                             f"{shape} with patches of {self.neib_shape} (expected {n * nr * nc} of {nh * nw})")
        padded = np.zeros((n, shape[2] + 2 * ph, shape[3] + 2 * pw), dtype=node.outputs[0].dtype)
        patches = neibs.reshape(n, nr, nc, nh, nw)
        sh, sw = self.neib_step
        for i in range(nh):
            for j in range(nw):
                padded[:, i:i + sh * nr:sh, j:j + sw * nc:sw] += patches[:, :, :, i, j]
        out = padded[:, ph:ph + shape[2], pw:pw + shape[3]]
        return [np.ascontiguousarray(out).reshape(shape)]

    def grad(self, inputs, output_grads, outputs):
        (g,) = output_grads
        return [Images2Neibs(self.neib_shape, self.neib_step, self.mode)(g), None]


def images2neibs(ten4, neib_shape, neib_step=None, mode="valid"):
    """Theano's images2neibs: the (neib_shape) patches of the images of `ten4` (batch, channels, rows,
    cols), every `neib_step`, as rows of a matrix (batch*channels*patches, patch size). Modes: 'valid'
    (the patches must tile the image exactly), 'ignore_borders' (the rest is dropped), 'half' and
    'full' (zero padding of half and all of the patch)."""
    return Images2Neibs(neib_shape, neib_step, mode)(ten4)


def neibs2images(neibs, neib_shape, original_shape, mode="valid"):
    """Theano's neibs2images: the inverse of images2neibs with neib_step = neib_shape, images of
    `original_shape` (with 'ignore_borders', the parts no patch covered are 0)."""
    if mode not in ("valid", "ignore_borders"):
        raise ValueError(f"neibs2images: mode must be 'valid' or 'ignore_borders', got {mode!r}")
    if isinstance(original_shape, (tuple, list)):          # ints or scalar variables, as x.shape's entries
        from .math import stack

        original_shape = stack([as_tensor_variable(e) for e in original_shape])
    return Neibs2Images(neib_shape, None, mode)(neibs, as_tensor_variable(original_shape))


__all__ = ["Images2Neibs", "Neibs2Images", "images2neibs", "neibs2images"]

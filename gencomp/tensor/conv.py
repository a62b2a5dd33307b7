"""Convolution and pooling over images (batch, channels, rows, columns): Theano's nnet.conv2d and
signal.pool.pool_2d. Float 4-d ones lower to C in the function's module (templates/c/conv.h.j2:
im2col + BLAS gemm, window loops); `perform` is their numpy reference (windows as strided views).

conv2d follows Theano: border_mode 'valid' | 'full' | 'half' | (pad rows, pad cols), subsample
(strides), filter_flip=True (a true convolution; False correlates), filter_dilation. pool_2d: mode
'max', 'sum', 'average_inc_pad' or 'average_exc_pad', with ws, stride, pad and ignore_border.
"""

from __future__ import annotations

import numpy as np

from ..graph import Apply, Op
from .type import TensorType
from .shape import specify_shape
from .variable import as_tensor_variable


def _pair(v, what):
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    v = tuple(int(x) for x in v)
    if len(v) != 2:
        raise ValueError(f"{what} needs two entries (rows, columns), got {v}")
    return v


def _padding(border_mode, filter_shape):
    """(pad rows, pad cols) for filters of `filter_shape` (their dilated extent)."""
    fh, fw = filter_shape
    if border_mode == "valid":
        return (0, 0)
    if border_mode == "full":
        return (fh - 1, fw - 1)
    if border_mode == "half":
        return (fh // 2, fw // 2)
    if isinstance(border_mode, (int, np.integer)) or isinstance(border_mode, (tuple, list)):
        return _pair(border_mode, "border_mode")
    raise ValueError(f"border_mode must be 'valid', 'full', 'half' or a pair of paddings, got {border_mode!r}")


def _windows(x, size, stride):
    """(b, c, out rows, out cols, fh, fw) strided view of x's windows (no copy)."""
    view = np.lib.stride_tricks.sliding_window_view(x, size, axis=(2, 3))
    return view[:, :, ::stride[0], ::stride[1]]


_BORDERS = {"valid": 0, "full": 1, "half": 2}


def _float_images(node, any_rank: bool = False) -> bool:
    """Float32/float64 images of one dtype: 4-d (the C forms), or with `any_rank` of any rank >= 2
    (a pool's form: the leading dims are images and channels; the GPU kernels take them so)."""
    arrays = (*node.inputs, *node.outputs)
    return all((v.ndim >= 2 if any_rank else v.ndim == 4) and v.dtype in ("float32", "float64") for v in arrays) \
        and len({v.dtype for v in arrays}) == 1


class Conv2D(Op):
    """output[b, k] = sum over c of input[b, c] convolved with filters[k, c] (Theano's conv2d)."""

    def __init__(self, border_mode="valid", subsample=(1, 1), filter_flip=True, filter_dilation=(1, 1)):
        if isinstance(border_mode, str) and border_mode not in _BORDERS:
            raise ValueError(f"border_mode must be 'valid', 'full', 'half' or a pair of paddings, got {border_mode!r}")
        self.border_mode = border_mode if isinstance(border_mode, str) else _pair(border_mode, "border_mode")
        self.subsample, self.filter_flip = _pair(subsample, "subsample"), bool(filter_flip)
        self.filter_dilation = _pair(filter_dilation, "filter_dilation")
        if min(self.subsample) < 1 or min(self.filter_dilation) < 1 or \
                (not isinstance(self.border_mode, str) and min(self.border_mode) < 0):
            raise ValueError(f"conv2d: subsample and filter_dilation must be >= 1 and paddings >= 0; got "
                             f"{self.subsample}, {self.filter_dilation}, {self.border_mode}")

    def signature(self):
        return (f"Conv2D{{{self.border_mode}, subsample={self.subsample}, flip={self.filter_flip}, "
                f"dilation={self.filter_dilation}}}")

    def __reduce__(self):
        return Conv2D, (self.border_mode, self.subsample, self.filter_flip, self.filter_dilation)

    def family(self, node) -> str:
        return "conv2d" if _float_images(node) else "host"

    def lowering(self, node) -> str:
        from .blas import _cblas
        return self.family(node) if _cblas() else "host"     # the C form is im2col + a CBLAS gemm

    def c_params(self) -> dict:
        """What the C form needs: border code and paddings, strides, dilation, flip."""
        border = _BORDERS.get(self.border_mode, 3) if isinstance(self.border_mode, str) else 3
        pad = (0, 0) if isinstance(self.border_mode, str) else self.border_mode
        return dict(border=border, pad=pad, stride=self.subsample, dilation=self.filter_dilation,
                    flip=int(self.filter_flip))

    def make_node(self, x, w):
        x, w = as_tensor_variable(x), as_tensor_variable(w)
        if x.ndim != 4 or w.ndim != 4:
            raise TypeError(f"conv2d takes 4-d input (batch, channels, rows, cols) and 4-d filters "
                            f"(out channels, in channels, rows, cols); got {x.type} and {w.type}")
        dtype = np.result_type(x.dtype, w.dtype).name
        if dtype not in ("float32", "float64"):
            raise TypeError(f"conv2d needs float tensors, got {x.dtype} and {w.dtype}")
        return Apply(self, [x, w], [TensorType(dtype, (x.broadcastable[0], w.broadcastable[0], False, False))])

    def _prepare(self, x, w):
        if x.shape[1] != w.shape[1]:
            raise ValueError(f"conv2d: the input has {x.shape[1]} channels, the filters {w.shape[1]} "
                             f"(input {x.shape}, filters {w.shape})")
        wf = w[:, :, ::-1, ::-1] if self.filter_flip else w
        dh, dw = self.filter_dilation
        if (dh, dw) != (1, 1):             # the dilated filters: zeros between the taps
            dilated = np.zeros((*w.shape[:2], dh * (w.shape[2] - 1) + 1, dw * (w.shape[3] - 1) + 1), w.dtype)
            dilated[:, :, ::dh, ::dw] = wf
            wf = dilated
        pad = _padding(self.border_mode, wf.shape[2:])
        xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1]))) if any(pad) else x
        if xp.shape[2] < wf.shape[2] or xp.shape[3] < wf.shape[3]:
            raise ValueError(f"conv2d: filters {w.shape[2:]} (dilated {wf.shape[2:]}) larger than the "
                             f"(padded) image {xp.shape[2:]} (input {x.shape}, filters {w.shape})")
        return pad, xp, wf

    def perform(self, node, inputs):
        dtype = node.outputs[0].dtype
        x, w = (a.astype(dtype, copy=False) for a in inputs)
        _, xp, wf = self._prepare(x, w)
        cols = _windows(xp, wf.shape[2:], self.subsample)                 # b, c, oh, ow, fh, fw
        out = np.tensordot(cols, wf, axes=([1, 4, 5], [1, 2, 3]))        # b, oh, ow, k
        return [np.ascontiguousarray(out.transpose(0, 3, 1, 2))]

    def grad(self, inputs, output_grads, outputs):
        x, w = inputs
        (g,) = output_grads
        return [Conv2DGrad(self, "input")(x, w, g), Conv2DGrad(self, "filters")(x, w, g)]


class Conv2DGrad(Op):
    """The gradient of a Conv2D with respect to its input or its filters."""

    def __init__(self, conv: Conv2D, wrt: str):
        self.conv, self.wrt = conv, wrt

    def signature(self):
        return f"Conv2DGrad{{{self.wrt}, {self.conv.signature()}}}"

    def __reduce__(self):
        return Conv2DGrad, (self.conv, self.wrt)

    def family(self, node) -> str:
        return "conv2d_grad" if _float_images(node) else "host"

    def lowering(self, node) -> str:
        from .blas import _cblas
        return self.family(node) if _cblas() else "host"

    def make_node(self, x, w, g):
        x, w, g = (as_tensor_variable(v) for v in (x, w, g))
        like = x if self.wrt == "input" else w
        return Apply(self, [x, w, g], [TensorType(like.dtype, like.broadcastable)])

    def perform(self, node, inputs):
        x, w, g = inputs
        conv = self.conv
        pad, xp, wf = conv._prepare(x, w)
        sh, sw = conv.subsample
        fh, fw = wf.shape[2:]
        oh, ow = g.shape[2:]
        if self.wrt == "filters":
            cols = _windows(xp, (fh, fw), (sh, sw))[:, :, :oh, :ow]
            dwf = np.tensordot(g, cols, axes=([0, 2, 3], [0, 2, 3]))       # k, c, fh, fw
            dwf = dwf[:, :, ::conv.filter_dilation[0], ::conv.filter_dilation[1]]   # the taps
            dw = dwf[:, :, ::-1, ::-1] if conv.filter_flip else dwf
            return [np.ascontiguousarray(dw).astype(w.dtype, copy=False)]
        dxp = np.zeros(xp.shape, dtype=np.result_type(g.dtype, wf.dtype))
        dcols = np.tensordot(g, wf, axes=([1], [0]))                      # b, oh, ow, c, fh, fw
        for i in range(fh):
            for j in range(fw):
                dxp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
        dx = dxp[:, :, pad[0]:dxp.shape[2] - pad[0], pad[1]:dxp.shape[3] - pad[1]]
        return [np.ascontiguousarray(dx).astype(x.dtype, copy=False)]

    def grad(self, inputs, output_grads, outputs):
        raise TypeError("second derivatives of conv2d are not supported")


def conv2d(input, filters, input_shape=None, filter_shape=None, border_mode="valid", subsample=(1, 1),
           filter_flip=True, image_shape=None, filter_dilation=(1, 1), **kwargs):
    """Theano's nnet.conv2d: 4-d input (batch, channels, rows, cols), filters (out, in, rows, cols).

    input_shape / filter_shape (image_shape: Theano's older name) are hints: their lengths and
    channel counts are checked here (a mismatch is a ValueError); the op checks the real shapes."""
    input, filters = as_tensor_variable(input), as_tensor_variable(filters)
    hint = input_shape if input_shape is not None else image_shape
    for name, var, shape in (("input_shape", input, hint), ("filter_shape", filters, filter_shape)):
        if shape is not None and len(tuple(shape)) != var.ndim:
            raise ValueError(f"conv2d: {name}={tuple(shape)} has {len(tuple(shape))} entries, but the "
                             f"{'input' if var is input else 'filters'} has {var.ndim} dimensions")
    if hint is not None and filter_shape is not None:
        c_in, c_f = tuple(hint)[1], tuple(filter_shape)[1]
        if c_in is not None and c_f is not None and int(c_in) != int(c_f):
            raise ValueError(f"conv2d: input_shape {tuple(hint)} has {c_in} channels but filter_shape "
                             f"{tuple(filter_shape)} has {c_f}")
    # the hints are promises: checked at call time (at function() time for constants), so a
    # mismatch is a ValueError naming the shapes instead of a result for other shapes
    return Conv2D(border_mode, subsample, filter_flip, filter_dilation)(_hinted(input, hint),
                                                                        _hinted(filters, filter_shape))


def _hinted(var, hint):
    """`var` behind a specify_shape of the hint's given lengths (None entries unchecked), or itself."""
    if hint is None or all(d is None for d in tuple(hint)):
        return var
    return specify_shape(var, [None if d is None else int(d) for d in tuple(hint)])




def _full_shape(shape, known, what):
    """`shape` (4 entries, ints or None or scalars) with None entries taken from `known` (a
    variable's shape entries by position, or None where nothing tells them)."""
    shape = tuple(shape)
    if len(shape) != 4:
        raise ValueError(f"{what} must have 4 entries (batch, channels, rows, cols), got {shape}")
    out = []
    for d, entry in enumerate(shape):
        if entry is None:
            if known[d] is None:
                raise ValueError(f"{what}={shape}: entry {d} must be given")
            entry = known[d]
        out.append(entry)
    return out


def conv2d_grad_wrt_inputs(output_grad, filters, input_shape, filter_shape=None, border_mode="valid",
                           subsample=(1, 1), filter_flip=True, filter_dilation=(1, 1)):
    """Theano's abstract_conv.conv2d_grad_wrt_inputs: the gradient of conv2d with respect to its
    input, given the gradient `output_grad` of its output, for an input of `input_shape` (its batch
    and channels may be None: output_grad's and the filters'). conv2d_transpose is this."""
    from .math import zeros

    output_grad, filters = as_tensor_variable(output_grad), as_tensor_variable(filters)
    filters = _hinted(filters, filter_shape)
    shape = _full_shape(input_shape, [output_grad.shape[0], filters.shape[1], None, None], "input_shape")
    like = zeros(shape, dtype=output_grad.dtype)     # only its shape is read: the geometry of the gradient
    conv = Conv2D(border_mode, subsample, filter_flip, filter_dilation)
    return Conv2DGrad(conv, "input")(like, filters, output_grad)


def conv2d_grad_wrt_weights(input, output_grad, filter_shape, input_shape=None, border_mode="valid",
                            subsample=(1, 1), filter_flip=True, filter_dilation=(1, 1)):
    """Theano's abstract_conv.conv2d_grad_wrt_weights: the gradient of conv2d with respect to its
    filters, of `filter_shape` (its out and in channels may be None: output_grad's and input's)."""
    from .math import zeros

    input, output_grad = as_tensor_variable(input), as_tensor_variable(output_grad)
    input = _hinted(input, input_shape)
    shape = _full_shape(filter_shape, [output_grad.shape[1], input.shape[1], None, None], "filter_shape")
    like = zeros(shape, dtype=output_grad.dtype)
    conv = Conv2D(border_mode, subsample, filter_flip, filter_dilation)
    return Conv2DGrad(conv, "filters")(input, like, output_grad)


def conv2d_transpose(input, filters, output_shape, filter_shape=None, border_mode="valid", input_dilation=(1, 1),
                     filter_flip=True, filter_dilation=(1, 1)):
    """Theano's nnet.conv2d_transpose (a "deconvolution"): the gradient of a conv2d of stride
    `input_dilation` with respect to an input of `output_shape`, applied to `input`."""
    return conv2d_grad_wrt_inputs(input, filters, output_shape, filter_shape, border_mode, input_dilation,
                                  filter_flip, filter_dilation)


_POOL_MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


def partial_windows(size: int, window: int, stride: int) -> int:
    """Windows along one axis when partial windows at the end count (ignore_border=False), as
    Theano's Pool.out_shape counts them: every window starts inside the image."""
    if size <= 0:
        return 0
    if stride >= window:
        return (size - 1) // stride + 1
    return max(0, (size - 1 - window + stride) // stride) + 1


class Pool2D(Op):
    """Pooling over the last two dimensions (Theano's signal.pool.pool_2d)."""

    def __init__(self, ws, ignore_border=True, stride=None, pad=(0, 0), mode="max"):
        self.ws = _pair(ws, "ws")
        self.stride = _pair(stride if stride is not None else ws, "stride")
        self.pad, self.ignore_border = _pair(pad, "pad"), bool(ignore_border)
        if mode == "average":
            mode = "average_inc_pad"
        if mode not in _POOL_MODES:
            raise ValueError(f"pool_2d: mode must be one of {_POOL_MODES}, got {mode!r}")
        if any(self.pad) and not self.ignore_border:
            raise NotImplementedError("pool_2d: padding needs ignore_border=True (as in Theano)")
        self.mode = mode

    def signature(self):
        return (f"Pool2D{{{self.mode}, ws={self.ws}, stride={self.stride}, pad={self.pad}, "
                f"ignore_border={self.ignore_border}}}")

    def __reduce__(self):
        return Pool2D, (self.ws, self.ignore_border, self.stride, self.pad, self.mode)

    def family(self, node) -> str:
        return "pool2d" if _float_images(node, any_rank=True) else "host"

    def lowering(self, node) -> str:
        return self.family(node) if _float_images(node) else "host"      # the C form: 4-d images

    def c_params(self) -> dict:
        return dict(ws=self.ws, stride=self.stride, pad=self.pad, ignore_border=int(self.ignore_border),
                    mode=_POOL_MODES.index(self.mode))

    def make_node(self, x):
        x = as_tensor_variable(x)
        if x.ndim < 2:
            raise TypeError(f"pool_2d pools the last two dimensions; got {x.type}")
        return Apply(self, [x], [TensorType(x.dtype, tuple(x.broadcastable[:-2]) + (False, False))])

    def _layout(self, shape):
        """(padded / extended shape of the last two dims, output rows and cols)."""
        (ph, pw), (sh, sw), (wh, ww) = self.pad, self.stride, self.ws
        h, w = shape[-2] + 2 * ph, shape[-1] + 2 * pw
        if self.ignore_border:
            oh = max(0, (h - wh) // sh + 1) if h >= wh else 0
            ow = max(0, (w - ww) // sw + 1) if w >= ww else 0
        else:                     # partial windows at the end count
            oh, ow = partial_windows(h, wh, sh), partial_windows(w, ww, sw)
        return (oh - 1) * sh + wh, (ow - 1) * sw + ww, oh, ow

    def _extended(self, x, fill):
        (ph, pw) = self.pad
        eh, ew, oh, ow = self._layout(x.shape)
        lead = x.shape[:-2]
        out = np.full((*lead, max(eh, 0), max(ew, 0)), fill, dtype=x.dtype)
        h, w = min(x.shape[-2], out.shape[-2] - ph), min(x.shape[-1], out.shape[-1] - pw)
        out[..., ph:ph + h, pw:pw + w] = x[..., :h, :w]
        valid = np.zeros(out.shape[-2:], dtype=bool)
        valid[ph:ph + h, pw:pw + w] = True
        return out, valid, oh, ow

    def perform(self, node, inputs):
        (x,) = inputs
        fill = 0                                        # what padding adds to a window
        if self.mode == "max":
            fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min if x.dtype.kind in "iu" else False
        ext, valid, oh, ow = self._extended(x, fill)
        lead = x.shape[:-2]
        if oh == 0 or ow == 0:
            return [np.zeros((*lead, oh, ow), dtype=x.dtype)]
        win = np.lib.stride_tricks.sliding_window_view(ext, self.ws, axis=(-2, -1))
        win = win[..., ::self.stride[0], ::self.stride[1], :, :][..., :oh, :ow, :, :]
        if self.mode == "max":
            out = win.max(axis=(-2, -1))
        else:
            total = win.sum(axis=(-2, -1), dtype=np.float64 if x.dtype.kind == "f" else None)
            if self.mode == "sum":
                out = total
            elif self.mode == "average_inc_pad":
                out = total / (self.ws[0] * self.ws[1])
            else:
                counts = np.lib.stride_tricks.sliding_window_view(valid, self.ws)[::self.stride[0], ::self.stride[1]]
                out = total / np.maximum(counts[:oh, :ow].sum(axis=(-2, -1)), 1)
        return [np.asarray(out, dtype=x.dtype)]

    def grad(self, inputs, output_grads, outputs):
        (x,), (g,) = inputs, output_grads
        return [Pool2DGrad(self)(x, outputs[0], g)]


class Pool2DGrad(Op):
    """The gradient of a Pool2D: max routes each output's gradient to every input equal to that
    maximum in its window (as Theano); sums and averages spread it over the window."""

    def __init__(self, pool: Pool2D):
        self.pool = pool

    def signature(self):
        return f"Pool2DGrad{{{self.pool.signature()}}}"

    def __reduce__(self):
        return Pool2DGrad, (self.pool,)

    def family(self, node) -> str:
        return "pool2d_grad" if _float_images(node, any_rank=True) else "host"

    def lowering(self, node) -> str:
        return self.family(node) if _float_images(node) else "host"      # the C form: 4-d images

    def make_node(self, x, out, g):
        x, out, g = (as_tensor_variable(v) for v in (x, out, g))
        return Apply(self, [x, out, g], [TensorType(x.dtype, x.broadcastable)])

    def perform(self, node, inputs):
        x, out, g = inputs
        pool = self.pool
        ext, valid, oh, ow = pool._extended(x, -np.inf if pool.mode == "max" else 0)
        dext = np.zeros(ext.shape, dtype=np.result_type(x.dtype, g.dtype))
        (sh, sw), (wh, ww) = pool.stride, pool.ws
        if pool.mode == "average_exc_pad":
            counts = np.lib.stride_tricks.sliding_window_view(valid, pool.ws)[::sh, ::sw][:oh, :ow].sum(axis=(-2, -1))
            scale = 1.0 / np.maximum(counts, 1)
        elif pool.mode == "average_inc_pad":
            scale = 1.0 / (wh * ww)
        else:
            scale = 1.0
        for i in range(wh):
            for j in range(ww):
                rows, cols = slice(i, i + sh * oh, sh), slice(j, j + sw * ow, sw)
                if pool.mode == "max":
                    dext[..., rows, cols] += g * (ext[..., rows, cols] == out)
                else:
                    dext[..., rows, cols] += g * scale
        ph, pw = pool.pad
        dx = np.zeros(x.shape, dtype=dext.dtype)
        h, w = min(x.shape[-2], dext.shape[-2] - ph), min(x.shape[-1], dext.shape[-1] - pw)
        dx[..., :h, :w] = dext[..., ph:ph + h, pw:pw + w]
        return [dx.astype(x.dtype, copy=False)]

    def grad(self, inputs, output_grads, outputs):
        raise TypeError("second derivatives of pool_2d are not supported")


def max_pool_2d_same_size(input, patch_size):
    """Theano's signal.pool.max_pool_2d_same_size: `input` where an element is the maximum of its
    (non-overlapping) patch, 0 elsewhere; the maximum's gradient passes the pooled values back."""
    from ..gradient import grad

    input = as_tensor_variable(input)
    pooled = pool_2d(input, ws=patch_size, ignore_border=True)
    return grad(None, input, known_grads={pooled: pooled})


def pool_2d(input, ws=None, ignore_border=None, stride=None, pad=(0, 0), mode="max", ds=None, st=None,
            padding=None):
    """Theano's signal.pool.pool_2d (also its older names ds, st, padding)."""
    ws = ws if ws is not None else ds
    if ws is None:
        raise TypeError("pool_2d needs ws (the window size)")
    stride = stride if stride is not None else st
    pad = padding if padding is not None else pad
    return Pool2D(ws, True if ignore_border is None else ignore_border, stride, pad, mode)(input)


def max_pool_2d(input, ds, ignore_border=None, st=None, padding=(0, 0), mode="max"):
    """Theano's old downsample.max_pool_2d."""
    return pool_2d(input, ds, ignore_border, st, padding, mode)

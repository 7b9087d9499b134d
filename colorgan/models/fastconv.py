"""Matrix-multiply kernels for the U-Net's innermost convolutions, where oneDNN is slow.

At the bottom of the U-Net the feature maps are 1x1 to 4x4 with 256-1024 channels. oneDNN's
convolution kernels, efficient on large maps, are slow on these tiny maps with many channels (the
weight gradients most of all), so these few layers take a large share of the pix2pix train step.
The same arithmetic as one matrix multiply, [pixels, k*k*C] @ [k*k*C, F], is fast: it runs on the
CPU's matrix units (AMX where present) at their full rate.

`use_matmul_for_small_inputs(model)` swaps the computation of the model's 4x4 stride-2 Conv2D and
Conv2DTranspose layers, for inputs whose height x width is at most `max_pixels` (known when the
train step is traced), for an exact matrix-multiply formulation:
  Conv2D:          im2col (extract_patches) @ kernel
  Conv2DTranspose: x @ kernel (one product per tap) + overlap-add of the 4x4 tiles at stride 2
Other inputs (inference on whole photos) take the stock path. The layers keep their class, weights
and config, so saved models are plain Keras and load without this module; the
generator saved in a run is stored and reloaded with the stock layers.

The swap replaces methods on the layer instances, which relies on Keras internals: keras_compat
checks them against the installed Keras, and on a Keras they are not checked on nothing is swapped.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from colorgan.models import keras_compat

MAX_PIXELS = 16  # 4x4 and smaller: from about 8x8 up the maps are big enough for oneDNN's own kernels


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv2d_as_matmul(x, kernel, stride: int = 2):
    """Conv2D(padding="same") of x [B, H, W, C] with kernel [k, k, C, F] as patches @ kernel."""
    k = kernel.shape[0]
    (top, bottom), (left, right) = _same_padding(x.shape[1], k, stride), _same_padding(x.shape[2], k, stride)
    x = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
    patches = tf.image.extract_patches(x, [1, k, k, 1], [1, stride, stride, 1], [1, 1, 1, 1],
                                       "VALID")  # [B, Ho, Wo, k*k*C], ordered (kh, kw, c) like the kernel
    return tf.einsum("bhwk,kf->bhwf", patches, tf.reshape(kernel, [-1, kernel.shape[-1]]))


def conv2d_transpose_as_matmul(x, kernel):
    """Conv2DTranspose(4, strides=2, padding="same") of x [B, H, W, C] with kernel [4, 4, F, C].

    Input pixel (i, j) adds x[i, j] @ kernel[kh, kw]^T at (2i + kh, 2j + kw) of a (2H+2)x(2W+2) map,
    which "same" crops by one pixel on each side. With kh = 2a + p the target is block row i + a,
    phase p: four shifted sums of the per-tap products give every phase at once.
    """
    b, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
    f = kernel.shape[2]
    taps = tf.einsum("bhwc,klfc->bhwklf", x, kernel)  # [B, H, W, 4, 4, F]
    taps = tf.reshape(taps, [b, h, w, 2, 2, 2, 2, f])  # (a, p, c, q): kh = 2a + p, kw = 2c + q
    # The four (a, c) tiles by one transpose and unstack, the crop by tf.slice: their gradients are a
    # transpose, a stack and a pad. Python slicing here (strided slices) cost the pix2pix step at 32 px
    # about a tenth of its time in StridedSliceGrad.
    tiles = tf.unstack(tf.reshape(tf.transpose(taps, [3, 5, 0, 1, 2, 4, 6, 7]), [4, b, h, w, 2, 2, f]))
    blocks = tf.add_n([tf.pad(tile, [[0, 0], [a, 1 - a], [c, 1 - c], [0, 0], [0, 0], [0, 0]])  # [B, H+1, W+1, p, q, F]
                       for (a, c), tile in zip(((0, 0), (0, 1), (1, 0), (1, 1)), tiles)])
    full = tf.reshape(tf.transpose(blocks, [0, 1, 3, 2, 4, 5]), [b, 2 * h + 2, 2 * w + 2, f])
    return tf.slice(full, [0, 1, 1, 0], [-1, 2 * h, 2 * w, -1])


def _small(x, max_pixels: int) -> bool:
    h, w = x.shape[1], x.shape[2]
    return h is not None and w is not None and h * w <= max_pixels


def _eligible(layer) -> bool:
    """A 4x4 stride-2 "same" convolution, the one case the matmul kernels compute."""
    return (getattr(layer, "kernel_size", None) == (4, 4) and getattr(layer, "strides", None) == (2, 2)
            and getattr(layer, "padding", None) == "same" and getattr(layer, "dilation_rate", None) == (1, 1)
            and getattr(layer, "data_format", None) == "channels_last" and getattr(layer, "groups", 1) == 1
            and all(hasattr(layer, name) for name in ("kernel", "use_bias", "activation")))


def _matmul_convolution_op(max_pixels: int):
    # Conv2D.call computes its convolution through self.convolution_op(inputs, kernel) and adds
    # the bias and activation after it, so replacing that one method keeps the rest of the layer.
    def make(stock):
        def convolution_op(self, inputs, kernel):
            if _small(inputs, max_pixels):
                return conv2d_as_matmul(inputs, kernel, 2)
            return stock(inputs, kernel)
        return convolution_op
    return make


def _matmul_transpose_call(max_pixels: int):
    # Conv2DTranspose.call has no convolution hook: the whole call is replaced, and redoes the
    # bias and activation the stock call applies.
    def make(stock):
        def call(self, inputs):
            if not _small(inputs, max_pixels):
                return stock(inputs)
            outputs = conv2d_transpose_as_matmul(inputs, self.kernel)
            if self.use_bias:
                outputs = outputs + self.bias
            return self.activation(outputs) if self.activation is not None else outputs
        return call
    return make


def use_matmul_for_small_inputs(model: keras.Model, max_pixels: int = MAX_PIXELS) -> int:
    """Swap in the matmul kernels on every eligible layer of `model`.

    Returns how many layers take the matmul path for small inputs (those swapped by an earlier call
    included), or 0 when keras_compat does not vouch for the installed Keras: then the model is left
    with its stock layers, which compute the same.
    """
    if not keras_compat.private_hooks_usable(keras_compat.MATMUL_CONVOLUTIONS):
        return 0
    swapped = 0
    for layer in keras_compat.walk_layers(model):
        if type(layer) is keras.layers.Conv2D and _eligible(layer):
            name, make = "convolution_op", _matmul_convolution_op(max_pixels)
        elif (type(layer) is keras.layers.Conv2DTranspose and _eligible(layer)
              and getattr(layer, "output_padding", 0) is None):
            name, make = "call", _matmul_transpose_call(max_pixels)
        else:
            continue
        if not keras_compat.is_patched(layer, name):
            keras_compat.patch_method(layer, name, make)
        swapped += 1
    return swapped

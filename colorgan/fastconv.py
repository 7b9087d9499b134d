"""Matrix-multiply kernels for the U-Net's innermost convolutions, where oneDNN is slow.

At the bottom of the U-Net the feature maps are 1x1 to 4x4 with 256-1024 channels. oneDNN's
convolution kernels, fast elsewhere, spend most of the pix2pix train step on those few layers
(weight gradients of a 2x2 -> 1x1 bfloat16 convolution ran at ~17 GFLOP/s, measured with
ONEDNN_VERBOSE), while the same arithmetic as one matrix multiply runs on the AMX units at full speed.

`use_matmul_for_small_inputs(model)` swaps the computation of the model's 4x4 stride-2 Conv2D and
Conv2DTranspose layers, for inputs whose height x width is at most `max_pixels` (known when the
train step is traced), for an exact matrix-multiply formulation:
  Conv2D:          im2col (extract_patches) @ kernel
  Conv2DTranspose: x @ kernel (one product per tap) + overlap-add of the 4x4 tiles at stride 2
Other inputs (inference on whole photos) take the stock path. The layers keep their class, weights
and config, so saved models are plain Keras and load without this module; the
generator saved in a run is stored and reloaded with the stock layers.
"""
from __future__ import annotations

import types

import keras
import tensorflow as tf

MAX_PIXELS = 16  # 4x4 and smaller; measured: the gain ends around 8x8, where oneDNN is efficient


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
    taps = tf.reshape(taps, [b, h, w, 2, 2, 2, 2, f])  # (a, p, b, q): kh = 2a + p, kw = 2b + q
    blocks = 0
    for a in (0, 1):
        for c in (0, 1):
            tile = taps[:, :, :, a, :, c, :, :]  # [B, H, W, p, q, F]
            blocks += tf.pad(tile, [[0, 0], [a, 1 - a], [c, 1 - c], [0, 0], [0, 0], [0, 0]])
    full = tf.reshape(tf.transpose(blocks, [0, 1, 3, 2, 4, 5]), [b, 2 * h + 2, 2 * w + 2, f])
    return full[:, 1:2 * h + 1, 1:2 * w + 1, :]


def _small(x, max_pixels: int) -> bool:
    h, w = x.shape[1], x.shape[2]
    return h is not None and w is not None and h * w <= max_pixels


def _eligible(layer) -> bool:
    return (layer.kernel_size == (4, 4) and layer.strides == (2, 2) and layer.padding == "same"
            and layer.dilation_rate == (1, 1) and layer.data_format == "channels_last"
            and getattr(layer, "groups", 1) == 1)


def use_matmul_for_small_inputs(model: keras.Model, max_pixels: int = MAX_PIXELS) -> int:
    """Swap in the matmul kernels on every eligible layer of `model`; returns how many were swapped."""
    swapped = 0
    for layer in model._flatten_layers(include_self=False):
        if type(layer) is keras.layers.Conv2D and _eligible(layer):
            stock = layer.convolution_op

            def convolution_op(self, inputs, kernel, stock=stock):
                if _small(inputs, max_pixels):
                    return conv2d_as_matmul(inputs, kernel, 2)
                return stock(inputs, kernel)

            layer.convolution_op = types.MethodType(convolution_op, layer)
            swapped += 1
        elif type(layer) is keras.layers.Conv2DTranspose and _eligible(layer) and layer.output_padding is None:
            stock_call = layer.call

            def call(self, inputs, stock_call=stock_call):
                if not _small(inputs, max_pixels):
                    return stock_call(inputs)
                outputs = conv2d_transpose_as_matmul(inputs, self.kernel)
                if self.use_bias:
                    outputs = outputs + self.bias
                return self.activation(outputs) if self.activation is not None else outputs

            layer.call = types.MethodType(call, layer)
            swapped += 1
    return swapped

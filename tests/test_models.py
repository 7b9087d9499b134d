import numpy as np
import pytest

from colorgan.models.keras_compat import walk_layers
from colorgan.models.networks import Discriminator, Generator, level_filters


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_generator_and_discriminator_shapes(size):
    g = Generator(size, 1, 2, base_filters=4)
    d = Discriminator(size, 1, 2, base_filters=4)
    x = np.random.uniform(-1, 1, (2, size, size, 1)).astype("float32")
    y = g(x, training=False).numpy()
    assert y.shape == (2, size, size, 2)
    assert np.abs(y).max() <= 1.0  # tanh
    patches = size // (8 if size >= 64 else 4)
    assert d([x, y]).shape == (2, patches, patches, 1)
    # U-Net depth follows the size: down to 1x1 at the bottleneck.
    assert g.get_layer(f"down{int(np.log2(size))}").output.shape[1] is None  # fully convolutional
    assert len([l for l in g.layers if l.name.startswith("down")]) == int(np.log2(size))


def test_non_square_input_and_rgb_output():
    g = Generator(64, 1, 3, base_filters=4)
    d = Discriminator(64, 1, 3, base_filters=4)
    x = np.zeros((1, 64, 192, 1), "float32")
    y = g(x).numpy()
    assert y.shape == (1, 64, 192, 3)
    assert d([x, y]).shape == (1, 8, 24, 1)


def test_parameter_counts_match_the_pix2pix_network():
    # The pix2pix U-Net (Isola et al. 2017; 64-128-256-512 channels, then 512): ~54.4 M weights at 256 px
    # (8 levels), ~16.66 M at 32 px (5 levels).
    assert abs(trainable(Generator(32)) - 16.66e6) / 16.66e6 < 0.002
    assert abs(trainable(Generator(256)) - 54.4e6) / 54.4e6 < 0.002
    assert level_filters(8) == [64, 128, 256, 512, 512, 512, 512, 512]


def test_patchgan_receptive_field_is_70_at_256():
    # 3 stride-2 4x4 convs then two stride-1 4x4 convs: r = 1 + sum((k - 1) * stride product).
    strides = [2, 2, 2, 1, 1]
    r, jump = 1, 1
    for s in strides:
        r += 3 * jump
        jump *= s
    assert r == 70
    d = Discriminator(256, 1, 2, base_filters=4)
    convs = [l for l in walk_layers(d) if l.__class__.__name__ == "Conv2D"]
    assert [c.strides[0] for c in convs] == strides and all(c.kernel_size == (4, 4) for c in convs)


def test_dropout_only_in_first_three_decoder_blocks():
    g = Generator(256, base_filters=4)
    has_dropout = [any(l.__class__.__name__ == "Dropout" for l in g.get_layer(f"up{i}").layers)
                   for i in range(1, 8)]
    assert has_dropout == [True, True, True, False, False, False, False]

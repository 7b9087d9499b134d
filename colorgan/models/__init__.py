"""Networks: the U-Net generator, PatchGAN discriminator and autoencoder (networks), the EfficientNet-Lite0 encoder
(efficientnet) and its pretrained weights read without PyTorch (torch_legacy), CPU convolution kernels
(fastconv), and the private Keras API they lean on, in one place (keras_compat).

May import: the shared helpers at colorgan's top level, color, data (colorgan.LAYERS).
"""

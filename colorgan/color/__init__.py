"""Colour: the sRGB <-> CIE Lab conversion and the model's L/50 - 1, ab/110 scaling (lab), the generator's output
turned into colour at a vividness (chroma), and Zhang et al.'s quantized ab bins with their rebalancing weights
(ab_classes).

May import: the shared helpers at colorgan's top level (colorgan.LAYERS).
"""

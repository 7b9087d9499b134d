"""Data: what --data names and its split (sources), the scan of a folder and its cache (scan), a split's images
wherever they are (image_sets), one example decoded from its files (examples), TFRecord shards and `colorgan
prepare` which writes them (shards, prepare), the tf.data pipeline with its jitter and batches (pipeline),
old-photo damage for training and scoring (degrade), reading and writing image files (image_files).

May import: the shared helpers at colorgan's top level, color (colorgan.LAYERS).
"""

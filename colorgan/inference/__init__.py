"""Using a trained model: the Colorizer at any size and full resolution (colorizer), files, folders and globs
(files), video (video), old-photo clean-up before colorizing (restore), and the SavedModel, TFLite and ONNX
exports with the way to run them (export, export_formats).

May import: the shared helpers at colorgan's top level, color, data, models, training (colorgan.LAYERS).
"""

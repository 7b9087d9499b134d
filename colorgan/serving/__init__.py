"""Serving: the FastAPI app and its routes (server), reading requests including TF Serving's JSON (http_inputs),
micro-batching (batching), and the web page (web/).

May import: the shared helpers at colorgan's top level, color, data, models, training, inference, evaluation (colorgan.LAYERS).
"""

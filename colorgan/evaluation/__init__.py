"""Scoring: the metrics (metrics), scores against the gray photo, comparisons, grids and frontiers (scores), the
CIFAR-10 classifier behind the semantic metrics (classifier), grid search (sweep) and throughput (bench).

May import: the shared helpers at colorgan's top level, color, data, models, training, inference (colorgan.LAYERS).
"""

"""Training: the losses (losses), FusedAdam and learning-rate schedules (optimizers), the keras.Models that train
(trainers), `train()` and `resume()` (loop), the run directory and loading what it holds (runs), the per-epoch
callbacks (callbacks) and TensorBoard logs (tensorboard_logs).

May import: the shared helpers at colorgan's top level, color, data, models (colorgan.LAYERS).
"""

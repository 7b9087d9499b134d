"""Optimizers and learning-rate schedules.

`FusedAdam` is Keras' Adam with each variable's update done by TensorFlow's fused `ResourceApplyAdam`
kernel. Keras' Adam issues about ten elementwise ops per variable, each reading and writing the whole
tensor; the fused kernel reads the weights and both moments once and updates them in place. On a CPU,
where these ops are limited by memory traffic rather than arithmetic, that is a large saving for a
network the size of pix2pix's generator. The arithmetic is the same (same slots, same checkpoints).

`EpochSchedule` is the learning rate as a function of the optimizer's step: constant, pix2pix's linear
decay to zero over the last epochs, or cosine. It reads the step from the optimizer, so a resumed run
continues on the same curve.
"""
from __future__ import annotations

import math

import keras
from keras import ops

from colorgan.config import AUTO, SCHEDULES, Config


@keras.saving.register_keras_serializable(package="colorgan")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam; on the TensorFlow backend each update is one fused kernel."""

    def update_step(self, gradient, variable, learning_rate):
        if keras.backend.backend() != "tensorflow" or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        beta_1 = ops.cast(self.beta_1, dtype)
        beta_2 = ops.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=ops.power(beta_1, step), beta2_power=ops.power(beta_2, step),
            lr=ops.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=ops.cast(self.epsilon, dtype), grad=ops.cast(gradient, dtype))


@keras.saving.register_keras_serializable(package="colorgan")
class EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate at optimizer step `step`, laid out in epochs of `steps_per_epoch` steps.

    constant: `base_lr` throughout.
    linear:   `base_lr` for the first `epochs - decay_epochs` epochs, then linearly to 0 at the end
              (pix2pix's schedule: constant for n epochs, decay over n more).
    cosine:   base_lr * (1 + cos(pi * progress)) / 2 over all epochs.
    The rate changes every step, not at epoch boundaries, so it is smooth for short runs too.
    """

    def __init__(self, base_lr: float, steps_per_epoch: int, epochs: int, kind: str = "constant",
                 decay_epochs: int | None = None):
        if kind not in SCHEDULES:
            raise ValueError(f"schedule {kind!r} is not one of {', '.join(SCHEDULES)}")
        self.base_lr, self.kind = float(base_lr), kind
        self.steps_per_epoch, self.epochs = int(steps_per_epoch), int(epochs)
        self.decay_epochs = int(decay_epochs) if decay_epochs else max(1, self.epochs // 2)  # None: half

    def __call__(self, step):
        step = ops.cast(step, "float32")
        total = float(max(1, self.steps_per_epoch * self.epochs))
        if self.kind == "constant":
            return ops.convert_to_tensor(self.base_lr, "float32") + 0.0 * step
        if self.kind == "cosine":
            progress = ops.minimum(step / total, 1.0)
            return self.base_lr * 0.5 * (1.0 + ops.cos(math.pi * progress))
        decay_start = float(self.steps_per_epoch * max(0, self.epochs - self.decay_epochs))
        decay_steps = max(1.0, total - decay_start)
        fraction = ops.clip((step - decay_start) / decay_steps, 0.0, 1.0)
        return self.base_lr * (1.0 - fraction)

    def get_config(self):
        return {"base_lr": self.base_lr, "steps_per_epoch": self.steps_per_epoch, "epochs": self.epochs,
                "kind": self.kind, "decay_epochs": self.decay_epochs}


def make_optimizer(cfg: Config, lr: float, steps_per_epoch: int | None, updates_per_step: int = 1):
    """FusedAdam at `lr` (or cfg's schedule of it), clipped if asked, loss-scaled under fp16.

    steps_per_epoch lays the schedule out in epochs; updates_per_step counts a critic's extra updates.
    """
    if cfg.lr_schedule != "constant":
        if not steps_per_epoch:
            raise ValueError("a learning-rate schedule needs steps_per_epoch")
        decay = None if cfg.decay_epochs == AUTO else cfg.decay_epochs
        lr = EpochSchedule(lr, steps_per_epoch * updates_per_step, cfg.epochs, cfg.lr_schedule, decay)
    optimizer = FusedAdam(lr, beta_1=cfg.beta1, global_clipnorm=cfg.clip_norm or None)
    if cfg.precision == "fp16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def inner_iterations(optimizer):
    """The step count of `optimizer`, through a LossScaleOptimizer's wrapper."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.inner_optimizer.iterations
    return optimizer.iterations

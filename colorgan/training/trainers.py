"""The `keras.Model`s that train a generator: compile, metrics, train_step and test_step, nothing else.

  Pix2Pix    U-Net generator + PatchGAN discriminator: adversarial loss + lambda * L1
  Regressor  a generator alone with a pixel loss (the U-Net L1 and autoencoder baselines)

`build_trainer(cfg)` builds the one a config asks for, compiled, with its optimizer slots created.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from colorgan.color.chroma import AB_SCALE, decode
from colorgan.color.hints import simulate_hints
from colorgan.color.lab import from_model_io
from colorgan.config import Config
from colorgan.models import keras_compat
from colorgan.models.networks import build_models, hint_channels, with_hints
from colorgan.runtime import replicas
from colorgan.training.losses import (LOSS_NAMES, chroma_deficit_loss, colourfulness_loss, discriminator_loss,
                                      generator_loss, gradient_penalty, l1_loss, perceptual_loss)
from colorgan.training.optimizers import inner_iterations, make_optimizer


def apply_gradients(optimizer, tape: tf.GradientTape, loss, variables, weight=1.0, scales=None) -> None:
    """Gradient of `loss` (a mean over this replica's images) applied as a mean over the global batch.

    The backward pass starts from weight / replicas instead of 1 (gradients are summed over replicas;
    weight 0 during the L1 warm-up stops the discriminator); under fp16 also from the loss scale, and
    the LossScaleOptimizer unscales (and skips steps whose gradients overflowed). `scales`, one per
    variable, multiplies single gradients (0 for a frozen encoder: with zero gradients from the start,
    Adam's moments stay zero and the weights do not move).
    """
    upstream = ops.cast(weight, loss.dtype) / replicas()
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        upstream = ops.cast(optimizer.scale_loss(upstream), loss.dtype)
    grads = tape.gradient(loss, variables, output_gradients=upstream)
    if scales is not None:
        grads = [g if s is None else g * ops.cast(s, g.dtype) for g, s in zip(grads, scales)]
    optimizer.apply_gradients(zip(grads, variables))


@keras_compat.skip_symbolic_build
class TrainingModel(keras.Model):
    """What both training models share: the generator, how its output becomes colour and what it is scored
    on (the ab term, the colourfulness term), a loss tracker per loss name, and test_step."""

    loss_names: tuple[str, ...] = ()

    def __init__(self, generator: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = None
        self.trackers = {}

    def compile(self, g_optimizer, color_space: str = "lab", ab_loss: str = "l1", class_weights=None,
                colourfulness_weight: float = 0.0, frozen_variables=(), freeze_steps: int = 0,
                perceptual_weight: float = 0.0, perceptual_features=None, chroma_weight: float = 0.0,
                hint_seed: int | None = None, **kwargs):
        """class_weights: the rebalancing weights [Q] of --ab-loss classification; frozen_variables: trained
        only after the generator's first `freeze_steps` steps (a pretrained encoder); perceptual_features: the
        frozen feature network of the perceptual term (efficientnet.perceptual_features), needed when its
        weight is not 0."""
        kwargs.setdefault("jit_compile", False)  # XLA is chosen by the config (runtime.default_xla)
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.color_space, self.ab_loss, self.colourfulness_weight = color_space, ab_loss, colourfulness_weight
        self.perceptual_weight, self.chroma_weight = perceptual_weight, chroma_weight
        # --hints: the generator also takes hints, simulated from each batch's truth (color.hints); hint_seed
        # seeds them, folded with the step count so a resumed run draws what an uninterrupted one would.
        self.hint_seed = hint_seed if hint_channels(self.generator) else None
        if perceptual_weight and perceptual_features is None:
            raise ValueError("a perceptual weight needs the perceptual feature network")
        # Kept out of Keras' tracking: frozen ImageNet weights, not part of the trained state or its checkpoints.
        self._perceptual = [perceptual_features] if perceptual_weight else []
        self.class_weights = None if class_weights is None else tf.constant(class_weights, tf.float32)
        frozen = {id(v) for v in frozen_variables}
        self.frozen = [id(v) in frozen for v in self.generator.trainable_variables]
        self.freeze_steps = freeze_steps
        names = self.loss_names + (("g_class",) if ab_loss == "classification" else ()) + \
            (("g_colour",) if colourfulness_weight else ()) + (("g_percep",) if perceptual_weight else ()) + \
            (("g_chroma",) if chroma_weight else ())
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, gray, training=False):
        return self.generator(with_hints(self.generator, gray), training=training)

    def generator_input(self, gray, target, training: bool):
        """gray, or for a --hints generator gray + hints drawn from the truth (a new draw each training step,
        the same fixed draw for every validation batch)."""
        if self.hint_seed is None:
            return gray
        step = ops.cast(inner_iterations(self.g_optimizer), "int32") if training else -1
        seed = tf.stack([tf.constant(self.hint_seed, tf.int32), step])
        return tf.concat([gray, ops.cast(simulate_hints(target, seed), gray.dtype)], axis=-1)

    def generate(self, gray, target, training: bool) -> tuple:
        """(colour in the model-output scale, the generator's terms): fake ab/110 (or RGB), and the losses
        that need only the generator: g_l1 (always reported), g_class and g_colour when trained on."""
        output = self.generator(self.generator_input(gray, target, training), training=training)
        fake = decode(output, self.color_space) if self.ab_loss == "classification" else output
        terms = {"g_l1": l1_loss(target, fake)}
        if self.ab_loss == "classification":
            from colorgan.color.ab_classes import ab_bins, classification_loss_sparse, soft_encode_sparse
            idx, w = soft_encode_sparse(ops.cast(target, "float32") * AB_SCALE, ab_bins())
            terms["g_class"] = classification_loss_sparse(output, idx, w, self.class_weights)
        if self.chroma_weight:
            terms["g_chroma"] = chroma_deficit_loss(target, fake)
        if self.colourfulness_weight or self.perceptual_weight:
            rgb = from_model_io(gray, fake, self.color_space)
        if self.colourfulness_weight:
            terms["g_colour"] = colourfulness_loss(rgb)
        if self.perceptual_weight:
            terms["g_percep"] = perceptual_loss(self._perceptual[0], rgb, from_model_io(gray, target, self.color_space))
        return fake, terms

    def extra_terms(self, terms) -> tf.Tensor:
        """The colourfulness, perceptual and chroma terms, weighted (0 where not trained on)."""
        extra = 0.0
        if self.chroma_weight:
            extra = extra + self.chroma_weight * terms["g_chroma"]
        if self.colourfulness_weight:
            extra = extra + self.colourfulness_weight * terms["g_colour"]
        if self.perceptual_weight:
            extra = extra + self.perceptual_weight * terms["g_percep"]
        return extra

    def generator_gradient_scales(self):
        """Per generator variable: 0 while the encoder is frozen, else None (no scaling)."""
        if not any(self.frozen):
            return None
        thawed = ops.cast(inner_iterations(self.g_optimizer) >= self.freeze_steps, "float32")
        return [thawed if frozen else None for frozen in self.frozen]

    def losses_for(self, gray, target, training: bool) -> dict:
        raise NotImplementedError

    def _report(self, losses):
        for name, value in losses.items():
            self.trackers[name].update_state(value)
        results = {name: t.result() for name, t in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces each worker's logs with reduce("MEAN", axis=0), which needs an axis.
            results = {name: ops.reshape(value, [1]) for name, value in results.items()}
        return results

    def test_step(self, data):
        gray, target = data
        return self._report(self.losses_for(gray, target, training=False))


class Pix2Pix(TrainingModel):
    """U-Net generator + PatchGAN discriminator; adds only compile and train_step.

    The adversarial loss is one of config.GAN_LOSSES; the discriminator is updated `critic_steps`
    times per generator update, and not at all during the first `warmup_steps` generator steps, when
    the generator trains on L1 alone. During the first `critic_warmup_steps` steps it is the other way
    round: the discriminator trains alone on the generator's outputs and the generator is not updated
    (DeOldify's NoGAN critic pre-training).
    """

    loss_names = LOSS_NAMES

    def __init__(self, generator: keras.Model, discriminator: keras.Model, **kwargs):
        super().__init__(generator, **kwargs)
        self.discriminator = discriminator

    def compile(self, g_optimizer, d_optimizer, lambda_l1: float = 100.0, gan_loss: str = "vanilla",
                gp_weight: float = 10.0, critic_steps: int = 1, label_smoothing: float = 0.0,
                warmup_steps: int = 0, critic_warmup_steps: int = 0, **kwargs):
        super().compile(g_optimizer, **kwargs)
        self.d_optimizer = d_optimizer
        self.critic_warmup_steps = critic_warmup_steps
        self.lambda_l1, self.gan_loss, self.gp_weight = lambda_l1, gan_loss, gp_weight
        self.critic_steps, self.label_smoothing, self.warmup_steps = critic_steps, label_smoothing, warmup_steps

    def _adversary_weight(self):
        """0.0 during the L1-only warm-up, 1.0 after (read from the step count, so resumes agree)."""
        return ops.cast(inner_iterations(self.g_optimizer) >= self.warmup_steps, "float32")

    def _critic_loss(self, gray, target, fake, real_logits, fake_logits, training):
        d = discriminator_loss(real_logits, fake_logits, self.gan_loss, self.label_smoothing)
        if self.gan_loss == "wgan-gp" and training:
            d = d + self.gp_weight * gradient_penalty(self.discriminator, gray, target, fake)
        return d

    def losses_for(self, gray, target, training, adversary_weight=1.0):
        fake, terms = self.generate(gray, target, training)
        real_logits = self.discriminator([gray, target], training=training)
        fake_logits = self.discriminator([gray, fake], training=training)
        # The ab term: lambda * L1, or the classification's cross-entropy in its place.
        lambda_l1 = self.lambda_l1 if self.ab_loss == "l1" else 0.0
        g_total, g_gan = generator_loss(fake_logits, terms["g_l1"], lambda_l1, self.gan_loss, adversary_weight)
        g_total = g_total + terms.get("g_class", 0.0) + self.extra_terms(terms)
        d = self._critic_loss(gray, target, fake, real_logits, fake_logits, training)
        return {"g_total": g_total, "g_gan": g_gan, "d": d, **terms}

    def train_step(self, data):
        gray, target = data
        weight = self._adversary_weight()
        d_vars = self.discriminator.trainable_variables
        for _ in range(self.critic_steps - 1):  # extra critic updates on the same batch
            with tf.GradientTape() as tape:
                d = self.losses_for(gray, target, training=True)["d"]
            apply_gradients(self.d_optimizer, tape, d, d_vars, weight)
        # One forward pass serves both updates. During warm-up the
        # discriminator's gradient is zero, which leaves Adam's weights (and zero moments) unchanged.
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            losses = self.losses_for(gray, target, training=True, adversary_weight=weight)
        update_generator = lambda: apply_gradients(self.g_optimizer, g_tape, losses["g_total"],
                                                   self.generator.trainable_variables,
                                                   scales=self.generator_gradient_scales())
        if self.critic_warmup_steps:
            # The generator's optimizer is not stepped at all while the critic warms up (not stepped with zero
            # gradients: Adam's bias correction follows its step count, so its first real steps would be ~16x).
            critic_steps_done = inner_iterations(self.d_optimizer) // self.critic_steps
            tf.cond(critic_steps_done >= self.critic_warmup_steps, lambda: _done(update_generator()), lambda: _done())
        else:
            update_generator()
        apply_gradients(self.d_optimizer, d_tape, losses["d"], d_vars, weight)
        return self._report(losses)


class Regressor(TrainingModel):
    """A generator trained alone with a pixel loss (the autoencoder and U-Net L1 baselines).

    g_total is the loss trained on (L1 or MSE); g_l1 is always L1, comparable across models.
    """

    loss_names = ("g_total", "g_l1")

    def compile(self, g_optimizer, loss: str = "l1", **kwargs):
        super().compile(g_optimizer, **kwargs)
        self.pixel_loss = loss

    def losses_for(self, gray, target, training):
        fake, terms = self.generate(gray, target, training)
        if self.ab_loss == "classification":
            total = terms["g_class"]
        elif self.pixel_loss == "mse":
            total = ops.mean(ops.square(ops.cast(target, "float32") - ops.cast(fake, "float32")))
        else:
            total = terms["g_l1"]
        return {"g_total": total + self.extra_terms(terms), **terms}

    def train_step(self, data):
        gray, target = data
        with tf.GradientTape() as tape:
            losses = self.losses_for(gray, target, training=True)
        apply_gradients(self.g_optimizer, tape, losses["g_total"], self.generator.trainable_variables,
                        scales=self.generator_gradient_scales())
        return self._report(losses)


def _done(*_):
    """tf.cond's branches must return alike: both return nothing but this constant."""
    return tf.constant(0)


def build_trainer(cfg: Config, steps_per_epoch: int | None = None,
                  strategy: tf.distribute.Strategy | None = None, class_weights=None) -> Pix2Pix | Regressor:
    """The compiled training model for cfg.model, optimizer slots built (so restores are complete).

    steps_per_epoch places learning-rate schedules, the L1 warm-up and the encoder's thaw; the models and
    optimizers are created under `strategy` (default: one device). class_weights: --ab-loss classification's
    rebalancing weights (ab_classes.rebalancing_weights; uniform if not given).
    """
    with (strategy or tf.distribute.get_strategy()).scope():
        generator, discriminator = build_models(cfg)
        perceptual = None
        if cfg.perceptual_weight:
            from colorgan.models.efficientnet import perceptual_features
            perceptual = perceptual_features()
        common = dict(color_space=cfg.color_space, ab_loss=cfg.ab_loss, class_weights=class_weights,
                      colourfulness_weight=cfg.colourfulness_weight, frozen_variables=encoder_variables(generator),
                      perceptual_weight=cfg.perceptual_weight, perceptual_features=perceptual,
                      chroma_weight=cfg.chroma_weight, hint_seed=cfg.seed,
                      freeze_steps=cfg.freeze_encoder_epochs * (steps_per_epoch or 0), jit_compile=cfg.xla == "on")
        if discriminator is None:
            model = Regressor(generator)
            model.compile(g_optimizer=make_optimizer(cfg, cfg.lr, steps_per_epoch), loss=cfg.loss, **common)
        else:
            model = Pix2Pix(generator, discriminator)
            model.compile(g_optimizer=make_optimizer(cfg, cfg.lr, steps_per_epoch),
                          d_optimizer=make_optimizer(cfg, cfg.discriminator_lr, steps_per_epoch, cfg.critic_steps),
                          lambda_l1=cfg.lambda_l1, gan_loss=cfg.gan_loss, gp_weight=cfg.gp_weight,
                          critic_steps=cfg.critic_steps, label_smoothing=cfg.label_smoothing,
                          warmup_steps=cfg.l1_warmup_epochs * (steps_per_epoch or 0),
                          critic_warmup_steps=cfg.critic_warmup_epochs * (steps_per_epoch or 0), **common)
            model.d_optimizer.build(discriminator.trainable_variables)
        model.g_optimizer.build(generator.trainable_variables)
    return model


def encoder_variables(generator: keras.Model) -> list:
    """The pretrained encoder's trainable variables (none for generators without one)."""
    from colorgan.models.networks import ENCODER_NAME
    try:
        return list(generator.get_layer(ENCODER_NAME).trainable_variables)
    except ValueError:
        return []

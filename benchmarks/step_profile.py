"""Where a train step of the shipped recipe spends its time, and what freezing the encoder's first stages saves.

    python benchmarks/step_profile.py [--image-size 128] [--batch-size 16] [--steps 8] [--precision fp32]

The recipe: unet-l1 with --generator effnet-lite0 (Lab, L1 on ab). Each line times one compiled function on
random batches, all in one process, alternating, best of --repeats rounds, so the ratios between lines are what
to read (the machine's other work slows every line alike):

  forward                    the generator's forward pass in training mode
  forward + backward (all)   and the gradients of every trainable weight: the work of a step
  backward from stride N     only the weights from the encoder's stride-N stage on, and the decoder: the
                             backward pass stops there (the stages before it frozen, as pretrained)
  decoder only               the encoder frozen whole: no backward pass through it at all
  train step                 Regressor.train_step: the gradients of all and the Adam update
  + perceptual               the same with --perceptual-weight (the frozen feature network on both images)

Prints one JSON line per line of the table, with images/s.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorgan.cli import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()
import tensorflow as tf  # noqa: E402

from colorgan.config import Config  # noqa: E402
from colorgan.training.losses import l1_loss  # noqa: E402
from colorgan.models.networks import ENCODER_NAME  # noqa: E402
from colorgan.training.trainers import build_trainer  # noqa: E402

# The encoder's first layer at each stride: its weights from here on are trained when the backward pass
# stops at that stride.
STAGE_STARTS = {4: "block1_", 8: "block3_", 16: "block5_"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = p.parse_args(argv)

    cfg = Config(model="unet-l1", generator="effnet-lite0", image_size=args.image_size, batch_size=args.batch_size,
                 precision=args.precision, xla="off")
    model = build_trainer(cfg, steps_per_epoch=100)
    percep = build_trainer(Config(**{**cfg.__dict__, "perceptual_weight": 0.15}), steps_per_epoch=100)
    g = model.generator
    encoder = g.get_layer(ENCODER_NAME)
    encoder_ids = {id(v) for v in encoder.trainable_variables}
    decoder_vars = [v for v in g.trainable_variables if id(v) not in encoder_ids]

    def encoder_from(prefix):
        names = [layer.name for layer in encoder.layers]
        first = next(i for i, n in enumerate(names) if n.startswith(prefix))
        return [v for layer in encoder.layers[first:] for v in layer.trainable_variables]

    gray = tf.random.uniform([args.batch_size, args.image_size, args.image_size, 1], -1, 1)
    target = tf.random.uniform([args.batch_size, args.image_size, args.image_size, 2], -0.3, 0.3)

    def grads_of(variables):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = l1_loss(target, g(gray, training=True))
            return tape.gradient(loss, variables)
        return step

    cases = {"forward": tf.function(lambda: g(gray, training=True)),
             "forward + backward (all)": grads_of(g.trainable_variables)}
    for stride, prefix in STAGE_STARTS.items():
        cases[f"backward from stride {stride}"] = grads_of(decoder_vars + encoder_from(prefix))
    cases["decoder only"] = grads_of(decoder_vars)
    cases["train step"] = tf.function(lambda: model.train_step((gray, target)))
    cases["train step + perceptual"] = tf.function(lambda: percep.train_step((gray, target)))

    best = {name: float("inf") for name in cases}
    for name, fn in cases.items():
        fn()  # tracing
    for _ in range(args.repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                out = fn()
            tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
            best[name] = min(best[name], (time.perf_counter() - start) / args.steps)
    full = best["forward + backward (all)"]
    for name, seconds in best.items():
        print(json.dumps({"case": name, "step_ms": round(seconds * 1000, 1),
                          "images_per_s": round(args.batch_size / seconds, 1),
                          "vs_full_backward": round(full / seconds, 2), "precision": args.precision}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GAN stabilisation flags, schedules, precision, the fused optimizer and the matmul kernels."""
import dataclasses
import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorgan import runtime
from colorgan.models import networks as models
from colorgan.training import optimizers
from colorgan.training import trainers
from colorgan.config import Config
from colorgan.errors import ColorganError
from colorgan.models.fastconv import conv2d_as_matmul, conv2d_transpose_as_matmul, use_matmul_for_small_inputs
from colorgan.training.losses import adversarial_loss, discriminator_loss, gradient_penalty
from colorgan.training.optimizers import EpochSchedule, FusedAdam
from conftest import ROOT, SAMPLE, tiny_config


def _batch(n=4, size=32, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    return (tf.constant(rng.uniform(-1, 1, (n, size, size, 1)), tf.float32),
            tf.constant(rng.uniform(-1, 1, (n, size, size, channels)), tf.float32))


def _weights(model):
    return [w.numpy().copy() for w in model.trainable_weights]


def _changed(before, model):
    return any(not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights))


FLAGS = [
    dict(norm="instance"), dict(norm="group"), dict(norm="none"),
    dict(d_norm="instance"), dict(d_norm="group"), dict(d_norm="none"),
    dict(spectral_norm=True), dict(d_dropout=0.3), dict(g_dropout=0.0),
    dict(gan_loss="lsgan"), dict(gan_loss="hinge"),
    dict(gan_loss="wgan-gp", d_norm="instance", critic_steps=2, gp_weight=10.0),
    dict(label_smoothing=0.1), dict(clip_norm=1.0), dict(d_lr=1e-4),
    dict(lr_schedule="linear"), dict(lr_schedule="cosine", epochs=3),
    dict(precision="bf16"), dict(precision="fp16"),
]


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
def test_each_flag_builds_and_trains_a_step_with_finite_losses(flags):
    cfg = tiny_config(**flags)
    cfg.validate()
    model = trainers.build_trainer(cfg, steps_per_epoch=4)
    g_before, d_before = _weights(model.generator), _weights(model.discriminator)
    # fp16's dynamic loss scale starts at 2^15 and halves on each overflowing (skipped) step
    for _ in range(20 if cfg.precision == "fp16" else 1):
        logs = model.train_step(_batch())
        if int(optimizers.inner_iterations(model.g_optimizer)):
            break
    assert all(math.isfinite(float(v)) for v in logs.values()), logs
    assert _changed(g_before, model.generator) and _changed(d_before, model.discriminator)
    if cfg.precision != "fp16":  # (where G and D may skip different steps)
        assert int(optimizers.inner_iterations(model.d_optimizer)) == cfg.critic_steps


def _layers(model):
    from colorgan.models.keras_compat import walk_layers
    return list(walk_layers(model))


def test_normalisation_flags_build_the_layers_they_name():
    def kinds(model):
        return {type(layer).__name__ for layer in _layers(model)}

    g, d = models.build_models(tiny_config(norm="instance", d_norm="none", spectral_norm=True))
    assert "BatchNormalization" not in kinds(g)
    instance = [layer for layer in _layers(g) if isinstance(layer, keras.layers.GroupNormalization)]
    assert instance and all(layer.groups == layer.gamma.shape[0] for layer in instance)  # a group per channel
    assert not kinds(d) & {"BatchNormalization", "GroupNormalization"}
    convs = [layer for layer in _layers(d) if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(c.use_bias for c in convs)  # no norm after them: they need their bias
    assert sum(isinstance(layer, keras.layers.SpectralNormalization) for layer in _layers(d)) == len(convs)

    g, d = models.build_models(tiny_config(norm="group", d_dropout=0.25))
    groups = [layer for layer in _layers(g) if isinstance(layer, keras.layers.GroupNormalization)]
    assert groups and all(1 < layer.groups < layer.gamma.shape[0] for layer in groups)
    assert {layer.rate for layer in _layers(d) if isinstance(layer, keras.layers.Dropout)} == {0.25}


def test_gan_losses_on_known_logits():
    real, fake = tf.fill((2, 4, 4, 1), 2.0), tf.fill((2, 4, 4, 1), -2.0)
    assert float(discriminator_loss(real, fake, "hinge")) == pytest.approx(0.0)
    assert float(discriminator_loss(tf.ones((2, 4, 4, 1)), tf.zeros((2, 4, 4, 1)), "lsgan")) == pytest.approx(0.0)
    assert float(discriminator_loss(real, fake, "wgan-gp")) == pytest.approx(-4.0)
    assert float(adversarial_loss(fake, "hinge")) == pytest.approx(2.0)
    assert float(adversarial_loss(fake, "lsgan")) == pytest.approx(9.0)
    # one-sided smoothing: a discriminator certain of the real images is now penalised a little
    confident = tf.fill((2, 4, 4, 1), 20.0)
    assert float(discriminator_loss(confident, -confident, "vanilla", 0.1)) > 1.0
    assert float(discriminator_loss(confident, -confident, "vanilla", 0.0)) < 1e-6
    target = tf.fill((2, 4, 4, 1), math.log(0.9 / 0.1))  # sigmoid = 0.9: the smoothed target is optimal
    grads = []
    for logits in (target - 0.1, target + 0.1):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = discriminator_loss(logits, -confident, "vanilla", 0.1)
        grads.append(float(tf.reduce_sum(tape.gradient(loss, logits))))
    assert grads[0] < 0 < grads[1]


def _linear_critic(weight):
    """A critic whose per-image value is <weight, colour>: its gradient norm is ||weight||."""
    return lambda inputs, training=False: tf.reduce_sum(inputs[1] * weight, axis=[1, 2, 3])[:, None, None, None]


def test_gradient_penalty_is_near_zero_for_a_1_lipschitz_critic():
    gray, real = _batch(8, 8)
    _, fake = _batch(8, 8, seed=1)
    w = tf.random.normal((1, 8, 8, 2))
    unit = w / tf.norm(w)
    assert float(gradient_penalty(_linear_critic(unit), gray, real, fake)) < 1e-8
    assert float(gradient_penalty(_linear_critic(3 * unit), gray, real, fake)) == pytest.approx(4.0, rel=1e-4)


def test_gradient_penalty_is_taken_at_random_interpolates():
    # critic 0.5 * ||x||^2 has gradient x: between real = 0 and fake = k, the norm is u * k * sqrt(N),
    # u ~ U(0, 1), so the penalty averages (u s - 1)^2 to s^2 / 3 - s + 1 (s = k sqrt N).
    n, size = 4096, 2
    gray = tf.zeros((n, size, size, 1))
    real, fake = tf.zeros((n, size, size, 2)), tf.fill((n, size, size, 2), 2.0)
    critic = lambda inputs, training=False: 0.5 * tf.reduce_sum(inputs[1] ** 2, axis=[1, 2, 3])[:, None, None, None]  # noqa: E731
    s = 2.0 * math.sqrt(size * size * 2)
    expected = s * s / 3 - s + 1
    assert float(gradient_penalty(critic, gray, real, fake)) == pytest.approx(expected, rel=0.05)
    # at the endpoints it would be 1 (real) or (s - 1)^2 (fake): both far from the expectation
    assert abs(expected - 1) > 1 and abs(expected - (s - 1) ** 2) > 1


def test_schedules_give_the_expected_learning_rates():
    def lr(kind, step, **kw):
        return float(EpochSchedule(1e-3, 100, 10, kind, **kw)(step))

    assert [lr("constant", s) for s in (0, 500, 999)] == pytest.approx([1e-3] * 3)
    # pix2pix: constant for the first half, then linearly to 0 at the end
    assert [lr("linear", s) for s in (0, 499, 500, 750, 1000, 2000)] == pytest.approx(
        [1e-3, 1e-3, 1e-3, 5e-4, 0.0, 0.0], abs=1e-9)
    assert lr("linear", 900, decay_epochs=2) == pytest.approx(5e-4)
    assert lr("linear", 700, decay_epochs=2) == pytest.approx(1e-3)
    assert [lr("cosine", s) for s in (0, 500, 1000)] == pytest.approx([1e-3, 5e-4, 0.0], abs=1e-9)
    assert lr("cosine", 250) == pytest.approx(1e-3 * (1 + math.cos(math.pi / 4)) / 2)


def test_trainer_schedule_follows_the_optimizer_step_and_scales_with_critic_steps():
    cfg = tiny_config(lr=1e-3, epochs=4, lr_schedule="linear", decay_epochs=2, gan_loss="hinge", critic_steps=3)
    model = trainers.build_trainer(cfg, steps_per_epoch=10)
    g, d = model.g_optimizer, model.d_optimizer
    for step, expected in ((0, 1e-3), (20, 1e-3), (30, 5e-4), (40, 0.0)):
        g.iterations.assign(step)
        d.iterations.assign(3 * step)  # the critic takes 3 steps per generator step
        assert float(g.learning_rate) == pytest.approx(expected, abs=1e-9)
        assert float(d.learning_rate) == pytest.approx(expected, abs=1e-9)


def test_l1_warmup_leaves_the_discriminator_alone_then_starts_it():
    model = trainers.build_trainer(tiny_config(l1_warmup_epochs=1), steps_per_epoch=2)
    batch = _batch()
    d_start = _weights(model.discriminator)
    for _ in range(2):
        g_before = _weights(model.generator)
        model.train_step(batch)
        assert _changed(g_before, model.generator)
    assert not _changed(d_start, model.discriminator)
    model.train_step(batch)
    assert _changed(d_start, model.discriminator)


def test_fp16_wraps_the_optimizers_in_loss_scaling():
    model = trainers.build_trainer(tiny_config(precision="fp16"))
    assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.generator.layers[1].compute_dtype == "float16"
    assert all(w.dtype == "float32" for w in model.generator.weights)


def test_bf16_training_keeps_float32_variables():
    model = trainers.build_trainer(tiny_config(precision="bf16"))
    conv_dtypes = {layer.compute_dtype for layer in _layers(model.generator) if isinstance(layer, keras.layers.Conv2D)}
    assert conv_dtypes == {"bfloat16"}
    model.train_step(_batch())
    for net in (model.generator, model.discriminator):
        assert all(w.dtype == "float32" for w in net.weights)
    assert all(v.dtype == "float32" for v in model.g_optimizer.variables if "iteration" not in v.path)


def test_xla_flag_reaches_compile():
    assert trainers.build_trainer(tiny_config(xla="on")).jit_compile is True
    assert trainers.build_trainer(tiny_config(xla="off")).jit_compile is False
    assert Config(xla="auto").resolved(32).xla == ("on" if tf.config.list_physical_devices("GPU") else "off")


def test_fused_adam_matches_keras_adam():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(5, 7)).astype("float32")
    grads = [tf.constant(rng.normal(size=(5, 7)), tf.float32) for _ in range(6)]
    results = []
    for opt in (keras.optimizers.Adam(1e-2, beta_1=0.5), FusedAdam(1e-2, beta_1=0.5)):
        var = keras.Variable(start)
        for g in grads:
            opt.apply_gradients([(g, var)])
        results.append(var.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(results[0], start)


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (4, 4), (3, 5), (2, 1)])
def test_matmul_convolutions_equal_the_stock_layers_values_and_gradients(shape):
    x = tf.random.normal((3, *shape, 6))
    conv = keras.layers.Conv2D(5, 4, strides=2, padding="same", use_bias=False)
    convt = keras.layers.Conv2DTranspose(5, 4, strides=2, padding="same", use_bias=False)
    for layer, fast in ((conv, lambda x: conv2d_as_matmul(x, conv.kernel)),
                        (convt, lambda x: conv2d_transpose_as_matmul(x, convt.kernel))):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            ref, out = layer(x), fast(x)
            ref_sum, out_sum = tf.reduce_sum(ref * ref), tf.reduce_sum(out * out)
        np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-5)
        for target in (x, layer.kernel):
            np.testing.assert_allclose(tape.gradient(out_sum, target).numpy(),
                                       tape.gradient(ref_sum, target).numpy(), rtol=1e-4, atol=1e-4)


def test_swapped_generator_computes_the_same_and_saves_as_plain_keras(tmp_path):
    cfg = tiny_config(image_size=16)
    generator, _ = models.build_models(cfg)  # the swap is on (no GPU here)
    stock = keras.models.clone_model(generator)
    stock.set_weights(generator.get_weights())
    assert use_matmul_for_small_inputs(generator) > 0
    x = tf.random.normal((2, 16, 16, 1))
    fast = tf.function(lambda x: generator(x, training=False))  # static shapes: the matmul path
    np.testing.assert_allclose(fast(x).numpy(), stock(x, training=False).numpy(), atol=1e-5)
    generator.save(tmp_path / "g.keras")
    code = ("import keras, numpy as np; m = keras.models.load_model(r'%s', compile=False); "
            "print(sorted({type(l).__name__ for s in m.layers for l in [s, *getattr(s, 'layers', [])]}))" % (tmp_path / "g.keras"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Conv2DTranspose" in out.stdout


def test_config_rejects_inconsistent_technique_flags():
    for bad, flag in [(dict(gan_loss="wgan-gp"), "--d-norm"), (dict(gan_loss="hinge", label_smoothing=0.1),
                                                               "--label-smoothing"),
                      (dict(epochs=3, decay_epochs=4), "--decay-epochs"), (dict(d_dropout=1.0), "--d-dropout"),
                      (dict(critic_steps=0), "--critic-steps"), (dict(clip_norm=-1.0), "--clip-norm"),
                      (dict(norm="layer"), "--norm"), (dict(precision="fp64"), "--precision")]:
        with pytest.raises(ColorganError, match=flag):
            dataclasses.replace(Config(), **bad).validate()


def test_train_cli_records_the_technique_flags(tmp_path):
    cmd = [sys.executable, str(ROOT / "train.py"), "--data", str(SAMPLE), "--image-size", "16", "--base-filters", "4",
           "--batch-size", "8", "--epochs", "2", "--steps-per-epoch", "2", "--val-steps", "1", "--precision", "fp32",
           "--num-samples", "2", "--checkpoint-dir", str(tmp_path), "--run-name", "flags",
           "--gan-loss", "hinge", "--spectral-norm", "--d-norm", "instance", "--lr-schedule", "linear",
           "--l1-warmup-epochs", "1", "--clip-norm", "5", "--d-lr", "1e-4"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    saved = json.loads((tmp_path / "flags" / "config.json").read_text())
    assert (saved["gan_loss"], saved["spectral_norm"], saved["d_norm"], saved["lr_schedule"],
            saved["l1_warmup_epochs"], saved["clip_norm"], saved["d_lr"]) == ("hinge", True, "instance", "linear",
                                                                             1, 5.0, 1e-4)
    bad = subprocess.run(cmd[:2] + ["--gan-loss", "wgan"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--gan-loss" in bad.stderr


STRATEGY_SCRIPT = r"""
import sys, json, dataclasses
sys.path.insert(0, sys.argv[1])
from colorgan.cli import import_tensorflow_quietly
import_tensorflow_quietly()
import numpy as np, tensorflow as tf, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from colorgan import runtime
from colorgan.training import trainers
from colorgan.config import Config

cfg = Config(image_size=16, batch_size=8, base_filters=4, g_dropout=0.0, precision="fp32", xla="off")
rng = np.random.default_rng(0)
gray = rng.uniform(-1, 1, (24, 16, 16, 1)).astype("float32")
ab = rng.uniform(-1, 1, (24, 16, 16, 2)).astype("float32")
start = None

def run(strategy_name, optimizer):
    global start
    strategy = runtime.make_strategy(strategy_name)
    model = trainers.build_trainer(dataclasses.replace(cfg, strategy=strategy_name), 3, strategy)
    if optimizer == "sgd":  # gradient-scale mistakes show with SGD (Adam hides them)
        with strategy.scope():
            model.g_optimizer, model.d_optimizer = keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05)
    nets = [model.generator, model.discriminator]
    if start is None:
        start = [n.get_weights() for n in nets]
    for n, w in zip(nets, start):
        n.set_weights(w)
    ds = tf.data.Dataset.from_tensor_slices((gray, ab)).batch(8).repeat()
    model.fit(ds, epochs=1, steps_per_epoch=3, verbose=0, shuffle=False)
    return strategy.num_replicas_in_sync, [w for n in nets for w in n.get_weights()]

out = {}
for optimizer in ("sgd", "adam"):
    r1, one = run("none", optimizer)
    r2, two = run("mirrored", optimizer)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(one, two))
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(one, [w for n in start for w in n]))
    out[optimizer] = dict(replicas=(r1, r2), max_diff=diff, moved=moved)
print(json.dumps(out))
"""


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device():
    out = subprocess.run([sys.executable, "-c", STRATEGY_SCRIPT, str(ROOT)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for optimizer, r in result.items():
        assert r["replicas"] == [1, 2]
        assert r["moved"] > 1e-3, (optimizer, r)  # training changed the weights
    assert result["sgd"]["max_diff"] < 1e-5, result
    assert result["adam"]["max_diff"] < 1e-4, result


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_multiworker_strategy_trains_with_two_local_workers(tmp_path):
    workers = [f"localhost:{_free_port()}" for _ in range(2)]
    cmd = [sys.executable, str(ROOT / "train.py"), "--image-size", "16", "--base-filters", "4", "--epochs", "2",
           "--steps-per-epoch", "2", "--val-steps", "1", "--precision", "fp32", "--num-samples", "2",
           "--strategy", "multiworker", "--checkpoint-dir", str(tmp_path / "runs"), "--run-name", "mw"]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        env = dict(__import__("os").environ, TF_CONFIG=tf_config, TMPDIR=str(tmp_path))
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs[0][-2000:] + outputs[1][-2000:]
    run = tmp_path / "runs" / "mw"
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and (run / "generator.keras").exists()  # header + 2 epochs, written by the chief
    assert not list(tmp_path.glob("colorgan-worker-*"))  # the other worker's scratch copy is gone
    # both workers logged the same (all-reduced) losses
    last = [[line for line in out.splitlines() if line.startswith("2/2")][-1].split(" - ", 3)[-1] for out in outputs]
    assert last[0] == last[1]
    bad = subprocess.run(cmd[:-2], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--run-name" in bad.stderr


# One worker of test_two_workers_over_shards_each_read_their_own: the training batches of one epoch as training
# makes them (training.training_data, given to the strategy as Keras' fit gives it), and the colour of each
# example this worker gets.
COUNT_EXAMPLES = """
import json, sys
from colorgan.cli import setup_logging
from colorgan.runtime import make_strategy
setup_logging()
strategy = make_strategy("multiworker")  # first, as training does: the cluster is set up before other TF work
import numpy as np
import tensorflow as tf
from colorgan.data import pipeline
from colorgan.training import loop as training
from colorgan.config import Config
from colorgan.data.sources import find_source
cfg = Config(data=sys.argv[1], image_size=32, batch_size=4, seed=1, strategy="multiworker", run_name="mw")
source = find_source(cfg)
cfg = cfg.resolved(source.default_image_size)
batches = strategy.experimental_distribute_dataset(training.training_data(cfg, source, cfg.seed))
seen, batch = [], iter(batches)
for _ in range(pipeline.steps_per_pass(len(source.train), cfg.batch_size)):  # one epoch
    x, y = next(batch)
    for xs, ys in zip(strategy.experimental_local_results(x), strategy.experimental_local_results(y)):
        seen += [np.concatenate([a.mean((0, 1)), b.mean((0, 1))]).round(4).tolist()
                 for a, b in zip(xs.numpy(), ys.numpy())]
strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)  # both done before either leaves
print(json.dumps(seen))
"""


def test_two_workers_over_shards_each_read_their_own(tmp_path):
    """Two local workers (MultiWorkerMirroredStrategy) over 2 shards: in one epoch each reads its own shard's
    examples, once each, and together they see every training example exactly once."""
    from colorgan.data import sources as data
    from colorgan.data import pipeline
    from colorgan.data import prepare
    from colorgan.data.shards import ShardImages
    from test_prepare import colour_ids, flat_colours, shard_mb_for

    folder = flat_colours(tmp_path / "imgs", 16)
    out = tmp_path / "shards"
    prepare.prepare(folder, out, shard_mb=shard_mb_for(folder, 2), val_split=0.0, progress=False)
    train = data.find_source(Config(data=str(out))).train
    assert len(train.files) == 2
    shards = [colour_ids(pipeline.eval_dataset(ShardImages([f], [n], 32), size=32, batch_size=8,
                                               color_space="lab")) for f, n in zip(train.files, train.counts)]
    workers = [f"localhost:{_free_port()}" for _ in range(2)]
    procs, logs = [], [(tmp_path / f"worker{i}.out", tmp_path / f"worker{i}.err") for i in range(2)]
    for index, (stdout, stderr) in enumerate(logs):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        env = dict(__import__("os").environ, TF_CONFIG=tf_config, TMPDIR=str(tmp_path))
        with open(stdout, "w") as o, open(stderr, "w") as e:  # files, not pipes: a full pipe would stall a worker
            procs.append(subprocess.Popen([sys.executable, "-c", COUNT_EXAMPLES, str(out)], env=env, cwd=ROOT,
                                          stdout=o, stderr=e))
    codes = [p.wait(timeout=600) for p in procs]
    outputs = [(o.read_text(), e.read_text()) for o, e in logs]
    assert codes == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    seen = [[tuple(x) for x in json.loads(printed.strip().splitlines()[-1])] for printed, _ in outputs]
    assert all("16 images in shards" in err and "reads all shards" not in err for _, err in outputs)  # no DATA
    assert sorted(seen[0]) == sorted(shards[0]) and sorted(seen[1]) == sorted(shards[1])  # its own shard, once
    assert sorted(seen[0] + seen[1]) == sorted(shards[0] + shards[1]) and len(set(seen[0] + seen[1])) == 16

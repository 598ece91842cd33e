"""Training: the loss falls, runs repeat under a seed, divergence and stops keep the weights."""
import dataclasses
import math
import os

import pytest
import torch

from vae_core.config import DataConfig, LossConfig, ModelConfig, TrainConfig
from vae_core.data.normalize import fit_normalizer
from vae_core.jobs.progress import History
from vae_core.jobs.training_job import TrainingJob, history_rows
from vae_core.model.evaluate import evaluate
from vae_core.runs.folders import load_run
from vae_core.training.trainer import (NOISE_SEED_OFFSET, SIGMA_FIT_BATCH, Trainer, TrainingDiverged, make_run_config,
                                       prepare_data)


def small_config(**train):
    return make_run_config(DataConfig(n_train=512, n_test=128), ModelConfig(width=8, latent_dim=4),
                           LossConfig(likelihood="bernoulli"),
                           TrainConfig(**{"epochs": 2, "batch_size": 64, "lr": 2e-3, **train}))


@pytest.fixture(scope="module")
def data():
    return prepare_data(small_config())


def test_a_short_training_on_sprites_lowers_the_loss(data):
    config = small_config(epochs=4)
    trainer = Trainer(config, data.train.images, data.normalizer)
    before = evaluate(trainer.model, data.normalizer, data.test.images)
    history = list(trainer.steps())
    after = evaluate(trainer.model, data.normalizer, data.test.images)
    assert len(history) == 4 * 512 // 64
    assert after.elbo_nats > before.elbo_nats + 100  # nats per image
    first, last = history[:4], history[-4:]
    assert sum(m.loss for m in last) < sum(m.loss for m in first)
    m = history[-1]
    assert m.elbo_nats == pytest.approx(-(m.recon_nats + m.kl_nats), rel=1e-5)
    assert len(m.kl_per_dim) == 4 and m.epoch == pytest.approx(4.0)


def test_training_is_reproducible_under_a_seed(data):
    def run():
        trainer = Trainer(small_config(epochs=1), data.train.images, data.normalizer)
        return [m.loss for m in trainer.steps()], trainer.model.state_dict()

    (loss_a, state_a), (loss_b, state_b) = run(), run()
    assert loss_a == loss_b
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_randomness_comes_from_the_seed_not_the_global_state(data):
    def run():
        trainer = Trainer(small_config(epochs=1), data.train.images, data.normalizer)
        return [m.loss for m in trainer.steps()]

    torch.manual_seed(1)
    first = run()
    torch.manual_seed(2)
    assert run() == first


def test_a_family_starts_from_the_same_weights(data):
    """Configs that differ in the output activation or the likelihood share every initial weight."""
    base = small_config()
    tanh = dataclasses.replace(base, model=dataclasses.replace(base.model, output_activation="tanh"),
                               loss=LossConfig(likelihood="gaussian_learned"))
    a = Trainer(base, data.train.images, data.normalizer).model.state_dict()
    b = Trainer(tanh, data.train.images, data.normalizer).model.state_dict()
    shared = set(a) & set(b)
    assert len(shared) > 10 and all(torch.equal(a[k], b[k]) for k in shared if k != "log_sigma")


def test_time_budget_stops_training(data):
    trainer = Trainer(small_config(epochs=1000, time_budget_s=0.5), data.train.images, data.normalizer)
    history = list(trainer.steps())
    assert 0 < len(history) < 1000 * 8
    assert history[-1].elapsed_s < 5


def test_divergence_stops_with_a_message_and_keeps_finite_weights(data):
    trainer = Trainer(small_config(epochs=50, lr=1.0), data.train.images, data.normalizer)
    with torch.no_grad():  # make the next loss non-finite, as a blow-up would
        trainer.model.fc_logvar.bias.fill_(1e4)
    with pytest.raises(TrainingDiverged, match="diverged at step 1.*learning rate"):
        list(trainer.steps())
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert trainer.model.fc_logvar.bias.abs().max() < 1e3  # the last good weights are back


def test_refused_combinations_raise_before_training(data):
    config = make_run_config(DataConfig(normalization="symmetric", n_train=64), ModelConfig(width=8),
                             LossConfig(likelihood="bernoulli"), TrainConfig())
    symmetric = fit_normalizer("symmetric", data.train.images)
    with pytest.raises(ValueError, match="Bernoulli \\(BCE\\) likelihood needs targets in \\[0, 1\\]"):
        Trainer(config, data.train.images, symmetric)


def test_job_stop_saves_the_run_and_history_is_bounded(tmp_path, data):
    job = TrainingJob(small_config(epochs=1000), tmp_path, data=data, history_cap=50, preview_every_s=0.0,
                      checkpoint_every_s=0.2)
    assert job.run_dir.parent == tmp_path  # fixed before it starts: checkpoints and the final save share it
    job.start()
    for _ in range(600):
        snap = job.snapshot()
        if (snap.history and snap.history[-1].step >= 120) or job.join(0.05):
            break
    for _ in range(200):  # one is written every 0.2 s
        if (job.run_dir / "metrics.json").exists() or job.join(0.05):
            break
    checkpoint = load_run(job.run_dir).metrics
    assert checkpoint["status"] == "running" and checkpoint["pid"] == os.getpid() and checkpoint["steps"] > 0
    job.stop()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.status == "stopped" and snap.done
    assert len(snap.history) <= 51 and snap.history[0].step == 1 and snap.history[-1].step >= 120
    assert snap.preview is not None and snap.preview.recons.shape == (8, 3, 32, 32)
    run = load_run(snap.run_dir)
    assert run.metrics["status"] == "stopped" and run.metrics["steps"] == snap.history[-1].step
    assert math.isfinite(run.metrics["test"]["elbo_nats"])


def test_job_failure_is_reported_not_raised(tmp_path):
    config = make_run_config(DataConfig(dataset="mnist", data_dir=str(tmp_path / "empty")), ModelConfig(),
                             LossConfig(), TrainConfig())
    job = TrainingJob(config, tmp_path).start()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.status == "failed" and "MNIST" in snap.message and str(tmp_path / "empty") in snap.message
    assert snap.run_dir is None


def test_history_keeps_every_kth_step_from_the_first_and_the_latest():
    history = History(cap=1000)
    for step in range(1, 10_001):
        history.append(step)
    points = history.points()
    assert len(points) <= 1001 and points[0] == 1 and points[-1] == 10_000
    gaps = {b - a for a, b in zip(points[:-2], points[1:-1])}
    assert gaps == {history.stride} and history.stride == 16  # 10,000 steps / 16 = 625 kept, under the cap
    assert points[-2] == 1 + 16 * 624  # the last kept point, then the latest


def test_history_at_small_counts_keeps_everything_without_duplicating_the_latest():
    history = History(cap=4)
    for step in range(1, 4):
        history.append(step)
    assert history.points() == (1, 2, 3)
    for step in range(4, 8):
        history.append(step)
    assert history.points() == (1, 3, 5, 7) and history.stride == 2


def test_history_rows_keep_the_first_steps_and_the_last():
    class Point:
        def __init__(self, step):
            self.step = self.epoch = self.recon_nats = self.kl_nats = self.elbo_nats = self.elapsed_s = step

    rows = history_rows([Point(s) for s in range(1, 5001)], max_rows=1000)
    assert rows["step"][:3] == [1, 6, 11] and rows["step"][-1] == 5000 and len(rows["step"]) == 1001


def test_a_diverging_job_says_so_and_saves_its_last_good_weights(tmp_path, data):
    job = TrainingJob(small_config(epochs=20, lr=1.0), tmp_path, data=data).start()  # lr 1 blows up at once
    assert job.join(120)
    snap = job.snapshot()
    assert snap.status == "diverged" and "diverged at step" in snap.message and "learning rate" in snap.message
    run = load_run(snap.run_dir)  # loading checks every tensor is finite
    assert run.metrics["status"] == "diverged" and math.isfinite(run.metrics["test"]["elbo_nats"])


def test_a_failed_save_is_reported_not_lost_silently(tmp_path, data, monkeypatch):
    import vae_core.jobs.training_job as jobs

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jobs, "save_run", disk_full)
    job = TrainingJob(small_config(epochs=1), tmp_path, data=data).start()
    assert job.join(120)
    snap = job.snapshot()
    assert snap.status == "failed" and "No space left" in snap.message and "VAE_LAB_RUNS" in snap.message


def test_a_latent_size_sweep_shares_every_layer_whose_shape_allows(data):
    """Only the layers that touch z change shape; the conv stacks start alike (issue 7: wherever shapes allow)."""
    base = small_config()
    wider = dataclasses.replace(base, model=dataclasses.replace(base.model, latent_dim=7))
    a = Trainer(base, data.train.images, data.normalizer).model.state_dict()
    b = Trainer(wider, data.train.images, data.normalizer).model.state_dict()
    layers = {k.rsplit(".", 1)[0] for k in a}
    alike = [layer for layer in layers  # every tensor of the layer has the same shape in both
             if all(a[k].shape == b[k].shape for k in a if k.rsplit(".", 1)[0] == layer)]
    assert any(layer.startswith("decoder.") for layer in alike)  # convs after the reshaped layer
    assert all(torch.equal(a[k], b[k]) for k in a if k.rsplit(".", 1)[0] in alike)


def optimal_config(normalization: str = "symmetric"):
    return make_run_config(DataConfig(n_train=512, n_test=64, normalization=normalization),
                           ModelConfig(width=8, latent_dim=4, output_activation="linear"),
                           LossConfig(likelihood="gaussian_optimal"), TrainConfig(epochs=1, batch_size=64, lr=2e-3))


def training_set_log_sigma(model, images, normalizer, seed):
    """log sqrt(mean squared error over every training pixel), z ~ q(z|x) drawn as the Trainer does: written out
    from encode and decode, not through the library's fit."""
    generator = torch.Generator().manual_seed(seed + NOISE_SEED_OFFSET)
    model.eval()
    sse, count = 0.0, 0
    with torch.no_grad():
        for chunk in images.split(SIGMA_FIT_BATCH):
            x = normalizer.forward(chunk.double() / 255).float()
            mu, logvar = model.encode(x)
            eps = torch.randn(mu.shape, generator=generator)
            sse += (x - model.decode(mu + torch.exp(0.5 * logvar) * eps)).double().pow(2).sum().item()
            count += x.numel()
    return 0.5 * math.log(sse / count)


def test_gaussian_optimal_keeps_the_sigma_of_the_whole_training_set_not_the_last_batch():
    config = optimal_config()
    data = prepare_data(config)
    trainer = Trainer(config, data.train.images, data.normalizer)
    list(trainer.steps())
    last_batch = trainer.model.log_sigma.item()
    trainer.fit_sigma()
    assert trainer.model.training  # fit_sigma leaves the model in the mode it found it in
    fitted = trainer.model.log_sigma.item()
    expected = training_set_log_sigma(trainer.model, data.train.images, data.normalizer, config.train.seed)
    assert fitted == pytest.approx(expected, abs=1e-5)
    assert abs(fitted - last_batch) > 1e-3  # the last batch's sigma* was another number
    trainer.model.eval()
    assert trainer.model.decoder_log_sigma().item() == fitted  # what evaluation uses


def test_a_finished_gaussian_optimal_job_saves_the_training_set_sigma_and_its_floor(tmp_path):
    config = optimal_config("zscore")
    data = prepare_data(config)
    job = TrainingJob(config, tmp_path, data=data, preview_every_s=1e9, checkpoint_every_s=1e9).start()
    assert job.join(120)
    run = load_run(job.snapshot().run_dir)
    expected = training_set_log_sigma(run.model, data.train.images, data.normalizer, config.train.seed)
    assert run.model.log_sigma.item() == pytest.approx(expected, abs=1e-5)
    # The floor is not saved: loading computes it from the run's normalizer, a quarter grey level per channel.
    grey = run.model.log_sigma_floor.exp().flatten() * torch.tensor(run.normalizer.scale) * 255
    torch.testing.assert_close(grey, torch.full_like(grey, 0.25))
    assert "log_sigma_floor" not in run.model.state_dict()

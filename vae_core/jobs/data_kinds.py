"""What a job does that depends on the kind of data: images are evaluated with bits/dim and PSNR and keep test
images and previews; vectors are evaluated in nats per raw row (evaluate_vectors) and keep neither (a preview
or a sample is an image)."""
from __future__ import annotations

from vae_core.config import RunConfig
from vae_core.data.base import ImageDataset
from vae_core.data.vectors.dataset import VectorDataset
from vae_core.model.evaluate import EvalMetrics, evaluate
from vae_core.model.evaluate_vectors import VectorEvalMetrics, evaluate_vectors
from vae_core.model.vae import VAE
from vae_core.runs.samples import samples_to_keep
from vae_core.training.trainer import TrainingData

TestMetrics = EvalMetrics | VectorEvalMetrics  # a run's test evaluation: of its images, or of its rows


def evaluate_test(model: VAE, data: TrainingData, config: RunConfig, steps: int,
                  iwae_k: int = 0) -> TestMetrics:
    """The model on data's test split: its images, or its rows."""
    test = data.test
    if isinstance(test, VectorDataset):
        return evaluate_vectors(model, data.normalizer, test.x, test.feature_names, config=config, steps=steps,
                                iwae_k=iwae_k)
    return evaluate(model, data.normalizer, test.images, dataset=config.data.dataset, config=config, steps=steps,
                    iwae_k=iwae_k)


def samples_for(config: RunConfig, test: ImageDataset | VectorDataset) -> ImageDataset | None:
    """The test images a run carries (samples_to_keep); none for vectors."""
    return samples_to_keep(config, test) if isinstance(test, ImageDataset) else None


def keeps_images(config: RunConfig) -> bool:
    """Whether a run has previews, kept samples and page estimates: images do, vectors not (yet)."""
    return config.data.kind == "images"

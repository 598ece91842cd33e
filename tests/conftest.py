import pytest
import torch

pytest.register_assert_rewrite("tests.helpers")  # its shared checks report like a test's own asserts

from vae_core.config import DataConfig
from vae_core.data.datasets import load_dataset


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread, as the app runs: on a small shared CPU torch's pool makes tiny ops ~30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _private_uploads(tmp_path, monkeypatch):
    """Each test's browsers keep their uploads in its own folder, never in the machine's shared one."""
    monkeypatch.setenv("VAE_LAB_UPLOADS", str(tmp_path / "uploads"))


@pytest.fixture(scope="module")
def sprites_test():
    """The sprites' test split, its first 64: (64, 3, 32, 32) uint8."""
    return load_dataset(DataConfig(n_test=64), "test").images


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser test files first: each is long, and a long file started last on a worker sets when the whole run
    ends; the many short files then fill the workers up (longest first packs them best)."""
    items.sort(key=lambda item: "e2e" not in item.path.parts)  # stable: each file's own order is kept

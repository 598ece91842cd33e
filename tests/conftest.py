import pytest
import torch


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

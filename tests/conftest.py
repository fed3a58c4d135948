"""Shared fixtures. Real recorded data lives outside the repo (research-only licences)."""
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("ASMA_REALDATA", REPO.parent / "shared" / "realdata"))


@pytest.fixture(scope="session")
def realdata_dir() -> Path:
    """Path to ../shared/realdata for module- or session-scoped fixtures; skips when it is absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real skeleton data not found at {REALDATA} (set ASMA_REALDATA); "
                    "it is research-only and never shipped with the package")
    return REALDATA


@pytest.fixture
def realdata(realdata_dir) -> Path:
    """Path to ../shared/realdata; skips the test (with the reason) when it is absent."""
    return realdata_dir


# One intra-op thread: on a shared or loaded 2-core machine torch's 2-thread spin-waiting can
# make small ops 10-70x slower; tests are many small models, so 1 thread is the robust choice.
torch.set_num_threads(int(os.environ.get("ASMA_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _threads_and_seed():
    torch.manual_seed(0)
    yield

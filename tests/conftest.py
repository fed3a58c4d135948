"""Shared fixtures. Real recorded data lives outside the repo (research-only licences)."""
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("ASMA_REALDATA", REPO.parent / "shared" / "realdata"))


@pytest.fixture
def realdata() -> Path:
    """Path to ../shared/realdata; skips the test (with the reason) when it is absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real skeleton data not found at {REALDATA} (set ASMA_REALDATA); "
                    "it is research-only and never shipped with the package")
    return REALDATA


@pytest.fixture(autouse=True)
def _threads_and_seed():
    torch.manual_seed(0)
    yield

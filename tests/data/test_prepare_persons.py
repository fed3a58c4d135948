"""max_persons=0 is refused by the library, not silently replaced by the dataset's default."""
import pytest

from asma.data.prepare import prepare_dataset
from asma.data.prepare.pipeline import _persons
from asma.data.prepare.specs import PrepareError


def test_persons_default_and_bounds():
    assert _persons(None, 2) == 2
    assert _persons(1, 2) == 1
    for bad in (0, -3):
        with pytest.raises(PrepareError, match=f"max_persons must be at least 1, got {bad}"):
            _persons(bad, 2)


def test_prepare_refuses_zero_persons_before_reading(tmp_path):
    with pytest.raises(PrepareError, match="max_persons must be at least 1, got 0"):
        prepare_dataset("ntu60", tmp_path, tmp_path / "out", max_persons=0)
    assert not (tmp_path / "out").exists()

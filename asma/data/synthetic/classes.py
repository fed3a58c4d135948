"""How many one-person and two-person classes a dataset has, and their names."""
from __future__ import annotations

from typing import List, Tuple, Union

from ...graph import Skeleton, get_layout
from .actions import _HUMAN_PAIR, _HUMAN_SINGLE
from .body import _human_joint_map
from .config import _check_int
from .generic import _GENERIC_PAIR, _GENERIC_SINGLE


def _class_plan(num_classes: int, num_persons: int, n_single: int, n_pair: int) -> Tuple[int, int]:
    """How many one-person and two-person classes to use.

    With two persons about a quarter of the classes are interactions (at least one), so the
    default 12 classes hold 9 one-person actions and 3 interactions."""
    limit = n_single + (n_pair if num_persons == 2 else 0)
    if num_classes > limit:
        raise ValueError(
            f"num_classes={num_classes} but only {limit} distinct action generators exist for "
            f"num_persons={num_persons} ({n_single} one-person"
            + (f" + {n_pair} two-person actions)" if num_persons == 2 else
               f" actions; num_persons=2 adds {n_pair} interactions)"))
    if num_persons == 1 or num_classes < 2:
        return num_classes, 0
    pairs = max(min(n_pair, max(1, num_classes // 4)), num_classes - n_single)
    return num_classes - pairs, pairs


def class_names(num_classes: int, num_persons: int,
                layout: Union[str, Skeleton, None] = None) -> List[str]:
    """The class names :func:`make_synthetic` uses for these settings, in label order.

    Args:
        num_classes: number of classes.
        num_persons: 1 (one-person actions only) or 2 (about a quarter are interactions, listed
            after the one-person actions).
        layout: for a custom (non-human) layout the generic names ``motion_XX`` /
            ``pair_motion_XX`` are returned; default: a human layout.

    Shapes:
        - **output**: a list of ``num_classes`` strings; label ``k`` is ``output[k]``.

    Raises:
        ValueError: if ``num_classes`` exceeds the number of distinct generators (the message
            says how many exist).
    """
    _check_int("num_classes", num_classes, 1)
    _check_int("num_persons", num_persons, 1, 2)
    human = layout is None or _human_joint_map(get_layout(layout)) is not None
    if human:
        ns, npair = _class_plan(num_classes, num_persons, len(_HUMAN_SINGLE), len(_HUMAN_PAIR))
        return [n for n, _ in _HUMAN_SINGLE[:ns]] + [n for n, _ in _HUMAN_PAIR[:npair]]
    ns, npair = _class_plan(num_classes, num_persons, _GENERIC_SINGLE, _GENERIC_PAIR)
    return [f"motion_{k:02d}" for k in range(ns)] + [f"pair_motion_{k:02d}" for k in range(npair)]

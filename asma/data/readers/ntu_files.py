"""NTU RGB+D around the per-file reader of :mod:`asma.data.readers.ntu`: the official action
names, the missing-skeleton lists, finding the ``.skeleton`` files of a dataset, and writing the
format (tests, benchmarks, synthetic data)."""
from __future__ import annotations

import os
from typing import List, Sequence, Set, Tuple, Union

import numpy as np

from .ntu import _NAME_RE, JOINT_VALUES


def read_missing_list(path: Union[str, "os.PathLike[str]"]) -> Set[str]:
    """Sample names from an official "samples with missing skeletons" list.

    Header sentences, blank lines, CR and a ``.skeleton`` extension are tolerated; only tokens
    matching ``SsssCcccPpppRrrrAaaa`` are kept.
    """
    with open(path, "rb") as fh:
        return parse_missing_list(fh.read().decode("utf-8", errors="replace"))


def parse_missing_list(text: str) -> Set[str]:
    """The ``SsssCcccPpppRrrrAaaa`` sample names in the text of a missing-skeleton list."""
    return {m.group(0) for m in _NAME_RE.finditer(text)}


# -------------------------------------------------------------------------------------------
# writer (tests, benchmarks, synthetic data in the same format)

_DEFAULT_INFO = "0 1 1 1 1 0 0.01 -0.25 2"


def format_ntu_skeleton(frames: Sequence[Sequence[Tuple[int, np.ndarray]]], newline: str = "\r\n",
                        info: str = _DEFAULT_INFO) -> str:
    """Write frames in the ``.skeleton`` text format.

    Args:
        frames: per frame, a list of ``(body_id, joints)`` with ``joints`` ``(25, 3)`` (x, y, z;
            the other 9 values are filled in) or ``(25, 12)``.
        newline: ``"\\r\\n"`` (as NTU ships) or ``"\\n"``.
        info: the 9 body-line values after the body id.
    """
    out: List[str] = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for bid, joints in bodies:
            j = np.asarray(joints, dtype=np.float64)
            if j.shape[1] == 3:
                full = np.zeros((j.shape[0], JOINT_VALUES))
                full[:, :3] = j
                full[:, 3:5] = (256.0, 212.0)
                full[:, 5:7] = (960.0, 540.0)
                full[:, 7] = 1.0
                full[:, 11] = 2
                j = full
            out.append(f"{int(bid)} {info}")
            out.append(str(j.shape[0]))
            for row in j:
                out.append(" ".join(f"{v:.7g}" for v in row[:11]) + f" {int(row[11])}")
    return newline.join(out) + newline


def iter_ntu_files(root: Union[str, "os.PathLike[str]"]) -> List[str]:
    """All ``*.skeleton`` files under ``root`` (recursively), sorted by sample name."""
    found = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".skeleton"):
                found.append(os.path.join(dirpath, f))
    found.sort(key=lambda p: (os.path.basename(p), p))
    return found


#: Official NTU RGB+D 120 action names (A001 .. A120); the first 60 are NTU RGB+D 60's.
NTU120_CLASS_NAMES: List[str] = [
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
    "sitting down", "standing up (from sitting position)", "clapping", "reading", "writing",
    "tear up paper", "wear jacket", "take off jacket", "wear a shoe", "take off a shoe",
    "wear on glasses", "take off glasses", "put on a hat/cap", "take off a hat/cap", "cheer up",
    "hand waving", "kicking something", "reach into pocket", "hopping (one foot jumping)", "jump up",
    "make a phone call/answer phone", "playing with phone/tablet", "typing on a keyboard",
    "pointing to something with finger", "taking a selfie", "check time (from watch)",
    "rub two hands together", "nod head/bow", "shake head", "wipe face", "salute",
    "put the palms together", "cross hands in front (say stop)", "sneeze/cough", "staggering",
    "falling", "touch head (headache)", "touch chest (stomachache/heart pain)",
    "touch back (backache)", "touch neck (neckache)", "nausea or vomiting condition",
    "use a fan (with hand or paper)/feeling warm", "punching/slapping other person",
    "kicking other person", "pushing other person", "pat on back of other person",
    "point finger at the other person", "hugging other person", "giving something to other person",
    "touch other person's pocket", "handshaking", "walking towards each other",
    "walking apart from each other",
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball",
    "tennis bat swing", "juggling table tennis balls", "hush (quite)", "flick hair", "thumb up",
    "thumb down", "make ok sign", "make victory sign", "staple book", "counting money",
    "cutting nails", "cutting paper (using scissors)", "snapping fingers", "open bottle",
    "sniff (smell)", "squat down", "toss a coin", "fold paper", "ball up paper", "play magic cube",
    "apply cream on face", "apply cream on hand back", "put on bag", "take off bag",
    "put something into a bag", "take something out of a bag", "open a box", "move heavy objects",
    "shake fist", "throw up cap/hat", "hands up (both hands)", "cross arms", "arm circles",
    "arm swings", "running on the spot", "butt kicks (kick backward)", "cross toe touch",
    "side kick", "yawn", "stretch oneself", "blow nose", "hit other person with something",
    "wield knife towards other person", "knock over other person (hit with body)",
    "grab other person's stuff", "shoot at other person with a gun", "step on foot", "high-five",
    "cheers and drink", "carry something with other person", "take a photo of other person",
    "follow other person", "whisper in other person's ear", "exchange things with other person",
    "support somebody with hand", "finger-guessing game (playing rock-paper-scissors)",
]
NTU60_CLASS_NAMES: List[str] = NTU120_CLASS_NAMES[:60]
assert len(NTU120_CLASS_NAMES) == 120

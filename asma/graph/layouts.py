"""Built-in skeleton layouts and the layout registry.

Index conventions are 0-based in code; the NTU lists below are written 1-based as in the papers.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Union

from .skeleton import Skeleton, from_edges

_NTU_NAMES = [
    "SpineBase", "SpineMid", "Neck", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
    "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft", "KneeLeft", "AnkleLeft",
    "FootLeft", "HipRight", "KneeRight", "AnkleRight", "FootRight", "SpineShoulder", "HandTipLeft",
    "ThumbLeft", "HandTipRight", "ThumbRight",
]
_NTU_BODY = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
             (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
             (20, 19)]
# ST-GCN / AimCLR / CrosSCLR / PSTL / CTR-GCN: hands as chains 8-23-22 and 12-25-24.
NTU25_LINEAGE_EDGES = _NTU_BODY + [(22, 23), (23, 8), (24, 25), (25, 12)]
# Official Kinect v2 topology (NTU Matlab reader, pyskl): tip and thumb both attach to the hand.
NTU25_ANATOMICAL_EDGES = _NTU_BODY + [(22, 8), (23, 8), (24, 12), (25, 12)]

_KINECT20_NAMES = [
    "HipCenter", "Spine", "ShoulderCenter", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft",
    "HandLeft", "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft", "KneeLeft",
    "AnkleLeft", "FootLeft", "HipRight", "KneeRight", "AnkleRight", "FootRight",
]
KINECT20_EDGES = [(1, 2), (2, 3), (3, 4), (3, 5), (5, 6), (6, 7), (7, 8), (3, 9), (9, 10), (10, 11),
                  (11, 12), (1, 13), (13, 14), (14, 15), (15, 16), (1, 17), (17, 18), (18, 19), (19, 20)]

_OPENPOSE18_NAMES = [
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip",
    "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
]
OPENPOSE18_EDGES = [(4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5),
                    (8, 2), (5, 1), (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14)]

_COCO17_NAMES = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
]
COCO17_EDGES = [(15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8),
                (8, 6), (5, 0), (6, 0), (1, 0), (3, 1), (2, 0), (4, 2)]

_MEDIAPIPE33_NAMES = [
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
]
# MediaPipe's POSE_CONNECTIONS (35 edges) leave the face, the mouth and the body as three separate
# components; four bridges (mouth corners and shoulders to the nose, as COCO does) connect them so
# the spatial partition and the bone tree reach every joint.
MEDIAPIPE33_EDGES = [(0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
                     (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14),
                     (14, 16), (16, 18), (16, 20), (16, 22), (18, 20), (11, 23), (12, 24), (23, 24),
                     (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30), (29, 31), (30, 32),
                     (27, 31), (28, 32)] + [(9, 0), (10, 0), (11, 0), (12, 0)]

# Penn Action's 13 annotated joints (its README order); COCO-17's body edges without the face.
_PENN13_NAMES = ["head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                 "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
PENN13_EDGES = [(0, 1), (0, 2), (1, 3), (3, 5), (2, 4), (4, 6), (1, 7), (2, 8), (7, 9), (9, 11), (8, 10), (10, 12)]

_BUILDERS: Dict[str, Callable[[], Skeleton]] = {}
_DESCRIPTIONS: Dict[str, str] = {}


def register_layout(name: str, description: str = "") -> Callable:
    """Decorator registering a zero-argument function that returns a :class:`Skeleton`."""
    def deco(fn: Callable[[], Skeleton]) -> Callable[[], Skeleton]:
        _BUILDERS[name] = fn
        _DESCRIPTIONS[name] = description or (fn.__doc__ or "").strip().splitlines()[0]
        return fn
    return deco


def list_layouts() -> List[str]:
    """Names of all registered layouts."""
    return sorted(_BUILDERS)


def layout_description(name: str) -> str:
    return _DESCRIPTIONS[name]


def get_layout(layout: Union[str, Skeleton]) -> Skeleton:
    """Return the layout named ``layout`` (a fresh object), or ``layout`` itself if already a Skeleton.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if isinstance(layout, Skeleton):
        return layout
    if layout not in _BUILDERS:
        raise ValueError(f"unknown layout {layout!r}; known layouts: {', '.join(list_layouts())}")
    return _BUILDERS[layout]()


def _kinect(edges, num_joints: int, names, center: int, name: str) -> Callable[[], Skeleton]:
    # the Kinect layouts list their edges 1-based, as the SDK documentation and the lineage do
    return lambda: from_edges(edges, num_joints, joint_names=names, center=center, one_based=True, name=name)


register_layout("ntu25", "NTU RGB+D / Kinect v2, 25 joints, the ST-GCN/AimCLR/PSTL edge list (24 bones)")(
    _kinect(NTU25_LINEAGE_EDGES, 25, _NTU_NAMES, 21, "ntu25"))
# Bone pairs follow the official topology (tip and thumb minus the hand), not the lineage's chain.
register_layout("ntu25-anatomical", "NTU RGB+D / Kinect v2, 25 joints, official Kinect topology")(
    _kinect(NTU25_ANATOMICAL_EDGES, 25, _NTU_NAMES, 21, "ntu25-anatomical"))
register_layout("kinect20", "Kinect v1 SDK order, 20 joints (UTKinect, MSR Action3D, UTD-MHAD after reordering)")(
    _kinect(KINECT20_EDGES, 20, _KINECT20_NAMES, 3, "kinect20"))


@register_layout("openpose18", "OpenPose-18 / Kinetics-skeleton, 2D")
def openpose18() -> Skeleton:
    return from_edges(OPENPOSE18_EDGES, 18, joint_names=_OPENPOSE18_NAMES, center=1, name="openpose18")


@register_layout("coco17", "COCO-17 keypoints (most 2D pose estimators)")
def coco17() -> Skeleton:
    return from_edges(COCO17_EDGES, 17, joint_names=_COCO17_NAMES, center=0, name="coco17")


@register_layout("mediapipe33", "MediaPipe Pose, 33 landmarks")
def mediapipe33() -> Skeleton:
    return from_edges(MEDIAPIPE33_EDGES, 33, joint_names=_MEDIAPIPE33_NAMES, center=0,
                      name="mediapipe33")


@register_layout("penn13", "Penn Action, 13 joints, 2D (x, y, visibility)")
def penn13() -> Skeleton:
    return from_edges(PENN13_EDGES, 13, joint_names=_PENN13_NAMES, center=0, name="penn13")


#: The 30 HDM05 bones in ASF id order; joint ``1 + k`` of the ``hdm05`` layout is the far end of
#: bone ``k`` (joint 0 is the root), and each bone's parent as in every HDM05 ASF hierarchy.
HDM05_BONES = ("lhipjoint", "lfemur", "ltibia", "lfoot", "ltoes", "rhipjoint", "rfemur", "rtibia", "rfoot", "rtoes",
               "lowerback", "upperback", "thorax", "lowerneck", "upperneck", "head",
               "lclavicle", "lhumerus", "lradius", "lwrist", "lhand", "lfingers", "lthumb",
               "rclavicle", "rhumerus", "rradius", "rwrist", "rhand", "rfingers", "rthumb")
HDM05_PARENTS = ("root", "lhipjoint", "lfemur", "ltibia", "lfoot", "root", "rhipjoint", "rfemur", "rtibia", "rfoot",
                 "root", "lowerback", "upperback", "thorax", "lowerneck", "upperneck",
                 "thorax", "lclavicle", "lhumerus", "lradius", "lwrist", "lhand", "lwrist",
                 "thorax", "rclavicle", "rhumerus", "rradius", "rwrist", "rhand", "rwrist")


@register_layout("hdm05", "HDM05 / Acclaim ASF mocap, 31 joints: the root and the far end of each bone")
def hdm05() -> Skeleton:
    names = ["root"] + list(HDM05_BONES)
    edges = [(names.index(p), k + 1) for k, p in enumerate(HDM05_PARENTS)]
    # ASF names are lowercase l/r prefixes ("lfemur"), which name matching cannot tell from "lowerback"
    pairs = [(k + 1, names.index("r" + b[1:])) for k, b in enumerate(HDM05_BONES) if b.startswith("l")
             and "r" + b[1:] in names]
    return from_edges(edges, 31, joint_names=names, center=names.index("thorax"), flip_pairs=pairs, name="hdm05")

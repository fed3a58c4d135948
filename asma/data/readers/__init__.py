"""Readers for raw skeleton datasets and pose-estimator outputs (numpy only, no torch import).

Every reader raises :class:`asma.data.errors.DataFormatError` (file and line named) on malformed
input and nothing else; see the submodules for the formats.
"""
from .kinect_v1 import (load_utkinect, read_msr_skeleton, read_utd_mhad, read_utkinect_joints,
                        read_utkinect_labels, utkinect_clips, utkinect_cross_subject)
from .matlab import read_mat_v5
from .ntu import (NtuSkeletonFile, ntu_to_array, parse_ntu_name, read_ntu_clip, read_ntu_skeleton,
                  read_ntu_skeletons)
from .ntu_files import NTU60_CLASS_NAMES, NTU120_CLASS_NAMES, format_ntu_skeleton, read_missing_list
from .pkummd import (PKU_CLASS_NAMES, cut_pku_clips, parse_pku_name, read_pku_labels, read_pku_sequence)
from .coco import read_coco_keypoints_json
from .kinetics import load_kinetics_skeleton, read_kinetics_json, read_openpose_frames
from .mediapipe import mediapipe_to_sequence, read_mediapipe_json
from .pose_json import PoseLimits, PoseSequence, pose_to_clip
from .clips import ClipSource, RawClip
from .hdm05 import read_amc, read_asf, read_hdm05
from .msrc12 import read_msrc12_csv, read_msrc12_tags
from .nwucla import load_nwucla, read_nwucla_json
from .penn_action import read_penn_action

__all__ = [
    "read_ntu_skeleton", "read_ntu_skeletons", "read_ntu_clip", "ntu_to_array", "parse_ntu_name",
    "read_missing_list", "format_ntu_skeleton", "NtuSkeletonFile", "NTU60_CLASS_NAMES", "NTU120_CLASS_NAMES",
    "read_pku_sequence", "read_pku_labels", "cut_pku_clips", "parse_pku_name", "PKU_CLASS_NAMES",
    "read_utkinect_joints", "read_utkinect_labels", "utkinect_clips", "load_utkinect", "utkinect_cross_subject",
    "read_msr_skeleton", "read_utd_mhad", "read_mat_v5",
    "PoseLimits", "PoseSequence", "read_kinetics_json", "read_openpose_frames", "read_coco_keypoints_json",
    "read_mediapipe_json", "mediapipe_to_sequence", "pose_to_clip", "load_kinetics_skeleton",
    "ClipSource", "RawClip", "read_nwucla_json", "load_nwucla", "read_penn_action", "read_asf", "read_amc",
    "read_hdm05", "read_msrc12_csv", "read_msrc12_tags",
]

"""The ASMa-Distill student (``stgcn-student``) and the registry's view of all four backbones."""
from __future__ import annotations

import math

import pytest
import torch

from asma.models import (STGCN, count_flops, count_parameters, create_backbone, list_backbones)
from asma.models.student import STUDENT_PLANS, STGCNStudent, student_plan

K, KT = 3, 9  # spatial partitions, temporal kernel


def stgcn_params(channels, strides, C=3, V=25):
    """Parameter count of an ST-GCN plan, from the block formula:
    gcn C_in*K*C_out + K*C_out; tcn BN 2C + kt*C^2 + C + BN 2C; residual (blocks 2.., when the
    shape changes) C_in*C + C + BN 2C; edge importance K*V*V per block; data BN 2*C*V."""
    total, c_in = 2 * C * V, C
    for i, (c, s) in enumerate(zip(channels, strides)):
        total += c_in * K * c + K * c + 4 * c + KT * c * c + c + K * V * V
        if i > 0 and not (c_in == c and s == 1):
            total += c_in * c + 3 * c
        c_in = c
    return total


def stgcn_flops(channels, strides, C=3, T=50, V=25, M=2, aggregate_first=True):
    """count_flops convention (2 per multiply-accumulate): 1x1 gcn conv, graph einsum (on the
    C_in input channels aggregate-first as asma computes it, on the K*C_out conv outputs in the
    lineage's convolution-first order), temporal conv, residual conv."""
    total, c_in, t = 0, C, T
    # aggregate-first adds the bias term sum_k b_k colsum(A_k): one (K, C_out) x (K, V) product per block
    bias = sum(2 * K * c * V for c in channels) if aggregate_first else 0
    for i, (c, s) in enumerate(zip(channels, strides)):
        t_out = math.ceil(t / s)
        graph = 2 * K * (c_in if aggregate_first else c) * t * V * V
        total += 2 * c_in * K * c * t * V + graph + 2 * KT * c * c * t_out * V
        if i > 0 and not (c_in == c and s == 1):
            total += 2 * c_in * c * t_out * V
        c_in, t = c, t_out
    return total * M + bias


def test_default_plan_and_exact_parameter_count():
    model = create_backbone("stgcn-student")
    assert isinstance(model, STGCNStudent) and isinstance(model, STGCN)
    assert model.num_layers == 5 and len(model.blocks) == 5
    assert model.channels == [24, 24, 48, 48, 96] and model.strides == [1, 1, 2, 1, 2]
    # by hand, per block (gcn + tcn + residual + edge importance 1,875):
    #   3->24:   288 +  5,304 +     0 + 1,875 =   7,467
    #   24->24: 1,800 + 5,304 +     0 + 1,875 =   8,979
    #   24->48 (s2): 3,600 + 20,976 + 1,296 + 1,875 = 27,747
    #   48->48: 7,056 + 20,976 +    0 + 1,875 =  29,907
    #   48->96 (s2): 14,112 + 83,424 + 4,896 + 1,875 = 104,307
    #   + data BN 150
    by_hand = 7_467 + 8_979 + 27_747 + 29_907 + 104_307 + 150
    assert by_hand == 178_557
    assert count_parameters(model) == by_hand == stgcn_params(model.channels, model.strides)
    # three per-stream students vs the paper's 0.54M for 3s-ASMa-Distill
    assert 3 * by_hand / 1e6 == pytest.approx(0.54, rel=0.02)


def test_default_flops_match_formula_and_paper_budget():
    model = create_backbone("stgcn-student")
    flops = count_flops(model, torch.randn(1, 3, 50, 25, 2))
    # by hand, per person, convolution-first (gcn 1x1 + graph einsum on K*C_out channels + temporal
    # conv + residual), T: 50,50,25,25,13:
    #   18,000,000 + 21,780,000 + 45,000,000 + 39,060,000 + 83,188,800 = 207,028,800; x M=2
    by_hand = 2 * (18_000_000 + 21_780_000 + 45_000_000 + 39_060_000 + 83_188_800)
    assert stgcn_flops(model.channels, model.strides, aggregate_first=False) == by_hand == 414_057_600
    assert 3 * by_hand / 1e9 == pytest.approx(1.26, rel=0.02)  # the paper's 3s budget
    # asma computes the graph product aggregate-first: the einsum runs on the C_in input channels
    # (3, 24, 24, 48, 48 instead of 24, 24, 48, 48, 96), 2 * 3 * 25 * 25 * T * (C_out - C_in) * M fewer,
    # plus the bias term, 2 * 3 * C_out * 25 per block
    fewer = 2 * 3 * 625 * 2 * (50 * 21 + 0 + 50 * 24 + 0 + 25 * 48)
    bias = 2 * 3 * 25 * (24 + 24 + 48 + 48 + 96)
    assert flops == stgcn_flops(model.channels, model.strides) == by_hand - fewer + bias == 388_218_600


@pytest.mark.parametrize("depth", range(2, 8))
def test_depth_sweep_plans(depth):
    model = create_backbone("stgcn-student", num_layers=depth)
    channels, strides = STUDENT_PLANS[depth]
    assert (channels, strides) == student_plan(depth)
    assert len(model.blocks) == depth == model.num_layers
    assert model.channels == channels and model.out_dim == 96
    assert [b.tcn[2].stride[0] for b in model.blocks] == strides   # temporal conv strides
    assert math.prod(strides) == model.temporal_stride == 4
    assert [b.gcn.num_partitions for b in model.blocks] == [K] * depth
    assert [b.tcn[2].kernel_size for b in model.blocks] == [(KT, 1)] * depth
    assert count_parameters(model) == stgcn_params(channels, strides)
    assert model.config["num_layers"] == depth


def test_depth_sweep_is_monotone_in_size():
    sizes = [stgcn_params(*STUDENT_PLANS[d]) for d in range(2, 8)]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)


def test_student_forward_shapes():
    model = create_backbone("stgcn-student", dropout=0.0)
    pooled, tokens = model(torch.randn(2, 3, 12, 25, 2))
    assert pooled.shape == (2, 96) and tokens.shape == (2, 3, 96)
    pooled.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    m = create_backbone("stgcn-student", "coco17", in_channels=2, num_layers=3, width=8)
    pooled, tokens = m(torch.randn(1, 2, 8, 17, 1))
    assert pooled.shape == (1, 32) and tokens.shape == (1, 2, 32)


def test_explicit_plans_and_errors():
    m = create_backbone("stgcn-student", channels=[64, 64, 64, 128, 128], strides=[1, 2, 1, 1, 2])
    assert m.out_dim == 128 and m.num_layers == 5
    assert count_parameters(m) == stgcn_params([64, 64, 64, 128, 128], [1, 2, 1, 1, 2]) == 547_125
    m = create_backbone("stgcn-student", num_layers=4, strides=[2, 1, 2, 1])
    assert m.channels == [24, 48, 48, 96] and m.strides == [2, 1, 2, 1]
    with pytest.raises(ValueError, match="num_layers must be >= 2"):
        create_backbone("stgcn-student", num_layers=1)
    with pytest.raises(ValueError, match="does not match"):
        create_backbone("stgcn-student", num_layers=3, channels=[8, 8])
    with pytest.raises(ValueError, match="equal length"):
        create_backbone("stgcn-student", num_layers=3, strides=[1, 2])


def test_registry_lists_all_four_and_unknown_name_error():
    names = list_backbones()
    for n in ("stgcn", "gin", "dgcnn", "stgcn-student"):
        assert n in names
    with pytest.raises(ValueError) as err:
        create_backbone("nope")
    msg = str(err.value)
    assert "nope" in msg
    for n in ("stgcn", "gin", "dgcnn", "stgcn-student"):
        assert n in msg

import pytest
import torch

from asma.models.asma import ASMa
from asma.models.alignment import FeatureAlignment
from asma.models.heads import Projector
from asma.models.registry import count_parameters


def test_projector_paper_size():
    assert count_parameters(Projector(256, (6144, 6144, 6144))) == 77_094_912  # reference §2.5


def test_alignment_equals_eqs_10_12():
    torch.manual_seed(0)
    fa = FeatureAlignment(8, 5, num_heads=4).eval()
    ht, hp = torch.randn(3, 6, 8), torch.randn(3, 6, 8)
    logits = fa(ht, hp)
    assert logits.shape == (3, 5)

    def mha(m, q, kv):
        W, b = m.in_proj_weight, m.in_proj_bias
        Q, K, V = (q @ W[:8].t() + b[:8]), (kv @ W[8:16].t() + b[8:16]), (kv @ W[16:].t() + b[16:])
        heads = []
        for h in range(4):
            s = slice(2 * h, 2 * h + 2)
            att = torch.softmax(Q[..., s] @ K[..., s].transpose(1, 2) / (2 ** 0.5), dim=-1)  # Eq. 10
            heads.append(att @ V[..., s])
        return torch.cat(heads, -1) @ m.out_proj.weight.t() + m.out_proj.bias

    fused = mha(fa.theta_to_phi, ht, hp) + mha(fa.phi_to_theta, hp, ht)  # Eq. 11
    ref = fa.head(fused.mean(1))  # Eq. 12 after temporal pooling
    assert torch.allclose(logits, ref, atol=1e-5)
    # two 4-head MHAs of width 256: 2 x 263,168 parameters (reference §2.5)
    assert count_parameters(FeatureAlignment(256, 60)) == 2 * 263_168 + 256 * 60 + 60


def test_alignment_head_count_must_divide():
    with pytest.raises(ValueError, match="divisible"):
        FeatureAlignment(10, 3, num_heads=4)


def test_asma_forward_backward_both_encoders():
    m = ASMa("ntu25", 3, backbone_cfg={"hidden_channels": 4, "out_channels": 16, "dropout": 0.0},
             projector=(32, 32), n_joints=5, n_frames=3)
    x = torch.randn(6, 3, 12, 25, 1)
    g = torch.Generator().manual_seed(0)
    loss, parts = m(x, x + 0.01, x - 0.01, generator=g)
    assert set(parts) == {"theta/joint", "theta/frame", "phi/joint", "phi/frame"}
    assert loss.item() == pytest.approx(sum(v.item() for v in parts.values()), rel=1e-5)
    loss.backward()
    for name in ("theta", "phi"):
        gsum = sum(p.grad.abs().sum() for p in m.encoders[name].parameters() if p.grad is not None)
        assert gsum > 0
    # same generator state -> same masks -> same loss
    m.eval()
    l1, _ = m(x, x, x, generator=torch.Generator().manual_seed(3))
    l2, _ = m(x, x, x, generator=torch.Generator().manual_seed(3))
    assert l1.item() == l2.item()


def test_asma_frame_mask_longer_than_clip_fails_early():
    m = ASMa("ntu25", 3, backbone_cfg={"hidden_channels": 4, "out_channels": 16}, projector=(16,),
             n_frames=10)
    x = torch.randn(4, 3, 8, 25, 1)
    with pytest.raises(ValueError, match="n_frames=10 must be smaller than the clip length T=8"):
        m(x, x, x)

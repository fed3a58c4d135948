"""asma bench: the figures' arithmetic and provenance (no timing assertions)."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import asma
from asma.cli.main import main
from asma.deploy.measure import BenchResult, bench, disk_bytes, latency_ms, ratios
from asma.models import count_flops


def _result(name, **values):
    base = dict(runtime="torch", threads=1, input_shape=[1, 3, 50, 25, 2], params_m=1.0, size_mb=4.0, gflops=2.0,
                p50_ms=10.0, p95_ms=12.0, mean_ms=10.0, fps=100.0, runs=100, peak_rss_mib=300.0)
    base.update(values)
    return BenchResult(name=name, **base)


def test_ratios_arithmetic():
    teacher = _result("teacher", params_m=6.3, size_mb=25.5, gflops=4.5, p50_ms=59.16, fps=16.90, peak_rss_mib=314.47)
    student = _result("student", params_m=0.54, size_mb=2.22, gflops=1.26, p50_ms=21.38, fps=46.52,
                      peak_rss_mib=None)
    base, r = ratios([teacher, student])
    assert set(base.values()) == {1.0}
    # Table 2 of the paper: -91.4 % parameters, -91.3 % size, -72 % FLOPs, 2.77x faster
    assert r["params_m"] == pytest.approx(0.0857, abs=1e-4)
    assert r["size_mb"] == pytest.approx(2.22 / 25.5)
    assert r["gflops"] == pytest.approx(0.28)
    assert 1 / r["p50_ms"] == pytest.approx(59.16 / 21.38)
    assert r["fps"] == pytest.approx(46.52 / 16.90)
    assert r["peak_rss_mib"] is None
    assert ratios([teacher, student], base=1)[0]["gflops"] == pytest.approx(4.5 / 1.26)


def test_latency_counts_every_run():
    calls = []
    ms = latency_ms(calls.append, 0, runs=100, warmup=7)
    assert ms.shape == (100,) and len(calls) == 107 and (ms >= 0).all()
    with pytest.raises(ValueError, match="runs must be >= 1"):
        latency_ms(calls.append, 0, runs=0)


@pytest.mark.parametrize("runtime,int8", [("torch", False), ("onnxruntime", False), ("onnxruntime", True)])
def test_bench_figures_of_a_saved_model(classifier_dir, runtime, int8):
    model = asma.create_model(str(classifier_dir), pretrained=True)
    cfg = model.pretrained_cfg
    calib = [np.random.default_rng(0).standard_normal((1, 3, 20, 25, 1), dtype=np.float32)] if int8 else None
    r = bench(model, cfg, name="clf", runtime=runtime, frames=20, persons=1, runs=100, warmup=2, int8=int8,
              calibration=calib)
    assert r.int8 is int8
    assert r.params_m * 1e6 == sum(p.numel() for p in model.parameters())
    assert r.gflops * 1e9 == count_flops(model, torch.zeros(1, 3, 20, 25, 1))
    assert r.input_shape == [1, 3, 20, 25, 1] and r.runs == 100
    assert r.p50_ms <= r.p95_ms and r.fps == pytest.approx(1e3 / r.mean_ms)
    if runtime == "torch":  # the saved safetensors: 4 bytes per float32 value plus a small header
        n_values = sum(t.numel() for t in model.state_dict().values())
        assert 4 * n_values < r.size_mb * 1e6 < 4 * n_values + 20_000
        assert disk_bytes(classifier_dir) == pytest.approx(r.size_mb * 1e6, abs=2_000)
    else:  # the fresh onnxruntime process never imports torch; int8 weights take less than float32 ones
        assert r.imports == {"torch": False, "torch_geometric": False, "sympy": False}
        # float32 values of the weights the export keeps: the eval BatchNorm2d layers are folded
        # into the convolutions (SpatioTemporalBlock.forward_folded)
        fp32 = 4 * sum(p.numel() for m in model.modules() if not isinstance(m, torch.nn.BatchNorm2d)
                       for p in m.parameters(recurse=False))
        assert (r.size_mb * 1e6 < fp32) if int8 else (r.size_mb * 1e6 > fp32)
    assert 20 < r.peak_rss_mib < 4000


def test_bench_cli_side_by_side_json(classifier_dir):
    res = CliRunner().invoke(main, ["bench", "stgcn-student", str(classifier_dir), "--frames", "16", "--no-rss",
                                    "--json", "--warmup", "1"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["name"] for r in rows] == ["stgcn-student", str(classifier_dir)]
    assert rows[0]["params_m"] > rows[1]["params_m"] and rows[0]["peak_rss_mib"] is None
    res = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["bench", "stgcn-student", str(classifier_dir), "--frames",
                                                          "16", "--no-rss", "--warmup", "1"])
    assert res.exit_code == 0 and "row 2 ÷ row 1" in res.output
    res = CliRunner().invoke(main, ["bench", "stgcn", "--runs", "10"])
    assert res.exit_code == 2 and "100" in res.output


def test_predict_and_bench_of_a_student_import_neither_torch_geometric_nor_sympy(classifier_dir, tmp_path):
    """`asma predict` and `asma bench` on a saved student stay on the light import path (issue 14.4):
    bench takes the GFLOPs its config records for the clip shape instead of counting them
    (torch.utils.flop_counter imports sympy)."""
    import subprocess
    import sys
    clip = tmp_path / "clip.npy"
    np.save(clip, np.random.default_rng(0).standard_normal((3, 50, 25, 2)).astype(np.float32))
    out = tmp_path / "bench.json"
    code = ("import sys, contextlib, io\nfrom asma.cli.main import main\n"
            f"for args in (['predict', {str(classifier_dir)!r}, {str(clip)!r}, '--json'],\n"
            f"             ['bench', {str(classifier_dir)!r}, '--no-rss', '--json', '--warmup', '1']):\n"
            f"    with open({str(out)!r}, 'w') as f, contextlib.redirect_stdout(f):\n"
            "        main(args, standalone_mode=False)\n"
            "print([k for k in ('torch_geometric', 'sympy') if k in sys.modules])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]", res.stderr
    model = asma.create_model(str(classifier_dir), pretrained=True)
    (row,) = json.loads(out.read_text())
    assert row["input_shape"] == [1, 3, 50, 25, 2]
    assert row["gflops"] == pytest.approx(count_flops(model, torch.zeros(1, 3, 50, 25, 2)) / 1e9, rel=1e-3)

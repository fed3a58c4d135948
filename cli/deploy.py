"""``asma bench``, ``asma export`` and ``asma predict``: thin click layers over :mod:`asma.deploy`.

MODEL is anything :func:`asma.create_model` accepts: a registered backbone (an untrained
network), a model folder, a run directory (``RUN`` or ``RUN:what``), ``hf-hub:org/name`` or a zoo
alias.
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from asma.deploy.inputs import FORMATS  # numpy only: keeps `asma --help` fast


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _one_line_errors(fn):
    """A missing optional dependency or a failed benchmark process is one line, exit 2 (the
    ``asma`` group does the same for ValueError / FileNotFoundError)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from asma.deploy.runtime import MissingDependencyError
        try:
            return fn(*args, **kwargs)
        except (MissingDependencyError, RuntimeError, ValueError, FileNotFoundError) as e:
            _console().print(f"[bold red]error:[/] {escape(str(e).strip())}")
            sys.exit(2)
    return wrapper


def _load(name: str, layout: Optional[str], in_channels: Optional[int]):
    from asma.deploy.classify import load_model
    from asma.models.registry import list_backbones
    overrides = {}
    if name in list_backbones():
        overrides = {"layout": layout or "ntu25", "in_channels": in_channels or 3}
    elif layout or in_channels:
        raise ValueError(f"--layout / --in-channels only apply to a bare backbone; {name} has its own")
    return load_model(name, **overrides)


_layout_options = [
    click.option("--layout", default=None, help="Layout of a bare backbone (default ntu25)."),
    click.option("--in-channels", type=click.IntRange(1, 64), default=None,
                 help="Channels of a bare backbone (default 3)."),
]


def _with(options):
    def apply(f):
        for o in reversed(options):
            f = o(f)
        return f
    return apply


# ------------------------------------------------------------------------------------------ bench
def _num(v: Optional[float]) -> str:
    """Three significant digits (whole numbers from 1000 on); ``-`` for a missing value."""
    return "-" if v is None else (f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3g}")


def _bench_table(results, title: str) -> Table:
    from asma.deploy.measure import ratios
    table = Table(title=title)
    cols = [("model", None), ("params (M)", "params_m"), ("size (MB)", "size_mb"), ("GFLOPs", "gflops"),
            ("p50 ms", "p50_ms"), ("p95 ms", "p95_ms"), ("FPS", "fps"), ("peak RSS (MiB)", "peak_rss_mib")]
    for label, _ in cols:
        table.add_column(label, justify="left" if label == "model" else "right")
    for r in results:
        table.add_row(escape(r.name), *[_num(getattr(r, k)) for _, k in cols[1:]])
    if len(results) > 1:
        for i, row in list(enumerate(ratios(results), 1))[1:]:
            table.add_row(f"[italic]row {i} ÷ row 1[/]",
                          *["-" if row[k] is None else f"{row[k]:.2f}x" for _, k in cols[1:]])
    return table


@click.command()
@click.argument("models", nargs=-1, required=True, metavar="MODEL [MODEL ...]")
@click.option("--runtime", type=click.Choice(["torch", "onnxruntime"]), default="torch", show_default=True)
@click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True, help="Intra-op threads.")
@click.option("--frames", type=click.IntRange(1, 10000), default=None,
              help="T of the clip (default: the model's, else 50).")
@click.option("--persons", type=click.IntRange(1, 16), default=None,
              help="M of the clip (default: the model's, else 2).")
@click.option("--runs", type=click.IntRange(100, 100000), default=100, show_default=True, help="Timed runs (>= 100).")
@click.option("--warmup", type=click.IntRange(0, 10000), default=10, show_default=True)
@click.option("--int8", is_flag=True, help="onnxruntime: time the int8 export (static quantisation calibrated on "
              "random clips: right for speed, not for accuracy; see asma export --calibrate).")
@click.option("--no-rss", is_flag=True, help="Skip the fresh-process peak-RSS measurement.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@_with(_layout_options)
@_one_line_errors
def bench(models: Sequence[str], runtime: str, threads: int, frames: Optional[int], persons: Optional[int],
          runs: int, warmup: int, int8: bool, no_rss: bool, as_json: bool, layout: Optional[str],
          in_channels: Optional[int]) -> None:
    """Deployment figures of MODEL(s): parameters, size, GFLOPs, latency, FPS, peak RSS.

    Size on disk of the weights (safetensors, or the .onnx file), GFLOPs per clip
    (torch.utils.flop_counter, 2 FLOPs per multiply-accumulate), latency at batch 1 (p50/p95 over
    --runs after --warmup), FPS (1000 / mean latency) and the peak RSS of a fresh process that loads
    and runs the model. Several MODELs: one table with ratios to the first (as the paper's Table 2)."""
    from asma.deploy.measure import bench as run_bench
    if int8 and runtime != "onnxruntime":
        raise ValueError("--int8 needs --runtime onnxruntime (the int8 model is an ONNX model)")
    import numpy as np
    results = []
    for name in models:
        model, cfg = _load(name, layout, in_channels)
        shape = (1, cfg.in_channels, frames or cfg.num_frames or 50, cfg.num_joints, persons or cfg.num_persons or 2)
        calib = [np.random.default_rng(i).standard_normal(shape, dtype=np.float32) for i in range(8)] if int8 else None
        results.append(run_bench(model, cfg, name=name, runtime=runtime, threads=threads, frames=shape[2],
                                 persons=shape[4], runs=runs, warmup=warmup, int8=int8, calibration=calib,
                                 rss=not no_rss))
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    r0 = results[0]
    _console().print(_bench_table(results, f"{runtime}{' int8' if int8 else ''}, {threads} thread(s), clip "
                                           f"{tuple(r0.input_shape)}, {runs} runs"))


# ------------------------------------------------------------------------------------------ export
def _clips(model_cfg, inputs: Sequence[str], fmt: Optional[str]):
    from asma.deploy.inputs import fit_clip, read_clips
    from asma.deploy.classify import model_input
    return [model_input(model_cfg, fit_clip(c, model_cfg)) for p in inputs
            for c in read_clips(p, fmt=fmt, num_persons=model_cfg.num_persons or 2)]


@click.command("export")
@click.argument("model")
@click.option("--onnx", "onnx_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output .onnx file (dynamic batch, frames and persons).")
@click.option("--opset", type=click.IntRange(17, 30), default=17, show_default=True)
@click.option("--quantize", type=click.Choice(["int8"]), default=None,
              help="Write an int8 model (static with --calibrate clips, else dynamic).")
@click.option("--calibrate", multiple=True, type=click.Path(exists=True), metavar="INPUT",
              help="Skeleton files / .npy clips for the int8 activation scales (repeatable).")
@click.option("--check", multiple=True, type=click.Path(exists=True), metavar="INPUT",
              help="Real clips on which onnxruntime must match PyTorch too (repeatable).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Force the input format of --calibrate/--check files (default: from each file).")
@_with(_layout_options)
@_one_line_errors
def export_cmd(model: str, onnx_file: Path, opset: int, quantize: Optional[str], calibrate: Sequence[str],
               check: Sequence[str], fmt: Optional[str], layout: Optional[str], in_channels: Optional[int]) -> None:
    """Export MODEL to ONNX (optionally int8), checked against PyTorch.

    The graph is checked with onnx.checker, and onnxruntime's outputs must equal PyTorch's within
    1e-4 on random clips of other sizes and on the --check clips; nothing is written otherwise."""
    import tempfile

    import numpy as np

    from asma.deploy.onnx import export_onnx, quantize_int8
    from asma.deploy.runtime import OnnxRunner
    net, cfg = _load(model, layout, in_channels)
    checks = _clips(cfg, check, fmt) if check else []
    shape = (2, cfg.in_channels, cfg.num_frames or 50, cfg.num_joints, cfg.num_persons or 2)
    con = _console()
    with tempfile.TemporaryDirectory(prefix="asma-export-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx" if quantize else onnx_file
        diff = export_onnx(net, fp32, shape, opset=opset, check_clips=checks)
        con.print(f"onnxruntime = PyTorch within {diff:.1e} on 2 random batches + {len(checks)} real clip(s) "
                  f"(opset {opset}, dynamic batch/frames/persons)")
        if quantize:
            calib = _clips(cfg, calibrate, fmt) if calibrate else None
            quantize_int8(fp32, onnx_file, calibration=calib)
            ref, q = OnnxRunner(fp32), OnnxRunner(onnx_file)
            probe = checks or [np.random.default_rng(0).standard_normal(shape, dtype=np.float32)]
            agree = np.mean([(ref(x).argmax(-1) == q(x).argmax(-1)).mean() for x in probe])
            kind = f"static, {len(calib)} calibration clip(s)" if calib else "dynamic (no --calibrate)"
            con.print(f"int8 ({kind}): top-1 agrees with fp32 on {100 * agree:.1f}% of "
                      f"{'the --check clips' if checks else 'a random batch'}")
    con.print(f"wrote {escape(str(onnx_file))} ({onnx_file.stat().st_size / 1e6:.2f} MB)")


# ------------------------------------------------------------------------------------------ predict
def _print_predictions(preds, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in preds], indent=2))
        return
    table = Table(title="predictions")
    for col in ("input", "rank", "class", "probability"):
        table.add_column(col, justify="right" if col in ("rank", "probability") else "left")
    for p in preds:
        for k, (cname, prob) in enumerate(p.top, 1):
            table.add_row(escape(Path(p.source).name) if k == 1 else "", str(k), escape(cname), f"{prob:.3f}")
    _console().print(table)


@click.command()
@click.argument("model")
@click.argument("inputs", nargs=-1, metavar="[INPUT ...]")
@click.option("--topk", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON output (one line per prediction with --stream).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Force the input format (default: from each file's extension and content).")
@click.option("--no-preprocess", is_flag=True, help="Inputs are already normalised clips: stream conversion only.")
@click.option("--onnx", "onnx_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Run this exported .onnx with onnxruntime (MODEL still gives the classes and preprocessing).")
@click.option("--stream", is_flag=True, help="Read one JSON frame per line from stdin (V x C or M x V x C joints).")
@click.option("--window", type=click.IntRange(1, 100000), default=None, help="--stream: frames per window.")
@click.option("--stride", type=click.IntRange(1, 100000), default=1, show_default=True,
              help="--stream: frames between predictions.")
@_one_line_errors
def predict(model: str, inputs: Sequence[str], topk: int, as_json: bool, fmt: Optional[str], no_preprocess: bool,
            onnx_file: Optional[str], stream: bool, window: Optional[int], stride: int) -> None:
    """Classify skeleton files, or a live frame stream, with MODEL.

    INPUT: NTU .skeleton, Kinect v1 text (UTKinect, MSR), UTD-MHAD .mat, Kinetics / OpenPose / COCO /
    MediaPipe JSON (or an OpenPose folder), .npy clips (C, T, V, M) or batches. MODEL's own
    preprocessing is applied; prints the top-k classes with probabilities. With --stream, one JSON
    frame per line is read from stdin and a sliding window classified every --stride frames."""
    from asma.deploy.classify import load_model, predict as run_predict
    net, cfg = load_model(model)
    if onnx_file:
        from asma.deploy.runtime import OnnxRunner
        net = OnnxRunner(onnx_file)
    if not stream:
        if not inputs:
            raise ValueError("give INPUT file(s), or --stream to read frames from stdin")
        _print_predictions(run_predict(net, cfg, inputs, topk=topk, fmt=fmt, preprocess=not no_preprocess), as_json)
        return
    if inputs:
        raise ValueError("--stream reads stdin; do not give INPUT files")
    from asma.deploy.stream import Recognizer, stream_predictions
    rec = Recognizer(net, window=window, stride=stride, config=cfg, preprocess=not no_preprocess)
    for p in stream_predictions(rec, sys.stdin, topk=topk):
        if as_json:
            click.echo(json.dumps({"frame": rec.frames_seen, **p.to_dict()}))
        else:
            click.echo(f"{p.source}: " + ", ".join(f"{c} {q:.3f}" for c, q in p.top))
        sys.stdout.flush()

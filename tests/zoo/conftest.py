"""Zoo fixtures: a localhost Hub-compatible server, an isolated Hub environment per test, tiny models.

huggingface_hub reads most settings (HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_DISABLE_XET, HF_HOME,
...) once, at import. They are set here before anything imports it, and additionally patched on
``huggingface_hub.constants`` per test in case another test module imported it first. Library
calls get ``endpoint=`` (and ``cache_dir=``) explicitly; the CLI gets ``--endpoint`` or runs in a
subprocess with its own environment.
"""
from __future__ import annotations

import os

for _k, _v in {"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
               "HF_HUB_DISABLE_UPDATE_CHECK": "1"}.items():
    os.environ.setdefault(_k, _v)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from hub_server import TOKEN, HubServer, hub_env  # noqa: E402


@pytest.fixture(autouse=True)
def hf_home(tmp_path, monkeypatch) -> Path:
    """A private HF_HOME per test, a token, no telemetry / Xet / progress bars, no manifest env."""
    import huggingface_hub.constants as constants
    import huggingface_hub.utils.tqdm as hf_tqdm

    home = tmp_path / "hf_home"
    home.mkdir()
    for k, v in hub_env(home).items():
        if k.startswith("HF_") or k == "ASMA_ZOO_MANIFEST":
            monkeypatch.setenv(k, v)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for name, value in {"HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
                        "HUGGINGFACE_HUB_CACHE": str(home / "hub"), "HF_HUB_DISABLE_XET": True,
                        "HF_HUB_DISABLE_TELEMETRY": True, "HF_HUB_OFFLINE": False,
                        "HF_TOKEN_PATH": str(home / "token")}.items():
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(hf_tqdm, "HF_HUB_DISABLE_PROGRESS_BARS", True, raising=False)
    return home


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads; one thread avoids oversubscribing a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def hub():
    """A running in-memory Hub on 127.0.0.1 (writes need the test token); stopped afterwards."""
    server = HubServer(token=TOKEN).start()
    yield server
    server.stop()


def tiny_backbone(layout: str = "ntu25", in_channels: int = 3, name: str = "stgcn"):
    """A few-hundred-parameter ST-GCN (16-d output) for fast tests."""
    from asma.models import create_backbone
    if name == "stgcn-student":
        return create_backbone(name, layout, in_channels, channels=[4, 8], strides=[1, 2])
    return create_backbone(name, layout, in_channels, hidden_channels=4, out_channels=16)


def randomize_(model: torch.nn.Module) -> torch.nn.Module:
    """Give every parameter and buffer non-trivial values (so a failed load cannot pass)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in [t for t in model.state_dict().values() if t.is_floating_point()]:  # persistent state only
            t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5 if t.ndim == 1 else torch.randn(t.shape, generator=g) * 0.3)
    return model.eval()


CLASSES = ["drink water", "eat meal", "brush teeth", "clapping", "wave"]


@pytest.fixture
def make_backbone():
    """Factory ``make_backbone(layout="ntu25", in_channels=3, name="stgcn")`` of tiny backbones."""
    return tiny_backbone


@pytest.fixture
def randomize():
    """``randomize(model)``: non-trivial values for every parameter/buffer, eval mode."""
    return randomize_


@pytest.fixture
def class_names():
    """The five class names of the tiny classifier."""
    return list(CLASSES)


@pytest.fixture
def classifier():
    """A tiny randomised ``EncoderClassifier`` (linear head) on ntu25 (3 channels, 5 classes), eval mode."""
    from asma.models import EncoderClassifier
    return randomize_(EncoderClassifier.linear(tiny_backbone(), len(CLASSES)))


@pytest.fixture
def classifier_config(classifier):
    """A complete ``PretrainedConfig`` for ``classifier`` (bone stream, metrics, preprocessing)."""
    from asma.pretrained.architectures import config_for_model
    return config_for_model(
        classifier, class_names=CLASSES, stream="bone", num_frames=16, num_persons=2,
        preprocessing={"length": 16, "frames": "nonempty", "max_frames": None, "center": "frame",
                       "align": "frame-y", "center_joint": 20, "shoulders": [4, 8], "coord_channels": 3},
        license="cc-by-nc-4.0", dataset="ntu60-xsub", paper="https://example.org/asma",
        metrics={"ntu60-xsub/linear": {"top1": 81.5, "top5": 96.25}}, description="A tiny test classifier.")


@pytest.fixture
def saved(tmp_path, classifier, classifier_config) -> Path:
    """A model folder written by save_pretrained."""
    from asma.zoo import save_pretrained
    return save_pretrained(classifier, classifier_config, tmp_path / "tiny-classifier")


@pytest.fixture
def clips() -> torch.Tensor:
    """Joint clips (N, C, T, V, M) = (2, 3, 16, 25, 2)."""
    return torch.randn(2, 3, 16, 25, 2, generator=torch.Generator().manual_seed(7))


@pytest.fixture
def find_pickles():
    """``find_pickles(root)``: files under ``root`` that could hold a pickle (by suffix or magic bytes)."""
    from asma.zoo.model import PICKLE_SUFFIXES

    def find(root: Path) -> list:
        out = []
        for p in Path(root).rglob("*"):
            if not p.is_file() or p.suffix == ".safetensors":  # safetensors: parsed, never unpickled
                continue
            data = p.read_bytes()
            if data[8:9] == b"{" and int.from_bytes(data[:8], "little") < len(data):  # a safetensors blob
                continue
            head = data[:2]
            pickle_magic = head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
            if p.suffix.lower() in PICKLE_SUFFIXES or pickle_magic or head == b"PK":
                out.append(p)
        return out
    return find


@pytest.fixture
def file_server(tmp_path):
    """A static HTTP server on 127.0.0.1 serving ``tmp_path / "www"`` (``server.root``,
    ``server.url``; ``server.stop()``), standing in for raw.githubusercontent.com."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    root = tmp_path / "www"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    class Server:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"

        def __init__(self):
            self.root, self.running = root, True

        def stop(self) -> None:
            if self.running:
                httpd.shutdown()
                httpd.server_close()
                self.running = False

    server = Server()
    yield server
    server.stop()


@pytest.fixture
def zoo_cache(tmp_path, monkeypatch) -> Path:
    """A private local zoo cache ($ASMA_ZOO_CACHE) per test."""
    cache = tmp_path / "zoo-cache"
    monkeypatch.setenv("ASMA_ZOO_CACHE", str(cache))
    return cache

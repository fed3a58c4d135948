"""Model zoo: named pretrained teachers and students (installed as ``asma.zoo``).

Publish::

    from asma.models import EncoderClassifier
    from asma.pretrained.architectures import config_for_model
    from asma.zoo import save_pretrained, push_to_hub
    model = EncoderClassifier.linear(encoder, num_classes)   # ... trained
    cfg = config_for_model(model, kind="student", class_names=names, stream="joint", ...)
    save_pretrained(model, cfg, "out/ntu60-student")
    sha = push_to_hub("out/ntu60-student", "my-org/asma-ntu60-student", tag="v1.0")

Use (:func:`asma.create_model`, the one entry point)::

    import asma
    model = asma.create_model("hf-hub:my-org/asma-ntu60-student@v1.0", pretrained=True)
    logits = model(model.pretrained_cfg.preprocess(joints))

From a finished run: ``export_run(run_dir, "student", "out/student")`` (``asma zoo export``).

The folder format itself (``PretrainedConfig``, ``config_for_model``, ``build_model``) is
:mod:`asma.pretrained`, shared with the training runs. See docs/zoo.md. Names are imported lazily, so listing and pulling models does not import torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "model": ["save_pretrained", "load_pretrained", "load_state"],
    "card": ["model_card"],
    "hub": ["push_to_hub", "pull", "fetch", "load_from_hub", "commit_of", "parse_model_name", "ModelRef"],
    "export": ["export_run", "exportable"],
    "registry": ["ZooEntry", "ZooError", "UnknownModelError", "NotBuiltError", "HubSource", "UrlSource", "Recipe",
                 "list_entries", "resolve", "add_entry", "remove_entry", "read_manifest", "write_manifest"],
    "factory": ["create_model", "list_models"],
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

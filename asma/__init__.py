"""asma: asymmetric spatio-temporal masking for self-supervised skeleton action recognition.

``asma.create_model(name, pretrained=False, **overrides)`` and ``asma.list_models(pattern=None,
pretrained=False)`` are the entry points to every model (:mod:`asma.zoo.factory`). They are
imported on first use, so ``import asma`` does not import torch.
"""

__version__ = "0.1.0"

_LAZY = {"create_model": "asma.zoo.factory", "list_models": "asma.zoo.factory"}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'asma' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

"""The ``README.md`` model card written next to a published model (:func:`model_card`)."""
from __future__ import annotations

import json
from typing import Optional

from asma.pretrained.config import PretrainedConfig

#: Tags every model card gets (domain words; the Hub task is ``pipeline_tag``).
CARD_TAGS = ("asma", "skeleton-based-action-recognition", "action-recognition", "self-supervised-learning",
             "graph-neural-network", "pytorch", "safetensors")
PIPELINE_TAG = "video-classification"

_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}
{% if description %}
{{ description }}
{% endif %}
A **{{ kind }}** for skeleton-based action recognition, published with the `asma` library
(ASMa: asymmetric spatio-temporal masking).
Weights are in `model.safetensors`; `config.json` records how to rebuild the model and how to
prepare its input.

## Usage

```bash
asma zoo pull {{ name }}
```

```python
import asma
model = asma.create_model("{{ hub_name }}", pretrained=True)
logits = model(model.pretrained_cfg.preprocess(joints))   # joints: (N, {{ in_channels }}, T, {{ num_joints }}, M)
```

## Model

| field | value |
|---|---|
{% for k, v in rows %}| {{ k }} | {{ v }} |
{% endfor %}
{% if metrics %}
## Results

| dataset / protocol | top-1 % | top-5 % |
|---|---|---|
{% for k, v in metrics %}| {{ k }} | {{ v.get("top1", "-") }} | {{ v.get("top5", "-") }} |
{% endfor %}{% endif %}
{% if preprocessing %}
## Preprocessing

Clips were normalised before training with (`config.json`, field `preprocessing`):

```json
{{ preprocessing }}
```
{% endif %}{% if base_model %}
## Distillation

Distilled from the teacher `{{ base_model }}` (`asma zoo pull {{ base_model }}`).
{% endif %}{% if class_names %}
## Classes

{{ class_names }}
{% endif %}{% if paper %}
## Citation

{{ paper }}
{% endif %}
## Licence

`{{ license }}`. Skeleton datasets such as NTU RGB+D are distributed under their own
(research-only) terms; check them before using these weights.
"""


def model_card(config: PretrainedConfig, repo_id: Optional[str] = None):
    """The ``README.md`` model card (a :class:`huggingface_hub.ModelCard`): metadata
    ``library_name: asma``, ``tags`` (incl. ``skeleton-based-action-recognition``), ``license``,
    ``datasets``, ``metrics``, ``pipeline_tag: video-classification``, ``base_model`` for a
    student, ``model-index`` results from ``config.metrics``; body with usage and the config."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    name = repo_id or "<org>/<name>"
    title = repo_id.split("/")[-1] if repo_id else f"asma {config.kind}"
    eval_results = []
    for key, vals in sorted(config.metrics.items()):
        ds = key.split("/")[0]
        for m, label in (("top1", "top-1 accuracy"), ("top5", "top-5 accuracy")):
            if m in vals:
                eval_results.append(EvalResult(task_type=PIPELINE_TAG, dataset_type=ds, dataset_name=key,
                                               metric_type="accuracy", metric_name=label,
                                               metric_value=float(vals[m])))
    tags = list(CARD_TAGS) + [f"asma-{config.kind}", f"layout-{config.layout_name}", f"stream-{config.stream}"]
    data = ModelCardData(
        library_name="asma", license=config.license, tags=tags, pipeline_tag=PIPELINE_TAG,
        datasets=[config.dataset] if config.dataset else None,
        metrics=["accuracy"] if config.metrics else None,
        base_model=config.base_model, model_name=title if eval_results else None,
        eval_results=eval_results or None)
    rows = [("kind", config.kind), ("backbone", config.backbone["name"]),
            ("backbone options", f"`{json.dumps(config.backbone_kwargs(), sort_keys=True)}`"),
            ("layout", f"{config.layout_name} ({config.num_joints} joints)"),
            ("input channels", f"{config.in_channels} ({config.num_coords} coordinates)"),
            ("stream", config.stream), ("frames", config.num_frames or "any"),
            ("input (C, T, V, M)", ", ".join("any" if v is None else str(v) for v in config.input_spec.values())),
            ("classes", config.num_classes or "-"), ("dataset", config.dataset or "-"),
            ("parameters", f"{config.num_params:,}" if config.num_params else "-"),
            ("GFLOPs per clip", f"{config.gflops:g}" if config.gflops is not None else "-"),
            ("asma version", config.asma_version)]
    if config.source:
        rows.append(("source", f"`{json.dumps(config.source, sort_keys=True)}`"))
    if config.base_model:
        rows.append(("teacher (base model)", config.base_model))
    return ModelCard.from_template(
        data, template_str=_CARD_TEMPLATE, title=title, kind=config.kind, name=name,
        hub_name=f"hf-hub:{name}", description=config.description, in_channels=config.in_channels,
        num_joints=config.num_joints, rows=rows, metrics=sorted(config.metrics.items()),
        preprocessing=json.dumps(config.preprocessing, indent=2, sort_keys=True) if config.preprocessing else "",
        base_model=config.base_model, class_names=", ".join(config.class_names), paper=config.paper,
        license=config.license)

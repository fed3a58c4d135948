"""What a pretrained model folder is: ``config.json`` (:class:`~asma.pretrained.config.PretrainedConfig`,
checked by :mod:`asma.pretrained.schema`, with its input pipeline
:class:`~asma.pretrained.transforms.SkeletonTransforms`) next to ``model.safetensors``.

Training runs write their encoders in this format (``<run>/encoders/<name>/``) and the zoo
(:mod:`asma.zoo`) publishes, pulls and loads it, so both import it from here: it depends on
:mod:`asma.models`, :mod:`asma.data` and :mod:`asma.io` only.

* :mod:`asma.pretrained.config` and :mod:`asma.pretrained.schema`: the ``config.json`` fields
  (no torch import);
* :mod:`asma.pretrained.architectures`: the config <-> module mapping (``config_for_model``,
  ``build_model``, ``check_compatible``, ``model_costs``);
* :mod:`asma.pretrained.folder`: ``save_folder``, the one writer of the folder.
"""

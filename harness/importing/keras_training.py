"""A compiled Keras model's training settings (its compile config) as a spec's `train` block.

The optimizer keeps every hyperparameter the file holds, and its learning-rate schedule where
the spec has it (Keras' ExponentialDecay and CosineDecay without warm-up count optimizer steps:
the spec's `unit: step`; the harness's own schedule as it was written); what the spec cannot
say (gradient clipping, weight decay outside AdamW, EMA, another schedule, AMSGrad) is one line
each and the model is refused. The loss: categorical cross-entropy as is; sparse categorical
cross-entropy on integer labels is the same maths on one-hot labels, mapped with a note;
`from_logits` is returned for the reader (a logits model gets a softmax appended).

A file holds no batch size or epoch count, and an uncompiled model no optimizer: those are the
defaults below (Keras' own: `fit`'s batch_size=32, epochs=1; `compile(optimizer="adam")`),
each said in a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.importing.imported import UnsupportedModel

DEFAULT_FIT = {"batch_size": 32, "epochs": 1}  # keras.Model.fit's defaults
DEFAULT_OPTIMIZER = {"name": "adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999,
                     "epsilon": 1e-07}  # keras.optimizers.Adam()'s
# Keras optimizer class -> (the spec's name, the hyperparameters the spec states)
_OPTIMIZERS = {
    "SGD": ("sgd", ("learning_rate", "momentum", "nesterov")),
    "Adam": ("adam", ("learning_rate", "beta_1", "beta_2", "epsilon")),
    "Adadelta": ("adadelta", ("learning_rate", "rho", "epsilon")),
    "RMSprop": ("rmsprop", ("learning_rate", "rho", "momentum", "epsilon", "centered")),
    "Adagrad": ("adagrad", ("learning_rate", "initial_accumulator_value", "epsilon")),
    "Nadam": ("nadam", ("learning_rate", "beta_1", "beta_2", "epsilon")),
    "AdamW": ("adamw", ("learning_rate", "beta_1", "beta_2", "epsilon", "weight_decay")),
}
# what every Keras optimizer has that the spec fixes: the one value the spec supports
_FIXED = {"weight_decay": (None, 0.0), "clipnorm": (None,), "global_clipnorm": (None,),
          "clipvalue": (None,), "use_ema": (False,), "gradient_accumulation_steps": (None, 1),
          "loss_scale_factor": (None,), "amsgrad": (False,)}
_CROSS_ENTROPY = ("categorical_crossentropy", "sparse_categorical_crossentropy")


def _float32(value: float) -> float:
    """Keras keeps the learning rate as a float32 variable (0.001 comes back as
    0.0010000000474974513): the shortest decimal of that float32."""
    return float(str(np.float32(value)))


def _schedule(name: str, serialized: dict[str, Any], problems: list[str]
              ) -> tuple[float, dict[str, Any]] | None:
    """(the initial learning rate, the spec's schedule) of a Keras learning-rate schedule."""
    kind, config = serialized.get("class_name"), serialized.get("config") or {}
    if kind == "SpecSchedule":  # the harness's own: the spec's schedule, as written
        return float(config["learning_rate"]), dict(config["schedule"])
    if kind == "ExponentialDecay":
        return config["initial_learning_rate"], {
            "name": "exponential", "decay_steps": config["decay_steps"],
            "decay_rate": config["decay_rate"], "staircase": config["staircase"],
            "unit": "step"}
    if kind == "CosineDecay" and not config.get("warmup_steps"):
        return config["initial_learning_rate"], {
            "name": "cosine", "decay_steps": config["decay_steps"], "alpha": config["alpha"],
            "unit": "step"}
    problems.append(f"optimizer {name}: learning_rate is {kind or 'a schedule'}: the spec has "
                    "ExponentialDecay, CosineDecay without warm-up, or a constant rate")
    return None


def _optimizer(serialized: Any, problems: list[str]
               ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the spec's optimizer, its schedule or None)."""
    if not isinstance(serialized, dict) or "class_name" not in serialized:
        problems.append(f"optimizer {serialized!r}: not a Keras optimizer the spec knows")
        return None, None
    name, config = serialized["class_name"], dict(serialized.get("config", {}))
    if name not in _OPTIMIZERS:
        problems.append(f"optimizer {name}: the spec has {', '.join(_OPTIMIZERS)}")
        return None, None
    spec_name, keys = _OPTIMIZERS[name]
    for key, allowed in _FIXED.items():
        if key not in keys and config.get(key, allowed[0]) not in allowed:
            problems.append(f"optimizer {name}: {key}={config[key]!r}: the spec supports "
                            f"{key}={allowed[0]!r} only")
    schedule = None
    if isinstance(config.get("learning_rate"), dict):
        read = _schedule(name, config["learning_rate"], problems)
        if read is None:
            return None, None
        config["learning_rate"], schedule = read
    return {"name": spec_name, **{key: _float32(config[key]) if key == "learning_rate"
                                  else config[key] for key in keys}}, schedule


def _loss(serialized: Any, problems: list[str], notes: list[str]) -> bool | None:
    """Check the loss; its from_logits (None where there is no loss to say)."""
    if isinstance(serialized, str):
        name, config = serialized, {}
    elif isinstance(serialized, dict) and "class_name" in serialized:
        config = serialized.get("config") or {}
        if isinstance(config, str):  # a loss function: its name
            name, config = config, {}
        else:
            name = config.get("name", serialized["class_name"])
    else:
        problems.append(f"loss {serialized!r}: the spec has one loss, categorical "
                        "cross-entropy, for its one output")
        return None
    if name not in _CROSS_ENTROPY:
        problems.append(f"loss {name}: the spec trains with categorical cross-entropy only")
        return None
    for key, wanted in (("label_smoothing", 0.0), ("ignore_class", None), ("axis", -1)):
        if config.get(key, wanted) != wanted:
            problems.append(f"loss {name}: {key}={config[key]!r}: the spec supports "
                            f"{key}={wanted!r} only")
    if name == "sparse_categorical_crossentropy":
        notes.append("loss sparse_categorical_crossentropy (integer labels) is written as "
                     "categorical_crossentropy (one-hot labels): the same maths")
    return bool(config.get("from_logits", False))


def train_settings(compile_config: dict[str, Any] | None, path: Path, notes: list[str]
                   ) -> tuple[dict[str, Any] | None, bool | None]:
    """(the spec's train block, or None for an uncompiled model; the loss's from_logits, or
    None without a loss). UnsupportedModel for settings the spec cannot say."""
    if not compile_config or compile_config.get("optimizer") is None:
        return None, None
    problems: list[str] = []
    optimizer, schedule = _optimizer(compile_config["optimizer"], problems)
    loss = compile_config.get("loss")
    from_logits = _loss(loss, problems, notes) if loss is not None else None
    if problems:
        raise UnsupportedModel(path, problems)
    train: dict[str, Any] = {"optimizer": optimizer, "loss": "categorical_crossentropy"}
    if schedule is not None:
        train["schedule"] = schedule
    return train, from_logits

"""The model spec: input, layers, training. Loaded from YAML by `harness.spec.loader`.

Optimizer hyperparameters are all required: Keras and PyTorch defaults differ (Adam epsilon,
Adadelta learning rate, ...), so a spec states every one of them. Their meaning is Keras'; the
PyTorch backend maps each one explicitly (see `harness/backends/pytorch/optimizers.py`).

A learning-rate schedule (`train.schedule`, optional: none is a constant learning rate) gives
the rate of every optimizer step from the number of steps taken before it, counted in steps or
in whole epochs (`unit`); `Schedule.learning_rate` is its formula, which every backend follows.
"""

from __future__ import annotations

import math
import reprlib
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from harness.spec.files import HASH_CONTEXT, FileRef
from harness.spec.layers import Float32, Layer, StrictModel

SCHEMA_VERSION = 1
DATASETS = ("mnist", "fashion-mnist")
NUM_CLASSES = 10
INPUT_SHAPES = ((784,), (28, 28), (28, 28, 1))  # the 28x28 images: flat, rows, image
MAX_SEED = 2**32 - 1  # Keras seeds NumPy's legacy generator, which takes 32-bit seeds
# The tags of the spec's unions of a word and a mapping (`dataset: mnist` or `{npz: PATH}`,
# `validation: test` or `{split: 0.1}`): pydantic names them in an error's location, the
# loader leaves them out.
UNION_TAGS = frozenset({"dataset-name", "dataset-npz", "validation-word", "validation-split"})


def _mapping_or_word(mapping: str, word: str) -> Discriminator:
    return Discriminator(lambda value: mapping if isinstance(value, (dict, StrictModel))
                         else word)


class NpzData(FileRef):
    """Your own arrays: an .npz file holding x_train, y_train, x_test, y_test (harness.data.npz
    reads and checks it). YAML spells its path `npz`: `dataset: {npz: PATH, sha256: ...}`."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False,
                              serialize_by_alias=True)

    path: Annotated[str, Field(min_length=1, max_length=4096, alias="npz")]


Dataset = Annotated[
    Annotated[Literal["mnist", "fashion-mnist"], Tag("dataset-name")]
    | Annotated[NpzData, Tag("dataset-npz")],
    _mapping_or_word("dataset-npz", "dataset-name"),
]


class Normalize(StrictModel):
    """x = (x / scale - mean) / std, after `scale`; one number for every value, or one per
    channel (the input's last axis)."""

    mean: Float32 | tuple[Float32, ...]
    std: Float32 | tuple[Float32, ...]  # each > 0

    @field_validator("mean", "std", mode="before")
    @classmethod
    def _number_or_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """One message for what the union of a number and a list would report twice."""
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (int, float)) \
                    or not math.isfinite(item):
                raise ValueError(f"expected a number, or a list of numbers (one per channel), "
                                 f"got {reprlib.repr(value)}")
            if info.field_name == "std" and item <= 0:
                raise ValueError(f"std divides: every value must be > 0, got {item!r}")
        return [float(item) for item in items] if items is value else float(value)

    @model_validator(mode="after")
    def _check(self) -> Normalize:
        sizes = {len(v) for v in (self.mean, self.std) if isinstance(v, tuple)}
        if 0 in sizes:
            raise ValueError("mean and std: an empty list; give a number, or one value per "
                             "channel")
        if len(sizes) > 1:
            raise ValueError(f"mean and std: lists of different lengths {sorted(sizes)}; give "
                             "one value per channel in each, or numbers")
        return self

    def channels(self) -> int | None:
        """How many channels the lists give (None: numbers only)."""
        sizes = {len(v) for v in (self.mean, self.std) if isinstance(v, tuple)}
        return sizes.pop() if sizes else None


class InputSpec(StrictModel):
    """What the network sees: for MNIST and Fashion-MNIST, `shape` is [784] (flat), [28, 28] (a
    sequence of 28 rows of 28 pixels, as recurrent models read MNIST) or [28, 28, 1]
    (channels-last image); your own .npz arrays (`dataset: {npz: PATH}`) take any shape."""

    dataset: Dataset = "mnist"
    shape: tuple[Annotated[StrictInt, Field(gt=0)], ...]
    # every value is divided by this (as float32): pixels 0 to 255 / 255 give [0, 1]; a tiny
    # scale overflows
    scale: Float32 = Field(255.0, ge=1e-6)
    normalize: Normalize | None = None  # then (x - mean) / std

    @property
    def npz(self) -> NpzData | None:
        return self.dataset if isinstance(self.dataset, NpzData) else None

    @property
    def dataset_name(self) -> str:
        """'mnist', 'fashion-mnist' or 'npz' (records, tables)."""
        return "npz" if isinstance(self.dataset, NpzData) else self.dataset

    @property
    def dataset_label(self) -> str:
        """What a table shows: the dataset's name, or `npz:<file name>`."""
        npz = self.npz
        return f"npz:{npz.resolved.name}" if npz is not None else str(self.dataset)

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
              ) -> dict[str, object]:
        data = handler(self)
        if self.normalize is None and (info.context or {}).get(HASH_CONTEXT):
            data.pop("normalize", None)  # the hashes of the specs written before it existed
        return data

    @model_validator(mode="after")
    def _check_normalize(self) -> InputSpec:
        channels = self.normalize.channels() if self.normalize is not None else None
        if channels is not None and channels != self.shape[-1]:
            raise ValueError(f"normalize: mean and std lists must each have one value per "
                             f"channel ({self.shape[-1]}, the input's last axis), or be "
                             "numbers")
        return self

    @model_validator(mode="after")
    def _check_shape(self) -> InputSpec:
        if self.npz is None and self.shape not in INPUT_SHAPES:
            raise ValueError(
                f"shape must be [784] (flat), [28, 28] (rows as a sequence) or [28, 28, 1] "
                f"(image, channels-last), "
                f"got {list(self.shape)}"
            )
        return self


class SGD(StrictModel):
    """Keras SGD: v = momentum * v - lr * g; w += v (nesterov: w += momentum * v - lr * g)."""

    name: Literal["sgd"]
    learning_rate: Float32 = Field(gt=0)
    momentum: Float32 = Field(ge=0, lt=1)
    nesterov: StrictBool


class Adam(StrictModel):
    """Keras Adam: epsilon is added to sqrt(v) *before* bias correction (the paper's eps-hat)."""

    name: Literal["adam"]
    learning_rate: Float32 = Field(gt=0)
    beta_1: Float32 = Field(ge=0, lt=1)
    beta_2: Float32 = Field(ge=0, lt=1)
    epsilon: Float32 = Field(gt=0)


class Adadelta(StrictModel):
    """Keras/PyTorch Adadelta (identical maths; Keras 2's default lr was 1.0)."""

    name: Literal["adadelta"]
    learning_rate: Float32 = Field(gt=0)
    rho: Float32 = Field(gt=0, lt=1)
    epsilon: Float32 = Field(gt=0)


class RMSprop(StrictModel):
    """Keras RMSprop: w -= lr * g / sqrt(v + epsilon) (epsilon inside the square root)."""

    name: Literal["rmsprop"]
    learning_rate: Float32 = Field(gt=0)
    rho: Float32 = Field(gt=0, lt=1)
    momentum: Float32 = Field(ge=0, lt=1)
    epsilon: Float32 = Field(gt=0)
    centered: StrictBool


class Adagrad(StrictModel):
    """Keras Adagrad: acc += g^2; w -= lr * g / sqrt(acc + epsilon)."""

    name: Literal["adagrad"]
    learning_rate: Float32 = Field(gt=0)
    initial_accumulator_value: Float32 = Field(ge=0)
    epsilon: Float32 = Field(gt=0)


class Nadam(StrictModel):
    """Keras 3 Nadam: momentum schedule mu_t = beta_1 * (1 - 0.5 * 0.96 ** t) (no 0.004 factor)."""

    name: Literal["nadam"]
    learning_rate: Float32 = Field(gt=0)
    beta_1: Float32 = Field(ge=0, lt=1)
    beta_2: Float32 = Field(ge=0, lt=1)
    epsilon: Float32 = Field(gt=0)


class AdamW(StrictModel):
    """Keras AdamW: Adam (epsilon as in `Adam`) after decoupled weight decay, every trainable
    array (biases and BatchNorm scales too) first shrunk by w -= w * weight_decay * lr."""

    name: Literal["adamw"]
    learning_rate: Float32 = Field(gt=0)
    beta_1: Float32 = Field(ge=0, lt=1)
    beta_2: Float32 = Field(ge=0, lt=1)
    epsilon: Float32 = Field(gt=0)
    weight_decay: Float32 = Field(ge=0)


Optimizer = Annotated[
    SGD | Adam | Adadelta | RMSprop | Adagrad | Nadam | AdamW, Field(discriminator="name")
]
OPTIMIZERS = ("sgd", "adam", "adadelta", "rmsprop", "adagrad", "nadam", "adamw")

# A schedule's count of steps or epochs: positive, and small enough for any framework's int32
Count = Annotated[StrictInt, Field(gt=0, le=2**31 - 1)]
# What a schedule's t counts: optimizer steps taken (Keras' schedules), or whole epochs
# completed, floor(steps / steps_per_epoch) (PyTorch's scheduler.step() once per epoch)
ScheduleUnit = Literal["epoch", "step"]


class _ScheduleBase(StrictModel):
    """What every schedule does with its `unit`."""

    if TYPE_CHECKING:
        unit: ScheduleUnit  # each schedule's field, declared after its own fields

    def t(self, steps: int, steps_per_epoch: int | None) -> int:
        """The schedule's time after `steps` optimizer steps: steps, or whole epochs done."""
        if self.unit == "step":
            return steps
        if steps_per_epoch is None:
            raise ValueError("a schedule counted in epochs needs the steps of one epoch "
                             "(build the model with steps_per_epoch)")
        return steps // steps_per_epoch

    def factor(self, t: int) -> float:
        """The learning rate at time `t` as a multiple of the optimizer's learning_rate."""
        raise NotImplementedError

    def learning_rate(self, base: float, steps: int, steps_per_epoch: int | None) -> float:
        """The rate of the optimizer step taken after `steps` steps (float64, Python)."""
        return base * self.factor(self.t(steps, steps_per_epoch))


class StepSchedule(_ScheduleBase):
    """PyTorch's StepLR: lr * gamma ** floor(t / step_size)."""

    name: Literal["step"]
    step_size: Count
    gamma: Float32 = Field(gt=0)
    unit: ScheduleUnit

    def factor(self, t: int) -> float:
        return self.gamma ** (t // self.step_size)


class ExponentialSchedule(_ScheduleBase):
    """Keras' ExponentialDecay: lr * decay_rate ** (t / decay_steps), the exponent floored
    when staircase."""

    name: Literal["exponential"]
    decay_steps: Count
    decay_rate: Float32 = Field(gt=0)
    staircase: StrictBool
    unit: ScheduleUnit

    def factor(self, t: int) -> float:
        exponent = t // self.decay_steps if self.staircase else t / self.decay_steps
        return self.decay_rate ** exponent


class CosineSchedule(_ScheduleBase):
    """Keras' CosineDecay without warm-up: lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(t, N)
    / N)) + alpha), N = decay_steps; PyTorch's CosineAnnealingLR with eta_min = alpha * lr up
    to t = N, then alpha * lr."""

    name: Literal["cosine"]
    decay_steps: Count
    alpha: Float32 = Field(ge=0, le=1)
    unit: ScheduleUnit

    def factor(self, t: int) -> float:
        completed = min(t, self.decay_steps) / self.decay_steps
        return (1 - self.alpha) * (0.5 * (1.0 + math.cos(math.pi * completed))) + self.alpha


Schedule = Annotated[StepSchedule | ExponentialSchedule | CosineSchedule,
                     Field(discriminator="name")]
SCHEDULES = ("step", "exponential", "cosine")


class ValidationSplit(StrictModel):
    """Keras' `validation_split`: the last `split` of the training arrays, before shuffling."""

    split: float = Field(gt=0, lt=1, strict=True)


Validation = Annotated[
    Annotated[Literal["test", "none"], Tag("validation-word")]
    | Annotated[ValidationSplit, Tag("validation-split")],
    _mapping_or_word("validation-split", "validation-word"),
]


class TrainSpec(StrictModel):
    """How the notebooks trained: the loss is categorical cross-entropy on the softmax output."""

    optimizer: Optimizer
    loss: Literal["categorical_crossentropy"] = "categorical_crossentropy"
    batch_size: StrictInt = Field(gt=0)
    epochs: StrictInt = Field(gt=0)
    seed: StrictInt = Field(0, ge=0, le=MAX_SEED)
    shuffle: StrictBool = True  # reshuffle the training set every epoch, alike in every backend
    # notebooks passed the test set as validation; {split: F} holds out the training set's last
    # fraction F, as Keras' fit(validation_split=F)
    validation: Validation = "test"
    schedule: Schedule | None = None  # None: the optimizer's learning_rate throughout

    @model_serializer(mode="wrap")
    def _omit_unset_schedule(self, handler: SerializerFunctionWrapHandler) -> Any:
        """No schedule, no key: specs written before schedules existed keep their hashes."""
        data = handler(self)
        if isinstance(data, dict) and self.schedule is None:
            data.pop("schedule", None)
        return data

    @property
    def validation_split(self) -> float | None:
        return self.validation.split if isinstance(self.validation, ValidationSplit) else None


class ParamCounts(StrictModel):
    total: StrictInt = Field(ge=0)
    trainable: StrictInt = Field(ge=0)
    non_trainable: StrictInt = Field(ge=0)


class Reference(StrictModel):
    """Where a zoo model comes from and what its notebook published (for comparison only)."""

    source: str
    study: str | None = None  # groups models the way the catalog's notebooks compare them
    params: ParamCounts | None = None
    published_test_loss: Float32 | None = None
    published_test_accuracy: Float32 | None = Field(None, ge=0, le=1)
    # the notebook's own records disagree about the published figures: which ones, and why the
    # figures above were taken; reports show such a figure as "ambiguous"
    published_ambiguity: str | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _check_ambiguity(self) -> Reference:
        if self.published_ambiguity is not None and self.published_test_accuracy is None \
                and self.published_test_loss is None:
            raise ValueError("published_ambiguity describes published figures, but neither "
                             "published_test_loss nor published_test_accuracy is given")
        return self


class ModelSpec(StrictModel):
    # names folders and job ids: a file name's characters, short enough for any file system
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$", max_length=200)]
    description: str = ""
    input: InputSpec
    layers: tuple[Layer, ...]
    train: TrainSpec
    reference: Reference | None = None
    # the weights training starts from, instead of the initializers' draw: an .npz of the
    # canonical arrays (`harness import --weights` writes one beside the spec it imports)
    initial_weights: FileRef | None = None

    # fields added after schema 1: left out of dumps when unset, so older specs keep their hash
    optional_fields: ClassVar[tuple[str, ...]] = ("initial_weights",)

    @model_validator(mode="after")
    def _check_layers(self) -> ModelSpec:
        if not self.layers:
            raise ValueError("layers: at least one layer is required")
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_optional(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in self.optional_fields:
                if getattr(self, key) is None:
                    data.pop(key, None)
        return data

"""A PyTorch model's training state as one file, for resuming training in a new process: the
module's state dict (BatchNorm statistics included), the optimizer's (step counts, moments),
the harness's step count and the RNG states that draw dropout masks (the CPU generator and,
where CUDA is in use, each GPU's)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from harness.backends.pytorch.model import TorchModel


def save_training_state(model: TorchModel, path: Path) -> None:
    torch.save({
        "net": model.net.state_dict(),
        "optimizer": model.optimizer.state_dict(),
        "steps": model.steps,
        "cpu_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }, path)


def rng_arrays() -> dict[str, np.ndarray]:
    """torch's RNG states as arrays (for Keras on PyTorch, whose unseeded dropout draws from
    them): the CPU generator's and, where CUDA is in use, each GPU's."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return {"cpu": torch.get_rng_state().numpy(),
            **{f"cuda{index}": state.numpy() for index, state in enumerate(cuda)}}


def restore_rng_arrays(arrays: dict[str, np.ndarray]) -> None:
    torch.set_rng_state(torch.from_numpy(arrays["cpu"]))
    cuda = [torch.from_numpy(arrays[f"cuda{i}"]) for i in range(len(arrays) - 1)]
    if cuda:
        torch.cuda.set_rng_state_all(cuda)


# What torch.load raises for a damaged file: garbage (UnpicklingError), a cut archive
# (RuntimeError), an empty file (EOFError), text (KeyError)
_UNREADABLE = (OSError, EOFError, RuntimeError, KeyError, ValueError, pickle.UnpicklingError)


def _check_fits(net: torch.nn.Module, saved: object) -> None:
    """ValueError unless `saved` holds the module's tensors, names and shapes alike."""
    expected = {name: tuple(value.shape) for name, value in net.state_dict().items()}
    found = ({name: tuple(getattr(value, "shape", ())) for name, value in saved.items()}
             if isinstance(saved, dict) else None)
    if found != expected:
        raise ValueError("its module tensors' names or shapes are not the model's")


def load_training_state(model: TorchModel, path: Path) -> None:
    """Into a model built from the same spec; ValueError, the model left as built, when the
    file cannot be read or does not fit it."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except _UNREADABLE as exc:
        raise ValueError(f"{path.name}: cannot be read") from exc
    try:  # all checked before anything changes; the optimizer checks before it loads
        net, steps, cpu_rng, cuda_rng = (state["net"], int(state["steps"]), state["cpu_rng"],
                                         state["cuda_rng"])
        _check_fits(model.net, net)
        model.optimizer.load_state_dict(state["optimizer"])  # moves state to the params' device
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path.name}: does not fit the model: {exc}") from exc
    model.net.load_state_dict(net)
    model.steps = steps
    torch.set_rng_state(cpu_rng)
    if cuda_rng:
        torch.cuda.set_rng_state_all(cuda_rng)

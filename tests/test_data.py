"""harness.data: loading the shared files, preparing arrays, downloading (faked), sample order.

The network is never touched: `urllib.request.urlopen` is replaced by a fake in every test.
"""

from __future__ import annotations

import gzip
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.data import DATASETS, Arrays, DataError, RawDataset
from harness.data import datasets as data
from harness.data import order as sample_order
from harness.spec.schema import InputSpec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
needs_shared = pytest.mark.skipif(
    not all((SHARED / name / f.name).is_file()
            for name, src in DATASETS.items() for f in src.files.values()),
    reason=f"shared MNIST/Fashion-MNIST files not found under {SHARED}",
)


class FakeUrlopen:
    """Serves `routes[url]`: bytes, or an exception to raise. Records the URLs asked for."""

    def __init__(self, routes: dict[str, bytes | Exception] | None = None) -> None:
        self.routes = routes or {}
        self.calls: list[str] = []

    def __call__(self, url: str, timeout: float | None = None) -> io.BytesIO:
        self.calls.append(url)
        body = self.routes.get(url, OSError(f"no route to {url} (test network is off)"))
        if isinstance(body, Exception):
            raise body
        return io.BytesIO(body)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> FakeUrlopen:
    fake = FakeUrlopen()
    monkeypatch.setattr("urllib.request.urlopen", fake)
    return fake


def _url(dataset: str, mirror: int, role: str) -> str:
    src = DATASETS[dataset]
    return src.mirrors[mirror] + src.files[role].name


def _seed(tmp_path: Path, skip_role: str) -> Path:
    """A data dir holding copies of the shared MNIST files except `skip_role`'s."""
    folder = tmp_path / "mnist"
    folder.mkdir(parents=True)
    for role, f in DATASETS["mnist"].files.items():
        if role != skip_role:
            shutil.copyfile(SHARED / "mnist" / f.name, folder / f.name)
    return folder


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------- shared data


@needs_shared
@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_load_shared(monkeypatch: pytest.MonkeyPatch, dataset: str, no_network) -> None:
    monkeypatch.setenv(data.ENV_VAR, str(SHARED))
    before = sorted(p.name for p in (SHARED / dataset).iterdir())
    raw = data.load_raw(dataset)
    assert raw.name == dataset
    assert raw.x_train.shape == (60000, 28, 28) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (10000, 28, 28) and raw.x_test.dtype == np.uint8
    assert raw.y_train.shape == (60000,) and raw.y_test.shape == (10000,)
    for y in (raw.y_train, raw.y_test):
        assert y.dtype == np.uint8 and set(np.unique(y)) == set(range(10))
    counts = np.bincount(raw.y_test, minlength=10).tolist()
    assert counts == (MNIST_TEST_COUNTS if dataset == "mnist" else [1000] * 10)
    assert data.load_raw(dataset) is raw  # cached
    assert no_network.calls == []
    assert sorted(p.name for p in (SHARED / dataset).iterdir()) == before  # nothing written


@needs_shared
def test_load_arrays_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.ENV_VAR, str(SHARED))
    arrays = data.load_arrays(InputSpec(shape=(28, 28, 1)), limit=1000, limit_test=500)
    assert arrays.x_train.shape == (1000, 28, 28, 1) and arrays.x_test.shape == (500, 28, 28, 1)
    assert arrays.x_train.min() >= 0.0 and arrays.x_train.max() == 1.0


def test_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    assert data.data_dir().parts[-1] == "data" and "harness" in data.data_dir().parts
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))
    assert data.data_dir() == tmp_path / "env"
    assert data.data_dir(tmp_path / "cli") == tmp_path / "cli"


def test_datasets_table() -> None:
    assert set(DATASETS) == {"mnist", "fashion-mnist"}
    for src in DATASETS.values():
        assert set(src.files) == set(data.ROLES) and len(src.mirrors) >= 2
        for f in src.files.values():
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0 and f.size > 0
            assert all(m.startswith("http") and m.endswith("/") for m in src.mirrors)


# ---------------------------------------------------------------------------- prepare


def _fake_raw(n_train: int = 6, n_test: int = 4) -> RawDataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n_train + n_test, 28, 28), dtype=np.uint8)
    x[0, 0, 0], x[0, 0, 1] = 0, 255
    y = (np.arange(n_train + n_test) % 10).astype(np.uint8)
    return RawDataset("mnist", x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def test_prepare_flat_and_image() -> None:
    raw = _fake_raw()
    flat = data.prepare(raw, InputSpec(shape=(784,)))
    assert isinstance(flat, Arrays) and flat.n_train == 6 and flat.n_test == 4
    assert flat.x_train.shape == (6, 784) and flat.x_test.shape == (4, 784)
    assert flat.x_train.dtype == np.float32 and flat.y_train.dtype == np.int64
    np.testing.assert_array_equal(flat.x_train, raw.x_train.reshape(6, 784) / np.float32(255))
    assert flat.x_train.min() == 0.0 and flat.x_train.max() == 1.0
    np.testing.assert_array_equal(flat.y_test, raw.y_test.astype(np.int64))
    img = data.prepare(raw, InputSpec(shape=(28, 28, 1)))
    assert img.x_train.shape == (6, 28, 28, 1) and img.input_shape == (28, 28, 1)
    np.testing.assert_array_equal(img.x_train.reshape(6, 784), flat.x_train)
    assert img.x_train.flags.c_contiguous


def test_prepare_scale_and_limits() -> None:
    raw = _fake_raw()
    arrays = data.prepare(raw, InputSpec(shape=(784,), scale=1.0), limit=3, limit_test=2)
    assert arrays.x_train.shape == (3, 784) and arrays.x_test.shape == (2, 784)
    assert arrays.x_train.max() == 255.0
    np.testing.assert_array_equal(arrays.y_train, [0, 1, 2])
    assert data.prepare(raw, InputSpec(shape=(784,)), limit=6).n_train == 6


@pytest.mark.parametrize("bad", [0, -1, 7, 2.5, True, "3"])
def test_prepare_invalid_limit(bad: object) -> None:
    with pytest.raises(ValueError, match=r"limit must be a positive integer no larger than 6"):
        data.prepare(_fake_raw(), InputSpec(shape=(784,)), limit=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"limit_test must be .* no larger than 4 .*test set"):
        data.prepare(_fake_raw(), InputSpec(shape=(784,)), limit_test=5 if bad == 7 else bad)


def test_prepare_dataset_mismatch() -> None:
    with pytest.raises(ValueError, match="fashion-mnist"):
        data.prepare(_fake_raw(), InputSpec(dataset="fashion-mnist", shape=(784,)))


# ---------------------------------------------------------------------------- download


@needs_shared
def test_download_all_into_empty_dir(tmp_path: Path, no_network: FakeUrlopen) -> None:
    for role, f in DATASETS["mnist"].files.items():
        no_network.routes[_url("mnist", 0, role)] = (SHARED / "mnist" / f.name).read_bytes()
    paths = data.ensure_files("mnist", tmp_path / "new", download=True)
    assert set(paths) == set(data.ROLES)
    for role, f in DATASETS["mnist"].files.items():
        assert paths[role] == tmp_path / "new" / "mnist" / f.name
        assert paths[role].read_bytes() == (SHARED / "mnist" / f.name).read_bytes()
    assert _leftovers(tmp_path / "new" / "mnist") == []
    raw = data.load_raw("mnist", tmp_path / "new", download=False)
    assert np.bincount(raw.y_test).tolist() == MNIST_TEST_COUNTS


@needs_shared
def test_first_mirror_fails_second_used(tmp_path: Path, no_network: FakeUrlopen) -> None:
    folder = _seed(tmp_path, "test_labels")
    good = (SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    no_network.routes[_url("mnist", 0, "test_labels")] = OSError("HTTP Error 503")
    no_network.routes[_url("mnist", 1, "test_labels")] = good
    paths = data.ensure_files("mnist", tmp_path, download=True)
    assert no_network.calls == [_url("mnist", 0, "test_labels"), _url("mnist", 1, "test_labels")]
    assert paths["test_labels"].read_bytes() == good and _leftovers(folder) == []


@needs_shared
def test_bad_bytes_rejected_then_next_mirror(tmp_path: Path, no_network: FakeUrlopen) -> None:
    folder = _seed(tmp_path, "test_labels")
    good = (SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    no_network.routes[_url("mnist", 0, "test_labels")] = good[:-100]
    no_network.routes[_url("mnist", 1, "test_labels")] = good
    assert data.ensure_files("mnist", tmp_path, download=True)["test_labels"].read_bytes() == good
    assert _leftovers(folder) == []


@needs_shared
@pytest.mark.parametrize("how", ["truncated", "corrupted", "oversized"])
def test_bad_bytes_leave_nothing(tmp_path: Path, no_network: FakeUrlopen, how: str) -> None:
    folder = _seed(tmp_path, "test_labels")
    good = (SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    bad = {"truncated": good[: len(good) // 2],
           "corrupted": good[:100] + bytes([good[100] ^ 0xFF]) + good[101:],
           "oversized": good + b"\0" * 10}[how]
    for mirror in range(len(DATASETS["mnist"].mirrors)):
        no_network.routes[_url("mnist", mirror, "test_labels")] = bad
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz") as info:
        data.ensure_files("mnist", tmp_path, download=True)
    assert ("checksum mismatch" if how != "oversized" else "more than") in str(info.value)
    assert not (folder / "t10k-labels-idx1-ubyte.gz").exists()
    assert _leftovers(folder) == []


@needs_shared
def test_interrupted_download_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _seed(tmp_path, "test_labels")

    class Broken(io.BytesIO):
        def read(self, n: int = -1) -> bytes:
            if self.tell() > 0:
                raise KeyboardInterrupt
            return super().read(n if 0 < n < 1000 else 1000)

    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout=None: Broken(b"x" * 4000))
    with pytest.raises(KeyboardInterrupt):
        data.ensure_files("mnist", tmp_path, download=True)
    assert list(folder.glob("t10k-labels*")) == [] and _leftovers(folder) == []


def test_all_mirrors_fail(tmp_path: Path, no_network: FakeUrlopen) -> None:
    with pytest.raises(DataError) as info:
        data.ensure_files("fashion-mnist", tmp_path, download=True)
    message = str(info.value)
    for mirror in DATASETS["fashion-mnist"].mirrors:
        assert mirror + "train-images-idx3-ubyte.gz" in message
    assert "test network is off" in message and data.ENV_VAR in message
    assert str(tmp_path / "fashion-mnist" / "train-images-idx3-ubyte.gz") in message
    assert _leftovers(tmp_path / "fashion-mnist") == []


def test_missing_without_download(tmp_path: Path, no_network: FakeUrlopen) -> None:
    with pytest.raises(DataError, match="missing and downloading is disabled"):
        data.ensure_files("mnist", tmp_path, download=False)
    assert no_network.calls == [] and not (tmp_path / "mnist").exists()


def test_unknown_dataset() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        data.ensure_files("cifar")


# ---------------------------------------------------------------------------- bad local files


@needs_shared
def test_corrupted_present_file(tmp_path: Path, no_network: FakeUrlopen) -> None:
    folder = _seed(tmp_path, "none")
    data.ensure_files("mnist", tmp_path)  # valid, and remembered as verified
    target = folder / "train-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-10])  # truncated after verification
    with pytest.raises(DataError) as info:
        data.ensure_files("mnist", tmp_path)
    message = str(info.value)
    assert str(target) in message and "delete" in message
    assert DATASETS["mnist"].files["train_labels"].sha256 in message
    assert no_network.calls == [] and target.exists()


def _gz(tmp_path: Path, payload: bytes) -> Path:
    path = tmp_path / "file-idx.gz"
    path.write_bytes(gzip.compress(payload))
    return path


def _header(*ints: int) -> bytes:
    return b"".join(i.to_bytes(4, "big") for i in ints)


def test_idx_parsing(tmp_path: Path) -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).tobytes()
    parsed = data._read_idx(_gz(tmp_path, _header(2051, 2, 28, 28) + images), 2051, 3)
    assert parsed.shape == (2, 28, 28) and parsed.tobytes() == images
    labels = data._read_idx(_gz(tmp_path, _header(2049, 3) + b"\x01\x02\x09"), 2049, 1)
    assert labels.tolist() == [1, 2, 9]


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (_header(2049, 2, 28, 28) + bytes(2 * 784), "bad IDX magic number 2049, expected 2051"),
        (_header(2051, 2, 28, 27) + bytes(2 * 756), "images are 28x27"),
        (_header(2051, 2, 28, 28) + bytes(784), "payload is 784 bytes, expected 1568"),
        (_header(2051, 2, 28, 28) + bytes(3 * 784), "payload is 2352 bytes"),
        (b"\0\0", "too short"),
    ],
)
def test_idx_errors(tmp_path: Path, payload: bytes, match: str) -> None:
    path = _gz(tmp_path, payload)
    with pytest.raises(DataError, match=match) as info:
        data._read_idx(path, 2051, 3)
    assert str(path) in str(info.value)


def test_idx_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "plain.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a readable gzip file"):
        data._read_idx(path, 2049, 1)


# ---------------------------------------------------------------------------- sample order


def test_epoch_order() -> None:
    a = sample_order.epoch_order(1000, epoch=0, seed=42)
    assert a.dtype == np.int64 and sorted(a.tolist()) == list(range(1000))
    np.testing.assert_array_equal(a, sample_order.epoch_order(1000, epoch=0, seed=42))
    np.testing.assert_array_equal(a, np.random.default_rng([42, 0]).permutation(1000))
    assert not np.array_equal(a, sample_order.epoch_order(1000, epoch=1, seed=42))
    assert not np.array_equal(a, sample_order.epoch_order(1000, epoch=0, seed=43))
    plain = sample_order.epoch_order(5, epoch=3, seed=1, shuffle=False)
    assert plain.dtype == np.int64 and plain.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        sample_order.epoch_order(10, epoch=-1, seed=0)


def test_batch_slices() -> None:
    order = sample_order.epoch_order(10, epoch=0, seed=0)
    batches = list(sample_order.batch_slices(order, 4))
    assert [len(b) for b in batches] == [4, 4, 2] and sample_order.num_batches(10, 4) == 3
    np.testing.assert_array_equal(np.concatenate(batches), order)
    assert [len(b) for b in sample_order.batch_slices(order, 5)] == [5, 5]
    with pytest.raises(ValueError, match="batch_size"):
        list(sample_order.batch_slices(order, 0))


# ---------------------------------------------------------------------------- normalize, split


def test_normalize_is_the_formula_after_scale() -> None:
    """x = (x / scale - mean) / std in float32, as torchvision's ToTensor then Normalize."""
    raw = _fake_raw()
    spec = InputSpec(shape=(28, 28, 1), normalize={"mean": 0.1307, "std": 0.3081})
    x = data.prepare(raw, spec).x_train
    expected = (raw.x_train.astype(np.float32)[..., None] / np.float32(255)
                - np.float32(0.1307)) / np.float32(0.3081)
    np.testing.assert_array_equal(x, expected)
    assert x.dtype == np.float32
    plain = data.prepare(raw, InputSpec(shape=(28, 28, 1))).x_train  # negative control
    assert not np.array_equal(x, plain)
    torch = pytest.importorskip("torch")
    pixels = torch.from_numpy(raw.x_train[..., None].astype(np.float32))
    by_torch = (pixels / 255).sub_(torch.tensor(0.1307)).div_(torch.tensor(0.3081))
    np.testing.assert_array_equal(x, by_torch.numpy())


def test_normalize_per_channel_broadcasts_over_the_last_axis() -> None:
    raw = RawDataset("npz", np.arange(24, dtype=np.uint8).reshape(2, 4, 3),
                     np.zeros(2, np.uint8), np.zeros((1, 4, 3), np.uint8), np.zeros(1, np.uint8))
    spec = InputSpec(dataset={"npz": __file__}, shape=(4, 3), scale=1.0,
                     normalize={"mean": [1.0, 2.0, 3.0], "std": [1.0, 2.0, 4.0]})
    x = data.prepare(raw, spec).x_train
    np.testing.assert_array_equal(x[0, 0], [(0 - 1) / 1, (1 - 2) / 2, (2 - 3) / 4])


@pytest.mark.parametrize("n", [1001, 7, 60_000, 10])
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.15, 0.3333])
def test_the_validation_split_is_keras_own(n: int, fraction: float) -> None:
    pytest.importorskip("keras")
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split

    from harness.data import hold_out

    x = np.arange(n, dtype=np.float32)[:, None]
    y = np.arange(n, dtype=np.int64)
    (keras_x, keras_y), (val_x, val_y) = train_validation_split((x, y), fraction)
    arrays = hold_out(Arrays(x, y, x[:1], y[:1]), fraction)
    np.testing.assert_array_equal(arrays.x_train, keras_x)
    np.testing.assert_array_equal(arrays.y_train, keras_y)
    np.testing.assert_array_equal(arrays.x_val, val_x)
    np.testing.assert_array_equal(arrays.y_val, val_y)
    assert len(arrays.y_train) + len(arrays.y_val) == n  # the last part held out, nothing lost


def test_a_split_leaving_nothing_is_a_usage_error() -> None:
    from harness.data import split_index
    from harness.errors import UsageError

    with pytest.raises(UsageError, match=r"train.validation.split: 0.95 of 10 training "
                                         "samples leaves no sample to train or to validate on"):
        split_index(10, 0.95)
    assert split_index(10, 0.1) == 9  # negative control

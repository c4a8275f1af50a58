"""The wheel carries the model zoo: built from a copy of the checkout, installed apart from it
(`pip install --no-deps --target`) and run from another folder, `harness` finds every spec."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT_ZOO = sorted(p.stem for p in (ROOT / "harness" / "zoo").glob("*.yaml"))
CHECKOUT_MODERN = sorted(p.stem for p in (ROOT / "harness" / "zoo" / "modern").glob("*.yaml"))
# A checkout holds more than the source: version control, virtualenvs, build and run outputs.
NOT_SOURCE = shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", "build", "dist", "venv",
                                    "results")
SUBPROCESS_TIMEOUT_S = 300
# Run in the installed copy: which harness modules were loaded, the zoo it found, its specs.
PROBE = ("import json, sys; import harness.cli; from harness.spec import list_specs, zoo_dir; "
         "print(json.dumps({'modules': [m.__file__ for n, m in sys.modules.items() "
         "if n.partition('.')[0] == 'harness' and getattr(m, '__file__', None)], "
         "'zoo': str(zoo_dir()), 'specs': list_specs()}))")


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _build_requirements_present() -> bool:
    """Whether this environment has pyproject.toml's build requirements, so the wheel builds
    offline with --no-build-isolation; otherwise pip fetches them for an isolated build."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: no TOML reader in the standard library
        return False
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for requirement in pyproject["build-system"]["requires"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(?:>=\s*([\d.]+))?", requirement.strip())
        if match is None:
            return False
        try:
            installed = version(match.group(1))
        except PackageNotFoundError:
            return False
        if match.group(2) and _release(installed) < _release(match.group(2)):
            return False
    return True


def _pip(*args: str, cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet"], cwd=cwd,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S,
                          env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert done.returncode == 0, f"pip {' '.join(args)}\n{done.stdout}\n{done.stderr}"


def _run_installed(target: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -S` skips site-packages' .pth files, so an editable install of the checkout is
    not importable; the dependencies come from this interpreter's sys.path less the checkout,
    after `target`, so `harness` and all its modules come from `target`."""
    paths = [str(target)] + [p for p in sys.path if p and Path(p).resolve() != ROOT]
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_MODELS_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return subprocess.run([sys.executable, "-S", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=SUBPROCESS_TIMEOUT_S)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the checkout (a build writes build/ and *.egg-info into the
    tree it builds, and a stale build/ there could lend the wheel files the source lacks)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCE)
    offline = ["--no-build-isolation", "--no-index"] if _build_requirements_present() else []
    _pip("wheel", "--no-deps", *offline, "--wheel-dir", str(work / "dist"), str(source), cwd=work)
    wheels = sorted((work / "dist").glob("harness-*.whl"))
    assert len(wheels) == 1, f"expected one harness wheel, got {wheels}"
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("installed")
    _pip("install", "--no-deps", "--no-index", "--target", str(target), str(wheel), cwd=target)
    return target


@pytest.fixture()
def elsewhere(tmp_path: Path) -> Path:
    """A working folder outside the checkout, with no `models/` of its own."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_wheel_contains_every_zoo_spec_and_module(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(Path(n).stem for n in names if re.fullmatch(r"harness/zoo/[^/]+\.yaml", n))
    assert CHECKOUT_ZOO, "the checkout has no harness/zoo/*.yaml"
    assert shipped == CHECKOUT_ZOO
    modules = [p.relative_to(ROOT).as_posix() for p in (ROOT / "harness").rglob("*.py")]
    missing = sorted(set(modules) - set(names))
    assert "harness/cli.py" in modules and not missing, f"modules not in the wheel: {missing}"


def test_installed_copy_runs_apart_from_the_checkout(installed: Path, elsewhere: Path) -> None:
    probe = _run_installed(installed, "-c", PROBE, cwd=elsewhere)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    outside = [f for f in found["modules"] if not Path(f).resolve().is_relative_to(
        installed.resolve())]
    assert found["modules"] and not outside, f"modules loaded from outside the install: {outside}"
    assert Path(found["zoo"]).resolve() == (installed / "harness" / "zoo").resolve()
    assert found["specs"] == CHECKOUT_ZOO


def test_installed_harness_list_and_show(installed: Path, elsewhere: Path) -> None:
    script = installed / "bin" / "harness"
    listed = _run_installed(installed, str(script), "list", cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert f"Model zoo: {len(CHECKOUT_ZOO)} specs (mnist zoo, " in " ".join(listed.stdout.split())
    missing = [name for name in CHECKOUT_ZOO if name not in listed.stdout]
    assert not missing, f"`harness list` of the installed wheel omits {missing}"
    modern = _run_installed(installed, str(script), "list", "--zoo", "modern", cwd=elsewhere)
    assert modern.returncode == 0, modern.stderr
    missing = [name for name in CHECKOUT_MODERN if name not in modern.stdout]
    assert not missing, f"the installed wheel's modern zoo omits {missing}"
    shown = _run_installed(installed, str(script), "show", "mlp5_bn", cwd=elsewhere)
    assert shown.returncode == 0, shown.stderr
    assert 'Model: "mlp5_bn"' in shown.stdout and "Total params: 206,570" in shown.stdout


def test_installed_harness_rejects_unknown_spec(installed: Path, elsewhere: Path) -> None:
    shown = _run_installed(installed, str(installed / "bin" / "harness"), "show", "no_such_model",
                           cwd=elsewhere)
    assert shown.returncode == 2
    assert "unknown spec 'no_such_model'" in shown.stderr and "Traceback" not in shown.stderr

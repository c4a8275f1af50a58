"""What a framework's native code prints while it loads stays off a terminal, in a log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends import quiet_output as native_output
from harness.backends.quiet_output import framework_log, native_output_to_log


def test_native_writes_go_to_the_log_and_stderr_comes_back(
        capfd: pytest.CaptureFixture[str]) -> None:
    with native_output_to_log("fake", wanted=True) as log:
        os.write(2, b"E0000 failed call to cuInit\n")  # as C++ code writes: to the descriptor
        print("a Python warning while importing", file=sys.__stderr__, flush=True)
    os.write(2, b"the harness's own error line\n")
    assert log == framework_log("fake")
    assert log.read_text() == "E0000 failed call to cuInit\na Python warning while importing\n"
    assert capfd.readouterr().err == "the harness's own error line\n"


def test_stderr_that_is_no_terminal_is_left_alone(capfd: pytest.CaptureFixture[str]) -> None:
    # a job's job.log, CI, a file: the lines belong there
    with native_output_to_log("fake") as log:
        os.write(2, b"native line\n")
    assert log is None and capfd.readouterr().err == "native line\n"


def test_a_terminal_is_kept_clean_unless_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native_output.os, "isatty", lambda fd: True)
    monkeypatch.delenv(native_output.VERBOSE_VARIABLE, raising=False)
    assert native_output._redirect_wanted()
    monkeypatch.setenv(native_output.VERBOSE_VARIABLE, "1")
    assert not native_output._redirect_wanted()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses a pseudo-terminal")
def test_loading_keras_on_a_terminal_prints_none_of_tensorflows_lines(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    import pty

    code = ("from harness.backends import get_backend; get_backend('keras', threads=1); "
            "print('loaded')")
    primary, secondary = pty.openpty()
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop(native_output.VERBOSE_VARIABLE, None)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=secondary,
                               stderr=secondary, env=env)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the process has ended and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert process.wait(timeout=120) == 0
    terminal = shown.decode(errors="replace").replace("\r\n", "\n")
    assert terminal.strip() == "loaded"
    assert (tmp_path / "harness-keras-framework.log").is_file()  # what TF printed, if anything

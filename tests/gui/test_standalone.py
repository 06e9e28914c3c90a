"""The standalone app under Xvfb: the editor opens, draws something, and a
click on the Preamp in/out switch reaches the audio thread.

Needs: the debug standalone binary (``cargo build --features standalone --bin
tubeline``), Xvfb, xdotool and ImageMagick (``import``, ``convert``).

How the click is placed: the app is started with ``TUBELINE_PROBE`` set, so
the editor writes a JSON file (4x a second) with what the audio thread
published (block counter, the settings ``process()`` applied) and the
rectangle of every control in window points (``controls.pre_on`` =
[x0, y0, x1, y1]; times ``pixels_per_point`` for pixels). The test adds the
window's position (``xdotool getwindowgeometry``) to the centre of that
rectangle and clicks there.

Set ``TUBELINE_SCREENSHOT=path.png`` to keep the editor's screenshot
(this is how docs/editor.png is made).
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BINARY = Path(os.environ.get("TUBELINE_BIN", TARGET / "debug" / "tubeline"))
SCREEN = (1600, 1000)


def need(tool):
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: apt-get install xvfb xdotool imagemagick")


def free_display():
    for n in range(99, 160):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return f":{n}"
    pytest.fail("no free X display between :99 and :159")


def read_probe(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def wait_for(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def image_stats(path):
    """(standard deviation 0..1, number of distinct colours) of an image."""
    out = subprocess.run(
        ["convert", str(path), "-format", "%[fx:standard_deviation] %k", "info:"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), int(out[1])


@pytest.fixture
def app(tmp_path):
    for tool in ("Xvfb", "xdotool", "import", "convert"):
        need(tool)
    if not BINARY.exists():
        pytest.fail(
            f"{BINARY} is missing: build it with "
            "`cargo build --features standalone --bin tubeline`"
        )
    display = free_display()
    xvfb = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = dict(os.environ, DISPLAY=display, TUBELINE_PROBE=str(tmp_path / "probe.json"))
    env.pop("WAYLAND_DISPLAY", None)
    log = open(tmp_path / "app.log", "w")
    proc = None
    try:
        wait_for("Xvfb", lambda: Path(f"/tmp/.X11-unix/X{display[1:]}").exists(), 10)
        proc = subprocess.Popen(
            [str(BINARY), "--backend", "dummy"], env=env, stdout=log, stderr=log
        )
        yield {"env": env, "probe": tmp_path / "probe.json", "dir": tmp_path, "proc": proc}
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        xvfb.terminate()
        xvfb.wait(timeout=10)
        log.close()


def test_editor_draws_and_a_click_reaches_the_audio_thread(app):
    env = app["env"]
    found = subprocess.run(
        ["xdotool", "search", "--sync", "--onlyvisible", "--name", "Tubeline"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, (app["dir"] / "app.log").read_text()
    window = found.stdout.split()[0]

    # The audio runs: the block counter grows. The editor has laid out.
    first = wait_for(
        "the probe with the editor's controls",
        lambda: (p := read_probe(app["probe"])) and p.get("controls", {}).get("pre_on") and p,
        30,
    )
    later = wait_for(
        "the audio thread to process more blocks",
        lambda: (p := read_probe(app["probe"])) and p["blocks"] > first["blocks"] and p,
        10,
    )
    assert later["blocks"] > first["blocks"] > 0
    assert later["pre_on"] is True, "the preamp is in by default"

    # The window is not blank.
    time.sleep(0.5)
    shot = app["dir"] / "editor.png"
    subprocess.run(["import", "-window", window, str(shot)], env=env, check=True, timeout=30)
    deviation, colours = image_stats(shot)
    assert deviation > 0.05, f"the window looks blank (std dev {deviation})"
    assert colours > 50, f"the window has only {colours} colours"
    if os.environ.get("TUBELINE_SCREENSHOT"):
        shutil.copy(shot, os.environ["TUBELINE_SCREENSHOT"])

    # Click the Preamp in/out switch where the editor says it is.
    geometry = subprocess.run(
        ["xdotool", "getwindowgeometry", "--shell", window],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    g = dict(line.split("=", 1) for line in geometry.split())
    x0, y0, x1, y1 = later["controls"]["pre_on"]
    scale = later.get("pixels_per_point", 1.0)
    cx = int(g["X"]) + round((x0 + x1) / 2 * scale)
    cy = int(g["Y"]) + round((y0 + y1) / 2 * scale)
    assert 0 < cx - int(g["X"]) < int(g["WIDTH"]) and 0 < cy - int(g["Y"]) < int(g["HEIGHT"])
    subprocess.run(
        ["xdotool", "mousemove", "--sync", str(cx), str(cy), "click", "1"],
        env=env,
        check=True,
        timeout=10,
    )
    after = wait_for(
        "the click to reach the audio thread (pre_on false in the probe)",
        lambda: (p := read_probe(app["probe"])) and p["pre_on"] is False and p,
        10,
    )
    assert after["blocks"] > later["blocks"]
    assert app["proc"].poll() is None, "the app exited"

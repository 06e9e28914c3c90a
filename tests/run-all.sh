#!/usr/bin/env bash
# The test command: `bash tests/run-all.sh` from the repository root.
#
#   1. cargo test --all-targets            (debug profile: unit, invariant, CLAP host,
#                                           renderer, preset tests; benches run once as tests)
#   2. cargo build --features standalone --bin tubeline
#                                          (the standalone app, debug profile like step 1)
#   3. python3 -m pytest tests/gui/        (starts that app under Xvfb with --backend dummy;
#                                           "no tests collected" counts as a failure)
#   4. cargo xtask bundle tubeline --release  (target/bundled/Tubeline.{vst3,clap})
#   5. python3 -m pytest tests/host/       (loads the release VST3 in pedalboard, reads its
#                                           parameter info through the VST3 interfaces, and
#                                           exports a session through it in Ardour 7)
#
# Needs: Rust/cargo, python3 with pedalboard, numpy and pytest, ngspice for
# step 1's SPICE reference tests (tests/spice.rs), and for steps 2-3 and 5 the
# Debian packages in .ci/run's APT_PACKAGES (ALSA/JACK headers, Xvfb, xdotool,
# ImageMagick; Ardour 7). `.ci/run` installs all of them (ngspice included).
#
# Environment:
#   TUBELINE_SKIP_HOST=1  skip steps 4 and 5 (the slow release build) for a
#                         quick local run. CI never sets it.
#   PYTHON                the Python interpreter (default: python3).
#
# Every step runs even if an earlier one failed (except that the host tests
# need the bundle), so one run shows every failure. Exits non-zero if any step
# failed; pytest's "no tests collected" (exit 5) counts as a failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
PYTHON="${PYTHON:-python3}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export TUBELINE_VST3="${TUBELINE_VST3:-$TARGET_DIR/bundled/Tubeline.vst3}"

summary=()
failed=0

# run_step NAME COMMAND...: run a step, time it, record its result.
run_step() {
    local name="$1"
    shift
    echo
    echo "=== run-all: ${name}: $* ==="
    local start rc
    start=$(date +%s)
    set +e
    "$@"
    rc=$?
    set -e
    local secs=$(($(date +%s) - start))
    if [[ $rc -eq 0 ]]; then
        summary+=("${name} ok (${secs} s)")
    else
        summary+=("${name} FAILED with exit ${rc} (${secs} s)")
        failed=1
    fi
    echo "=== run-all: ${name}: exit ${rc} after ${secs} s ==="
    return $rc
}

# run_pytest DIR: the pytest tests in DIR; "no tests collected" is a failure.
run_pytest() {
    local dir="$1" rc=0
    PYTHONDONTWRITEBYTECODE=1 "$PYTHON" -m pytest -p no:cacheprovider -v "$dir" || rc=$?
    if [[ $rc -eq 5 ]]; then
        echo "run-all: pytest collected no tests in ${dir}: that is a failure" >&2
    fi
    return $rc
}

run_step "cargo test" cargo test --all-targets || true

# The Ardour test compares an export with the offline renderer that step 1
# built (the debug profile renders the same samples as the release one).
export TUBELINE_RENDER="${TUBELINE_RENDER:-$TARGET_DIR/debug/tubeline-render}"

# The GUI tests find the app here (the same debug profile as `cargo test`, so
# the feature build reuses its compiled dependencies where features agree).
export TUBELINE_BIN="${TUBELINE_BIN:-$TARGET_DIR/debug/tubeline}"

if run_step "standalone build" cargo build --features standalone --bin tubeline; then
    run_step "GUI tests" run_pytest tests/gui/ || true
else
    summary+=("GUI tests NOT RUN (no standalone build)")
    failed=1
fi

if [[ "${TUBELINE_SKIP_HOST:-}" == "1" ]]; then
    echo
    echo "=== run-all: TUBELINE_SKIP_HOST=1: release bundle and host tests skipped ==="
    summary+=("release bundle SKIPPED" "host tests SKIPPED")
else
    if run_step "release bundle" cargo xtask bundle tubeline --release; then
        run_step "host tests" run_pytest tests/host/ || true
    else
        summary+=("host tests NOT RUN (no bundle)")
        failed=1
    fi
fi

echo
if [[ $failed -eq 0 ]]; then
    verdict="OK"
else
    verdict="FAILED"
fi
joined="$(printf '%s; ' "${summary[@]}")"
echo "run-all: ${verdict}: ${joined%; }"
exit $failed

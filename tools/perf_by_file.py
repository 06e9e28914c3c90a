#!/usr/bin/env python3
"""Where a benchmark spends its time, by DSP source file (a developer's tool;
nothing in the build or the tests uses it).

The kernels run through `Isa::run`, so `perf report` puts most samples in a
few `run_avx2_fma` symbols. This script maps every sampled address through
the binary's debug info (`addr2line -i`, every inlined frame) and charges it
to the innermost frame in `src/` that is not lane plumbing (`simd.rs`,
`simd/x86.rs`, `fma.rs`).

    # a build with debug info (Cargo.toml's `profiling` profile):
    CARGO_TARGET_DIR=target-prof cargo bench --profile profiling --bench chain --no-run
    perf record -o perf.data -F 4000 target-prof/profiling/deps/chain-<hash> \\
        --bench 'chain_stereo_48k_1s/preamp_live_dynamic_mic_xfmr$' --profile-time 10
    tools/perf_by_file.py perf.data target-prof/profiling/deps/chain-<hash>
    tools/perf_by_file.py perf.data <binary> --lines transformer/model.rs

With `--lines S`, the source lines (and the inlined frames around them) of
the files whose path contains S. Percentages are of all samples, the
benches' set-up included (criterion prepares every configuration of a
bench binary before running the filtered one: tables and designs, a few %).
"""
import collections
import subprocess
import sys

SKIP = ("simd.rs", "x86.rs", "fma.rs")


def run(*args, stdin=None):
    return subprocess.run(args, input=stdin, capture_output=True, text=True, check=True).stdout


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    data, binary = sys.argv[1], sys.argv[2]
    lines = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--lines" else None
    name = binary.split("/")[-1]
    ips, other = collections.Counter(), collections.Counter()
    for line in run("perf", "script", "-i", data, "-F", "ip,dso").splitlines():
        p = line.split()
        if len(p) < 2:
            continue
        if name in p[1]:
            ips[int(p[0], 16)] += 1
        else:
            other[p[1].strip("()").split("/")[-1]] += 1
    total = sum(ips.values()) + sum(other.values())
    # Runtime address -> the ELF's virtual address: the mapping's start and
    # file offset (perf's MMAP event), and the executable segment's
    # vaddr - offset (readelf).
    delta = 0
    for line in run("readelf", "-lW", binary).splitlines():
        p = line.split()
        if p and p[0] == "LOAD" and "E" in p[6:-1]:
            delta = int(p[2], 16) - int(p[1], 16)
    base = None
    for line in run("perf", "script", "-i", data, "--show-mmap-events").splitlines():
        if "MMAP" in line and name in line and "r-xp" in line:
            seg = line.split("[")[1]
            base = int(seg.split("(")[0], 16) - int(seg.split("@")[1].split()[0], 16) - delta
            break
    if base is None:
        sys.exit(f"no executable mapping of {name} in {data}")
    addrs = sorted(ips)
    out = run("addr2line", "-i", "-f", "-C", "-a", "-e", binary,
              stdin="\n".join(hex(a - base) for a in addrs)).splitlines()
    frames, cur, i = {}, None, 0
    while i < len(out):
        if out[i].startswith("0x"):
            cur = int(out[i], 16) + base
            frames[cur] = []
            i += 1
            continue
        loc = out[i + 1] if i + 1 < len(out) else ""
        frames[cur].append(loc.split(" ")[0])
        i += 2
    counts = collections.Counter()
    for a, n in ips.items():
        fs = frames.get(a, [])
        if lines:
            hit = [k for k, loc in enumerate(fs) if lines in loc]
            if hit:
                chain = fs[hit[0]:hit[0] + 4]
                counts[" <- ".join(c.split("/src/")[-1] for c in chain)] += n
            continue
        pick = next((f.split("/src/")[-1] for f in fs
                     if "/src/" in f and "/rustc/" not in f and "/.cargo/" not in f
                     and not f.split(":")[0].endswith(SKIP)), None)
        if pick is None:  # outside src/: the standard library's file name
            pick = fs[0].split("/")[-1] if fs else "?"
        counts[pick.split(":")[0]] += n
    if not lines:
        for dso, n in other.most_common(5):
            counts[f"[{dso}]"] += n
    for k, v in counts.most_common(40):
        print(f"{100 * v / total:6.2f}%  {k}")


if __name__ == "__main__":
    main()

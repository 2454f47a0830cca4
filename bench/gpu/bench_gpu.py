#!/usr/bin/env python3
"""GPU loading benchmark of safeweights against safetensors + PyTorch.

One run, on a machine with an NVIDIA GPU, PyTorch and safetensors (no Go
needed): writes the synthetic benchmark models (fp16 tensors of 8192 x 8192)
as .swt (with the carried `safeweights` binary) and as .safetensors (here,
byte for byte the same tensors), then measures, per size:

  - the ceilings: pinned and pageable host-to-device copies, and the disk's
    parallel read speed (O_DIRECT and buffered) after evicting the file;
  - safetensors load_file(..., device="cuda:0"), cold and warm;
  - safeweights `load`, warm, warm verified, cold, cold verified, and one
    warm run with --check (every tensor copied back and compared with the
    file inside the loader);

checks that both files hold the same bytes and that safetensors' GPU copy
matches them, prints one table of GB/s and ratios, and writes all numbers to
$OUT/gpu_bench.json. See docs/GPU.md.

usage: bench_gpu.py --bin PATH/safeweights --dir DATA_DIR [--sizes 4,16]
"""
import argparse, datetime, json, mmap, os, platform, statistics, subprocess, sys, threading, time

import numpy as np
import torch
import safetensors
from safetensors.torch import load_file, save_file

ROWS = COLS = 8192
TENSOR_BYTES = ROWS * COLS * 2
GiB = 1 << 30

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True, help="the safeweights binary (built with CGO_ENABLED=0)")
ap.add_argument("--dir", required=True, help="where to write the models (a real disk, not tmpfs)")
ap.add_argument("--sizes", default="4,16", help="model sizes in GiB, comma-separated")
ap.add_argument("--repeat", type=int, default=3, help="warm runs per measurement (median)")
ap.add_argument("--threads", type=int, default=8, help="threads of the disk read ceiling")
ap.add_argument("--reuse", action="store_true", help="keep model files from an earlier run")
args = ap.parse_args()

out_dir = os.environ.get("OUT", "/tmp")
os.makedirs(args.dir, exist_ok=True)
res = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "gpu": torch.cuda.get_device_name(0),
    "torch": torch.__version__,
    "safetensors": safetensors.__version__,
    "kernel": platform.release(),
    "cpus": os.cpu_count(),
    "sizes": {},
}
try:
    res["filesystem"] = subprocess.run(["df", "-T", args.dir], capture_output=True, text=True).stdout.splitlines()[-1]
    res["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,pcie.link.gen.max,pcie.link.width.max", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
except Exception as e:  # noqa
    res["env_error"] = repr(e)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def med(xs):
    return statistics.median(xs)


def sync_t():
    torch.cuda.synchronize()
    return time.perf_counter()


# --- the generator shared with gpu/gpubench (Go) ---------------------------
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def words(i, j0, n):
    j = np.arange(j0, j0 + n, dtype=np.uint64)
    z = (j | np.uint64(i << 40)) + np.uint64(1)
    with np.errstate(over="ignore"):
        z *= np.uint64(0x9E3779B97F4A7C15)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z.astype("<u8", copy=False)


def _s64(c):
    return c - (1 << 64) if c >= 1 << 63 else c


def _lsr(z, k):  # logical shift right of int64 tensors
    return (z >> k) & ((1 << (64 - k)) - 1)


def words_gpu(i, j0, n):
    """words() on the GPU in int64 arithmetic (wrapping), for speed."""
    z = (torch.arange(j0, j0 + n, dtype=torch.int64, device="cuda") | (i << 40)) + 1
    z = z * _s64(0x9E3779B97F4A7C15)
    z = (z ^ _lsr(z, 30)) * _s64(0xBF58476D1CE4E5B9)
    z = (z ^ _lsr(z, 27)) * _s64(0x94D049BB133111EB)
    return z ^ _lsr(z, 31)


# Use the GPU generator only if it agrees with numpy's.
GPU_GEN = all(
    np.array_equal(words_gpu(i, j0, 4096).cpu().numpy().view(np.uint64), words(i, j0, 4096))
    for i, j0 in ((0, 0), (1, 0), (31, (TENSOR_BYTES // 8) - 4096))
)


res["gpu_generator"] = GPU_GEN


def tensor_bytes(i):
    if GPU_GEN:
        return words_gpu(i, 0, TENSOR_BYTES // 8).cpu().numpy().view(np.uint8)
    return words(i, 0, TENSOR_BYTES // 8).view(np.uint8)


# The same vectors as gpu/gpubench's TestWordVectors.
for (i, j), want in {(0, 0): 0xE220A8397B1DCDAF, (0, 1): 0x6E789E6AA1B965F4, (1, 0): 0x1937167E168D9372}.items():
    assert int(words(i, j, 1)[0]) == want, "generator differs from gpu/gpubench"


def evict(path):
    """Drop path from the page cache: fadvise (no root needed), and the
    global drop_caches when allowed."""
    subprocess.run(["sync"], check=False)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def resident(path):
    """Fraction of path's bytes in the page cache, from util-linux fincore."""
    try:
        r = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE", path], capture_output=True, text=True)
        a, b = r.stdout.split()
        return round(int(a) / max(1, int(b)), 3)
    except Exception:  # noqa
        return None


# --- ceilings ---------------------------------------------------------------
def h2d_ceiling():
    n = GiB
    dev = torch.empty(n, dtype=torch.uint8, device="cuda")
    pageable = torch.randint(0, 255, (n,), dtype=torch.uint8)
    pinned = pageable.pin_memory()
    for name, src in (("pinned", pinned), ("pageable", pageable)):
        dev.copy_(src, non_blocking=True)
        ts = []
        for _ in range(5):
            a = sync_t()
            dev.copy_(src, non_blocking=True)
            ts.append(sync_t() - a)
        res[f"h2d_{name}_GBps"] = round(n / med(ts) / 1e9, 2)
    del dev, pageable, pinned
    torch.cuda.empty_cache()


def parallel_read(path, direct, threads, block=32 << 20):
    """Read the whole file with `threads` threads of pread; returns GB/s."""
    size = os.path.getsize(path)
    flags = os.O_RDONLY | (os.O_DIRECT if direct else 0)
    fd = os.open(path, flags)
    nblocks = (size + block - 1) // block
    nxt = [0]
    lock = threading.Lock()

    def worker():
        buf = mmap.mmap(-1, block)  # page-aligned, as O_DIRECT needs
        while True:
            with lock:
                k = nxt[0]
                nxt[0] += 1
            if k >= nblocks:
                return
            os.preadv(fd, [buf], k * block)

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    a = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.perf_counter() - a
    os.close(fd)
    return round(size / dt / 1e9, 2)


# --- our loader ---------------------------------------------------------------
def sw_load(path, *flags, repeat=1):
    """Run `safeweights load`; returns the per-run JSON objects and the
    process wall time."""
    cmd = [args.bin, "load", path, "--device", "0", "--json", "--repeat", str(repeat), *flags]
    a = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - a
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    runs = [json.loads(l) for l in p.stdout.splitlines() if l.strip().startswith("{")]
    if not runs:
        raise RuntimeError(f"{' '.join(cmd)}: no JSON output")
    return runs, wall


def sw_measure(key, path, cold, *flags, repeat=None):
    r = {}
    try:
        if cold:
            evict(path)
            r["resident_before"] = resident(path)
            runs, wall = sw_load(path, *flags, repeat=1)
        else:
            sw_load(path, *flags, repeat=1)  # warm the cache
            runs, wall = sw_load(path, *flags, repeat=repeat or args.repeat)
        s = med([x["seconds"] for x in runs])
        r.update(GBps=round(runs[0]["bytes"] / s / 1e9, 2), seconds=round(s, 4),
                 setup_seconds=round(runs[0]["setup_seconds"], 3), path=runs[0]["path"],
                 note=runs[0].get("note", ""), process_wall_s=round(wall, 3),
                 checked=any(x.get("checked") for x in runs))
    except Exception as e:  # noqa
        r["error"] = repr(e)
    log(f"  {key}: {r}")
    return r


# --- safetensors --------------------------------------------------------------
def st_load(path):
    a = sync_t()
    t = load_file(path, device="cuda:0")
    b = sync_t()
    return b - a, t


def run_size(gib):
    size = gib * GiB
    n = size // TENSOR_BYTES
    r = {"tensors": n}
    swt = os.path.join(args.dir, f"bench-{gib}GiB.swt")
    st = os.path.join(args.dir, f"bench-{gib}GiB.safetensors")

    if not (args.reuse and os.path.exists(swt)):
        a = time.perf_counter()
        subprocess.run([args.bin, "bench-gpu-write", args.dir, "--size", f"{gib}GiB"], check=True)
        r["write_swt_s"] = round(time.perf_counter() - a, 2)
    if not (args.reuse and os.path.exists(st)):
        a = time.perf_counter()
        tensors = {f"layers.{i}.weight": torch.from_numpy(tensor_bytes(i).view(np.float16).reshape(ROWS, COLS)) for i in range(n)}
        save_file(tensors, st)
        del tensors
        r["write_safetensors_s"] = round(time.perf_counter() - a, 2)
    r["swt_bytes"], r["safetensors_bytes"] = os.path.getsize(swt), os.path.getsize(st)

    # Both files hold the same tensors: compare the .swt's tensor bytes, at
    # the offsets the loader reports, with the generator and the twin.
    runs, _ = sw_load(swt)
    table = runs[0]["tensors"]
    assert len(table) == n, f"{len(table)} tensors in {swt}, want {n}"
    swt_map = np.memmap(swt, dtype=np.uint8, mode="r")
    with open(st, "rb") as f:
        hlen = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(hlen))
    st_map = np.memmap(st, dtype=np.uint8, mode="r")
    same = True
    for t in table:
        i = int(t["name"].split(".")[1])
        a = swt_map[t["file_offset"] : t["file_offset"] + t["size"]]
        lo, hi = header[t["name"]]["data_offsets"]
        b = st_map[8 + hlen + lo : 8 + hlen + hi]
        if not (np.array_equal(a, b) and np.array_equal(a[:4096], words(i, 0, 512).view(np.uint8))):
            same = False
            log(f"  tensor {t['name']} differs between the files")
    r["files_identical"] = same
    del swt_map, st_map

    # Disk ceilings (cold).
    for direct in (True, False):
        evict(swt)
        key = "disk_parallel_direct_GBps" if direct else "disk_parallel_buffered_GBps"
        try:
            r[key] = parallel_read(swt, direct, args.threads)
        except OSError as e:
            r[key + "_error"] = repr(e)
    r["disk_parallel_GBps"] = max(r.get("disk_parallel_direct_GBps", 0), r.get("disk_parallel_buffered_GBps", 0))

    # safetensors: cold, then warm; its GPU copy compared with the generator.
    evict(st)
    try:
        dt, t = st_load(st)
        r["safetensors_cold_GBps"] = round(size / dt / 1e9, 2)
        st_map = np.memmap(st, dtype=np.uint8, mode="r")
        bad = []
        for k, v in t.items():
            lo, hi = header[k]["data_offsets"]
            if not np.array_equal(v.cpu().view(torch.uint8).numpy().reshape(-1), st_map[8 + hlen + lo : 8 + hlen + hi]):
                bad.append(k)
        r["safetensors_gpu_bytes_ok"] = not bad
        del t, st_map
        torch.cuda.empty_cache()
        st_load(st)
        ts = []
        for _ in range(args.repeat):
            dt, t = st_load(st)
            del t
            ts.append(dt)
        r["safetensors_warm_GBps"] = round(size / med(ts) / 1e9, 2)
        torch.cuda.empty_cache()
    except Exception as e:  # noqa
        r["safetensors_error"] = repr(e)

    # Ours.
    r["sw_warm"] = sw_measure("warm", swt, False)
    r["sw_warm_verified"] = sw_measure("warm verified", swt, False, "--verify")
    r["sw_cold"] = sw_measure("cold", swt, True)
    r["sw_cold_verified"] = sw_measure("cold verified", swt, True, "--verify")
    r["sw_warm_buffered"] = sw_measure("warm buffered", swt, False, "--path", "buffered")
    r["sw_check"] = sw_measure("check", swt, False, "--check", repeat=1)
    return r


def table(res):
    rows = []
    for gib, r in res["sizes"].items():
        stw, stc = r.get("safetensors_warm_GBps"), r.get("safetensors_cold_GBps")
        disk = r.get("disk_parallel_GBps")

        def g(k):
            return r.get(k, {}).get("GBps")

        def ratio(a, b):
            return f"{a / b:.2f}x" if a and b else "-"

        rows += [
            (gib, "safetensors load_file warm", stw, "1.00x", ""),
            (gib, "safetensors load_file cold", stc, "1.00x", ""),
            (gib, "safeweights warm", g("sw_warm"), ratio(g("sw_warm"), stw), "goal >= 40 GB/s and 6x"),
            (gib, "safeweights warm verified", g("sw_warm_verified"), ratio(g("sw_warm_verified"), stw), "goal >= 20 GB/s"),
            (gib, "safeweights warm buffered", g("sw_warm_buffered"), ratio(g("sw_warm_buffered"), stw), "diagnostic"),
            (gib, "safeweights cold", g("sw_cold"), ratio(g("sw_cold"), stc), f"goal >= 1.5x; {ratio(g('sw_cold'), disk)} of disk"),
            (gib, "safeweights cold verified", g("sw_cold_verified"), ratio(g("sw_cold_verified"), stc), f"{ratio(g('sw_cold_verified'), disk)} of disk"),
            (gib, "disk parallel read (ceiling)", disk, "", f"direct {r.get('disk_parallel_direct_GBps')}, buffered {r.get('disk_parallel_buffered_GBps')}"),
            (gib, "pinned HtoD (ceiling)", res.get("h2d_pinned_GBps"), "", f"pageable {res.get('h2d_pageable_GBps')}"),
        ]
    w = max(len(x[1]) for x in rows)
    lines = [f"GPU: {res['gpu']}   date: {res['date']}   driver/PCIe: {res.get('driver', '?')}",
             f"{'size':>6}  {'measurement':<{w}}  {'GB/s':>7}  {'ratio':>7}  note"]
    for gib, name, v, ratio_s, note in rows:
        vs = f"{v:7.2f}" if isinstance(v, (int, float)) else f"{'-':>7}"
        lines.append(f"{gib:>4}Gi  {name:<{w}}  {vs}  {ratio_s:>7}  {note}")
    for gib, r in res["sizes"].items():
        lines.append(f"{gib}GiB: files identical {r.get('files_identical')}, safetensors GPU bytes ok {r.get('safetensors_gpu_bytes_ok')}, "
                     f"safeweights --check {r.get('sw_check', {}).get('checked')}, paths: warm {r.get('sw_warm', {}).get('path')}, cold {r.get('sw_cold', {}).get('path')}")
    return "\n".join(lines)


log("ceilings")
h2d_ceiling()
for gib in [int(s) for s in args.sizes.split(",") if s]:
    log(f"model of {gib} GiB")
    res["sizes"][f"{gib}"] = run_size(gib)
    with open(os.path.join(out_dir, "gpu_bench.json"), "w") as f:
        json.dump(res, f, indent=1)

res["table"] = table(res)
print(res["table"])
with open(os.path.join(out_dir, "gpu_bench.json"), "w") as f:
    json.dump(res, f, indent=1)
with open(os.path.join(out_dir, "gpu_bench.txt"), "w") as f:
    f.write(res["table"] + "\n")

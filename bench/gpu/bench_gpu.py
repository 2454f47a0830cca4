#!/usr/bin/env python3
"""GPU loading benchmark of safeweights against safetensors + PyTorch.

One run, on a machine with an NVIDIA GPU, PyTorch and safetensors (no Go, no
numpy needed): writes the synthetic benchmark models (fp16 tensors of
8192 x 8192) as .swt (with the carried `safeweights` binary, `bench-gpu-write`)
and as their .safetensors twin (the same tensor bytes, copied from the .swt),
then, per stage:

  smoke (1 GiB): every loader path with and without --verify, with --check
      (every tensor copied back and compared inside the loader); the twin's
      bytes compared with the .swt's, and safetensors' GPU copy with the file;
  4 and 16 GiB: the pinned host-to-device ceiling, the disk's parallel read
      speed, safetensors load_file to the GPU warm and cold, and our loader
      warm, cold and verified.

Before every run the file's page-cache residency is measured (mincore): a
"cold" row must start at ~0% resident (after POSIX_FADV_DONTNEED and, as
root, drop_caches) and a "warm" row at ~100% (after reading the file through
the page cache); a row whose residency is not what it claims fails. The
table and $OUT/gpu_bench.json are written after each stage; each stage's
files are deleted once measured. Exits non-zero if anything failed.

DRYRUN=1 shrinks every tensor to 64 x 64 (same tensor counts), for a run on
a machine without a GPU against the fake driver and the stand-in torch and
safetensors of bench/gpu/dryrun (see bench/gpu/dryrun.sh).

usage: bench_gpu.py --bin PATH/safeweights --dir DATA_DIR [--sizes 1,4,16] [--budget 540]
"""
import argparse, ctypes, ctypes.util, datetime, json, mmap, os, platform, shutil, statistics, struct, subprocess, sys, threading, time

T0 = time.monotonic()
DRYRUN = os.environ.get("DRYRUN") == "1"
ROWS = COLS = 64 if DRYRUN else 8192
TENSOR_BYTES = ROWS * COLS * 2
GiB = 1 << 30
TENSORS_PER_GIB = GiB // (8192 * 8192 * 2)

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True, help="the safeweights binary (built with CGO_ENABLED=0)")
ap.add_argument("--dir", required=True, help="where to write the models (a real disk, not tmpfs, not under $OUT)")
ap.add_argument("--sizes", default="1,4,16", help="model sizes in GiB; the first is the smoke stage")
ap.add_argument("--repeat", type=int, default=3, help="warm runs per measurement (median)")
ap.add_argument("--threads", type=int, default=8, help="threads of the disk read ceiling")
ap.add_argument("--budget", type=float, default=540, help="seconds the whole run may take")
args = ap.parse_args()

out_dir = os.environ.get("OUT", "/tmp")
failures = []


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def fail(what):
    failures.append(what)
    log("FAIL:", what)


if os.path.realpath(args.dir).startswith(os.path.realpath(out_dir) + os.sep):
    sys.exit("bench_gpu.py: --dir must not be under $OUT (results only go there)")
os.makedirs(args.dir, exist_ok=True)

try:
    import torch
    import safetensors
    from safetensors.torch import load_file
    HAVE_TORCH = torch.cuda.is_available()
except Exception as e:  # noqa
    torch = None
    HAVE_TORCH = False
    fail(f"torch/safetensors unavailable: {e!r}; their rows are missing")

res = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "dryrun": DRYRUN,
    "gpu": torch.cuda.get_device_name(0) if HAVE_TORCH else None,
    "torch": getattr(torch, "__version__", None),
    "safetensors": getattr(sys.modules.get("safetensors"), "__version__", None),
    "kernel": platform.release(),
    "cpus": os.cpu_count(),
    "sizes": {},
    "skipped": [],
}
try:
    res["filesystem"] = subprocess.run(["df", "-T", args.dir], capture_output=True, text=True).stdout.splitlines()[-1]
    res["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,pcie.link.gen.max,pcie.link.width.max", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
except Exception as e:  # noqa
    res["env_note"] = repr(e)


def med(xs):
    return statistics.median(xs)


def sync_t():
    if HAVE_TORCH:
        torch.cuda.synchronize()
    return time.perf_counter()


# --- the generator shared with gpu/gpubench (Go), for spot checks ----------
def word(i, j):
    z = ((i << 40 | j) + 1) & (2**64 - 1)
    z = (z * 0x9E3779B97F4A7C15) & (2**64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return z ^ (z >> 31)


# The same vectors as gpu/gpubench's TestWordVectors.
for (i, j), want in {(0, 0): 0xE220A8397B1DCDAF, (0, 1): 0x6E789E6AA1B965F4, (1, 0): 0x1937167E168D9372}.items():
    assert word(i, j) == want, "generator differs from gpu/gpubench"


# --- page cache ---------------------------------------------------------------
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def resident(path):
    """Fraction of path's pages in the page cache (mincore on a mapping,
    which faults nothing in)."""
    size = os.path.getsize(path)
    if size == 0:
        return 1.0
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
    try:
        buf = ctypes.c_char.from_buffer(mm)
        pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
        vec = (ctypes.c_ubyte * pages)()
        rc = _libc.mincore(ctypes.addressof(buf), size, vec)
        del buf
        if rc != 0:
            raise OSError(ctypes.get_errno(), "mincore")
        return sum(v & 1 for v in vec) / pages
    finally:
        mm.close()


def evict(path):
    """Drop path from the page cache: fadvise (no root needed), and the
    global drop_caches when allowed."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    if os.geteuid() == 0 and not DRYRUN:
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("1\n")
        except OSError:
            pass


def warm(path):
    parallel_read(path, False, args.threads)


def expect(path, cold, what):
    r = resident(path)
    ok = r <= 0.05 if cold else r >= 0.95
    if not ok:
        raise RuntimeError(f"{what}: {path} is {r:.1%} resident before a {'cold' if cold else 'warm'} run")
    return round(r, 3)


def parallel_read(path, direct, threads, block=32 << 20):
    """Read the whole file with `threads` threads of pread; returns GB/s."""
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECT if direct else 0))
    nblocks = (size + block - 1) // block
    nxt = [0]
    lock = threading.Lock()
    errs = []

    def worker():
        buf = mmap.mmap(-1, block)  # page-aligned, as O_DIRECT needs
        try:
            while True:
                with lock:
                    k = nxt[0]
                    nxt[0] += 1
                if k >= nblocks:
                    return
                os.preadv(fd, [buf], k * block)
        except OSError as e:
            errs.append(e)
        finally:
            buf.close()

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    a = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.perf_counter() - a
    os.close(fd)
    if errs:
        raise errs[0]
    return round(size / dt / 1e9, 2)


# --- files --------------------------------------------------------------------
def inspect(path):
    p = subprocess.run([args.bin, "inspect", "--json", path], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"inspect {path}: exit {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def write_twin(swt, st, info):
    """The .safetensors twin of swt: the same tensor bytes, copied."""
    header, off = {}, 0
    for t in info["tensors"]:
        header[t["name"]] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [off, off + t["bytes"]]}
        off += t["bytes"]
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(swt, "rb") as src, open(st, "wb") as dst:
        dst.write(struct.pack("<Q", len(h)) + h)
        for t in info["tensors"]:
            src.seek(t["offset"])
            left = t["bytes"]
            while left:
                b = src.read(min(left, 64 << 20))
                if not b:
                    raise RuntimeError(f"{swt}: short read")
                dst.write(b)
                left -= len(b)
        dst.flush()
        os.fsync(dst.fileno())
    return 8 + len(h)


def files_identical(swt, st, info, base, full):
    """Compare the twin with the .swt (all bytes when full, else the first
    and last 4 KiB of each tensor) and each tensor's head with the
    generator."""
    ok = True
    with open(swt, "rb") as a, open(st, "rb") as b:
        off = base
        for t in info["tensors"]:
            i = int(t["name"].split(".")[1])
            n = t["bytes"]
            spans = [(0, n)] if full else [(0, min(4096, n)), (max(0, n - 4096), n)]
            for lo, hi in spans:
                pos = lo
                while pos < hi:
                    k = min(hi - pos, 64 << 20)
                    a.seek(t["offset"] + pos)
                    b.seek(off + pos)
                    if a.read(k) != b.read(k):
                        ok = False
                        log(f"  tensor {t['name']} differs between the files")
                    pos += k
            a.seek(t["offset"])
            head = a.read(64)
            if head != b"".join(struct.pack("<Q", word(i, j)) for j in range(len(head) // 8)):
                ok = False
                log(f"  tensor {t['name']} differs from the generator")
            off += n
    return ok


# --- our loader ---------------------------------------------------------------
def sw_load(path, *flags, repeat=1):
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


BREAKDOWN = ("staging", "register", "unregister", "read", "hash", "copy_queue", "copy_wait", "decompress")


def sw_measure(key, path, cold, *flags, repeat=None):
    r = {}
    try:
        if cold:
            evict(path)
        else:
            warm(path)
        r["resident_before"] = expect(path, cold, key)
        runs, wall = sw_load(path, *flags, repeat=1 if cold else (repeat or args.repeat))
        # The loader's own mincore before each run, after it opened the
        # file: reading the header may read ahead a few MiB of tensor pages.
        tol = max(0.05, (8 << 20) / os.path.getsize(path))
        for x in runs:
            if (cold and x["resident"] > tol) or (not cold and 0 <= x["resident"] < 0.95):
                raise RuntimeError(f"{key}: the loader saw {x['resident']:.1%} resident")
        r["loader_resident"] = [round(x["resident"], 3) for x in runs]
        s = med([x["seconds"] for x in runs])
        r.update(GBps=round(runs[0]["bytes"] / s / 1e9, 2), seconds=round(s, 4),
                 setup_seconds=round(runs[0]["setup_seconds"], 3), path=runs[0]["path"],
                 note=runs[0].get("note", ""), process_wall_s=round(wall, 3),
                 checked=any(x.get("checked") for x in runs),
                 breakdown_s={k: round(runs[0].get(k + "_seconds", 0), 4) for k in BREAKDOWN})
        if "--check" in flags and not r["checked"]:
            raise RuntimeError(f"{key}: --check did not run")
    except Exception as e:  # noqa
        r["error"] = repr(e)
        fail(f"{key} ({os.path.basename(path)}): {e}")
    log(f"  {key}: {r}")
    return r


# --- PyTorch + safetensors ----------------------------------------------------
def h2d_ceiling():
    n = min(GiB, 64 * TENSOR_BYTES)
    dev = torch.empty(n, dtype=torch.uint8, device="cuda")
    pinned = torch.empty(n, dtype=torch.uint8, pin_memory=True)
    dev.copy_(pinned, non_blocking=True)
    ts = []
    for _ in range(5):
        a = sync_t()
        dev.copy_(pinned, non_blocking=True)
        ts.append(sync_t() - a)
    res["h2d_pinned_GBps"] = round(n / med(ts) / 1e9, 2)
    del dev, pinned
    torch.cuda.empty_cache()


def st_load(path):
    a = sync_t()
    t = load_file(path, device="cuda:0")
    b = sync_t()
    return b - a, t


def st_gpu_bytes_ok(t, st, base, info):
    with open(st, "rb") as f:
        off = base
        for x in info["tensors"]:
            f.seek(off)
            want = torch.frombuffer(bytearray(f.read(x["bytes"])), dtype=torch.uint8).to("cuda:0")
            got = t[x["name"]].reshape(-1).view(torch.uint8)
            if not torch.equal(got, want):
                return False
            off += x["bytes"]
    return True


def st_measure(key, st, size, cold):
    r = {}
    try:
        if cold:
            evict(st)
        else:
            warm(st)
        r["resident_before"] = expect(st, cold, key)
        if cold:
            dt, t = st_load(st)
            del t
            r["GBps"] = round(size / dt / 1e9, 2)
        else:
            ts = []
            for _ in range(args.repeat):
                dt, t = st_load(st)
                del t
                ts.append(dt)
            r["GBps"] = round(size / med(ts) / 1e9, 2)
        torch.cuda.empty_cache()
    except Exception as e:  # noqa
        r["error"] = repr(e)
        fail(f"{key}: {e}")
    log(f"  {key}: {r}")
    return r


# --- stages -------------------------------------------------------------------
def write_stage(gib, r):
    swt = os.path.join(args.dir, f"bench-{gib}GiB.swt")
    st = os.path.join(args.dir, f"bench-{gib}GiB.safetensors")
    a = time.perf_counter()
    cmd = [args.bin, "bench-gpu-write", args.dir, "--size", f"{gib}GiB"]
    if DRYRUN:
        cmd += ["--shape", f"{ROWS}x{COLS}"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    r["write_swt_s"] = round(time.perf_counter() - a, 2)
    info = inspect(swt)
    assert len(info["tensors"]) == gib * TENSORS_PER_GIB, "tensor count"
    a = time.perf_counter()
    base = write_twin(swt, st, info)
    r["write_safetensors_s"] = round(time.perf_counter() - a, 2)
    r["swt_bytes"], r["safetensors_bytes"] = os.path.getsize(swt), os.path.getsize(st)
    return swt, st, info, base


def smoke(gib):
    r = {"stage": "smoke", "tensors": gib * TENSORS_PER_GIB}
    swt, st, info, base = write_stage(gib, r)
    try:
        r["files_identical"] = files_identical(swt, st, info, base, full=True)
        if not r["files_identical"]:
            fail("smoke: the .safetensors twin differs from the .swt")
        for path in ("mapped", "direct", "buffered", "auto"):
            for v in ((), ("--verify",)):
                key = f"check {path}{' verified' if v else ''}"
                r[key] = sw_measure(key, swt, path == "direct", "--path", path, "--check", *v, repeat=1)
        # A tensor-parallel rank's slices, by rows and by columns.
        for layout in ("rows", "columns"):
            key = f"check tp rank 1 of 8 {layout}"
            r[key] = sw_measure(key, swt, False, "--tp-rank", "1", "--tp-world", "8", "--tp-layout", layout, "--check", repeat=1)
        if HAVE_TORCH:
            dt, t = st_load(st)
            r["safetensors_gpu_bytes_ok"] = st_gpu_bytes_ok(t, st, base, info)
            del t
            torch.cuda.empty_cache()
            if not r["safetensors_gpu_bytes_ok"]:
                fail("smoke: safetensors' GPU copy differs from the file")
    finally:
        os.remove(swt)
        os.remove(st)
    return r


def measure(gib):
    size = gib * TENSORS_PER_GIB * TENSOR_BYTES
    r = {"stage": "measure", "tensors": gib * TENSORS_PER_GIB}
    swt, st, info, base = write_stage(gib, r)
    try:
        r["files_identical"] = files_identical(swt, st, info, base, full=False)
        if not r["files_identical"]:
            fail(f"{gib} GiB: the .safetensors twin differs from the .swt")
        for direct in (True, False):
            key = "disk_parallel_direct_GBps" if direct else "disk_parallel_buffered_GBps"
            try:
                evict(swt)
                expect(swt, True, key)
                r[key] = parallel_read(swt, direct, args.threads)
            except Exception as e:  # noqa
                r[key + "_error"] = repr(e)
                if not direct:
                    fail(f"{key}: {e}")
        r["disk_parallel_GBps"] = max(r.get("disk_parallel_direct_GBps", 0), r.get("disk_parallel_buffered_GBps", 0))
        if HAVE_TORCH:
            r["st_cold"] = st_measure("safetensors cold", st, size, True)
            r["st_warm"] = st_measure("safetensors warm", st, size, False)
        r["sw_warm"] = sw_measure("warm", swt, False)
        r["sw_warm_verified"] = sw_measure("warm verified", swt, False, "--verify")
        r["sw_cold"] = sw_measure("cold", swt, True)
        r["sw_cold_verified"] = sw_measure("cold verified", swt, True, "--verify")
        r["sw_warm_tp"] = sw_measure("warm tp rank 1 of 8", swt, False, "--tp-rank", "1", "--tp-world", "8")
    finally:
        os.remove(swt)
        os.remove(st)
    return r


def table(res):
    rows = []
    for gib, r in res["sizes"].items():
        if r.get("stage") != "measure":
            continue

        def g(k):
            return r.get(k, {}).get("GBps")

        def ratio(a, b):
            return f"{a / b:.2f}x" if a and b else "-"

        stw, stc, disk = g("st_warm"), g("st_cold"), r.get("disk_parallel_GBps")
        rows += [
            (gib, "safetensors load_file warm", stw, "1.00x" if stw else "-", ""),
            (gib, "safetensors load_file cold", stc, "1.00x" if stc else "-", ""),
            (gib, "safeweights warm", g("sw_warm"), ratio(g("sw_warm"), stw), r.get("sw_warm", {}).get("path", "")),
            (gib, "safeweights warm verified", g("sw_warm_verified"), ratio(g("sw_warm_verified"), stw), ""),
            (gib, "safeweights cold", g("sw_cold"), ratio(g("sw_cold"), stc), f"{ratio(g('sw_cold'), disk)} of disk; {r.get('sw_cold', {}).get('path', '')}"),
            (gib, "safeweights cold verified", g("sw_cold_verified"), ratio(g("sw_cold_verified"), stc), f"{ratio(g('sw_cold_verified'), disk)} of disk"),
            (gib, "safeweights warm, tp rank 1 of 8 (rows)", g("sw_warm_tp"), "", "an eighth of the bytes, always verified"),
            (gib, "disk parallel read (ceiling)", disk, "", f"direct {r.get('disk_parallel_direct_GBps')}, buffered {r.get('disk_parallel_buffered_GBps')}"),
            (gib, "pinned HtoD (ceiling)", res.get("h2d_pinned_GBps"), "", ""),
        ]
    lines = [f"GPU: {res['gpu']}   date: {res['date']}   driver/PCIe: {res.get('driver', '?')}" + ("   DRY RUN (fake driver, tiny tensors)" if DRYRUN else "")]
    if rows:
        w = max(len(x[1]) for x in rows)
        lines.append(f"{'size':>6}  {'measurement':<{w}}  {'GB/s':>7}  {'ratio':>7}  note")
        for gib, name, v, ratio_s, note in rows:
            vs = f"{v:7.2f}" if isinstance(v, (int, float)) else f"{'-':>7}"
            lines.append(f"{gib:>4}Gi  {name:<{w}}  {vs}  {ratio_s:>7}  {note}")
    for gib, r in res["sizes"].items():
        if r.get("stage") == "smoke":
            bad = [k for k, v in r.items() if isinstance(v, dict) and (v.get("error") or not v.get("checked"))]
            lines.append(f"smoke {gib}GiB: files identical {r.get('files_identical')}, safetensors GPU bytes ok {r.get('safetensors_gpu_bytes_ok')}, "
                         f"loader --check on every path: {'ok' if not bad else 'FAILED ' + ', '.join(bad)}")
    for s in res["skipped"]:
        lines.append(f"skipped: {s}")
    lines.append(f"failures: {len(failures)}" + "".join(f"\n  {f}" for f in failures))
    lines.append(f"elapsed {time.monotonic() - T0:.0f} s of a {args.budget:.0f} s budget")
    return "\n".join(lines)


def save():
    res["failures"] = failures
    res["table"] = table(res)
    with open(os.path.join(out_dir, "gpu_bench.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(out_dir, "gpu_bench.txt"), "w") as f:
        f.write(res["table"] + "\n")


sizes = [int(s) for s in args.sizes.split(",") if s]
if HAVE_TORCH:
    log("ceiling: pinned host-to-device")
    try:
        h2d_ceiling()
    except Exception as e:  # noqa
        fail(f"h2d ceiling: {e!r}")
per_gib = None  # seconds per GiB of a measured stage
for k, gib in enumerate(sizes):
    size = gib * TENSORS_PER_GIB * TENSOR_BYTES
    free = shutil.disk_usage(args.dir).free
    left = args.budget - (time.monotonic() - T0)
    need = 1.3 * per_gib * gib if per_gib else 0
    if free < 2 * size + GiB:
        res["skipped"].append(f"{gib} GiB: {free / GiB:.1f} GiB free on {args.dir}, need {(2 * size + GiB) / GiB:.1f}")
        log("skip:", res["skipped"][-1])
        continue
    if need > left:
        res["skipped"].append(f"{gib} GiB: about {need:.0f} s needed, {left:.0f} s left of the budget")
        log("skip:", res["skipped"][-1])
        continue
    log(f"stage {gib} GiB ({'smoke' if k == 0 else 'measure'})")
    a = time.monotonic()
    try:
        res["sizes"][f"{gib}"] = smoke(gib) if k == 0 else measure(gib)
    except Exception as e:  # noqa
        fail(f"stage {gib} GiB: {e!r}")
        res["sizes"][f"{gib}"] = {"error": repr(e)}
    if k > 0:
        per_gib = (time.monotonic() - a) / gib
    save()

save()
print(res["table"])
sys.exit(1 if failures else 0)

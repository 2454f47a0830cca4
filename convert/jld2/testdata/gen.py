#!/usr/bin/python3
"""Generate the HDF5 test files of convert/jld2.

Run from this directory with Debian's python3-h5py and the zstd command:

    /usr/bin/python3 gen.py

Every file has a 512-byte user block like JLD2's. The chunked files use
libver="latest" (layout version 4 chunk indices) or v108 (version 1 B-tree).
h5py has no zstd filter, so zstd chunks are compressed with the zstd
command and written with write_direct_chunk under filter id 32015, which
is how JLD2.jl's codec packages store them. The expected tensors are
written to expect.json: name, dtype, shape, sha256.
"""
import hashlib
import json
import os
import subprocess
import zlib

import h5py
import numpy as np

HEADER = b"HDF5-based Julia Data Format, version 0.2.0\x00 (Julia 1.10.4 64-bit LE)\x00"
expect = {}
rng = np.random.default_rng(7)


def finish(path):
    with open(path, "r+b") as f:
        f.write(HEADER)


def record(path, name, dtype, arr):
    b = np.ascontiguousarray(arr).tobytes()
    expect.setdefault(path, []).append(
        {"name": name, "dtype": dtype, "shape": list(arr.shape), "sha256": hashlib.sha256(b).hexdigest()}
    )


def new(path, libver="latest"):
    return h5py.File(path, "w", userblock_size=512, libver=libver)


def zstd(b):
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=b, capture_output=True, check=True).stdout


# Chunked + deflate: fixed array index (several chunks, edge chunks),
# filtered single chunk, shuffle + deflate, implicit index.
p = "chunked-deflate.h5"
with new(p) as f:
    w = rng.standard_normal((40, 30)).astype("<f4")
    f.create_dataset("weight", data=w, chunks=(16, 16), compression="gzip")
    b = rng.standard_normal(30).astype("<f4")
    f.create_dataset("bias", data=b, chunks=(30,), compression="gzip")
    s = rng.standard_normal((5, 7, 3)).astype("<f8")
    f.create_dataset("shuffled", data=s, chunks=(2, 3, 3), shuffle=True, compression="gzip")
    u = np.arange(6 * 10, dtype="<i4").reshape(6, 10)
    f.create_dataset("plain", data=u, chunks=(3, 5))
    big = rng.standard_normal((2100, 4)).astype("<f4")
    f.create_dataset("paged", data=big, chunks=(2, 4), compression="gzip")
finish(p)
record(p, "weight", "F32", w)
record(p, "bias", "F32", b)
record(p, "shuffled", "F64", s)
record(p, "plain", "I32", u)
record(p, "paged", "F32", big)

# Chunked, version 1 B-tree chunk index (layout version 3).
p = "chunked-btree1.h5"
with new(p, libver=("v108", "v108")) as f:
    w = rng.standard_normal((33, 20)).astype("<f4")
    f.create_dataset("weight", data=w, chunks=(8, 8), compression="gzip")
finish(p)
record(p, "weight", "F32", w)


def zstd_dataset(f, name, arr, chunks):
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(chunks)
    dcpl.set_filter(32015, h5py.h5z.FLAG_OPTIONAL, (3,))
    space = h5py.h5s.create_simple(arr.shape)
    tid = h5py.h5t.py_create(arr.dtype)
    h5py.h5d.create(f.id, name.encode(), tid, space, dcpl=dcpl)
    d = f[name]
    grid = [-(-n // c) for n in zip(arr.shape, chunks) for n, c in [n]]
    for idx in np.ndindex(*grid):
        off = tuple(i * c for i, c in zip(idx, chunks))
        block = np.zeros(chunks, dtype=arr.dtype)
        sl = tuple(slice(o, o + c) for o, c in zip(off, chunks))
        part = arr[sl]
        block[tuple(slice(0, n) for n in part.shape)] = part
        d.id.write_direct_chunk(off, zstd(block.tobytes()), filter_mask=0)


# Chunked + zstd (filter 32015).
p = "chunked-zstd.h5"
with new(p) as f:
    w = rng.standard_normal((20, 12)).astype("<f4")
    zstd_dataset(f, "weight", w, (8, 12))
    b = rng.standard_normal(12).astype("<f2")
    zstd_dataset(f, "bias", b, (12,))
finish(p)
record(p, "weight", "F32", w)
record(p, "bias", "F16", b)

# Extensible array chunk index (one unlimited dimension): chunks in the
# index block only, in data blocks, and past the index block's own data
# blocks (secondary blocks); filtered (deflate) and not; the unlimited
# dimension first and last.
p = "chunked-extensible.h5"
with new(p) as f:
    small = rng.standard_normal((16, 3)).astype("<f4")
    f.create_dataset("small", data=small, chunks=(4, 3), maxshape=(None, 3))
    mid = rng.standard_normal((37, 6)).astype("<f4")
    f.create_dataset("mid", data=mid, chunks=(2, 4), maxshape=(None, 6), compression="gzip")
    many = np.arange(300, dtype="<i4")
    f.create_dataset("many", data=many, chunks=(1,), maxshape=(None,))
    last = rng.standard_normal((5, 9)).astype("<f8")
    f.create_dataset("lastdim", data=last, chunks=(2, 2), maxshape=(5, None), compression="gzip")
finish(p)
record(p, "small", "F32", small)
record(p, "mid", "F32", mid)
record(p, "many", "I32", many)
record(p, "lastdim", "F64", last)

# Version 2 B-tree chunk index (two or more unlimited dimensions): a root
# with leaves, filtered (deflate) and not, and a tree two levels deep.
p = "chunked-btree2.h5"
with new(p) as f:
    w = rng.standard_normal((37, 22)).astype("<f4")
    f.create_dataset("weight", data=w, chunks=(4, 4), maxshape=(None, None), compression="gzip")
    g = np.arange(20 * 20, dtype="<i4").reshape(20, 20)
    f.create_dataset("deep", data=g, chunks=(1, 1), maxshape=(None, None))
    t = rng.standard_normal((3, 4, 5)).astype("<f4")
    f.create_dataset("three", data=t, chunks=(2, 2, 2), maxshape=(None, 4, None))
    # 5625 one-byte chunks: more than a root and leaves of 2 KiB nodes
    # hold, so the tree is two levels deep.
    u = (np.arange(75 * 75) % 251).astype("u1").reshape(75, 75)
    f.create_dataset("deeper", data=u, chunks=(1, 1), maxshape=(None, None))
finish(p)
record(p, "weight", "F32", w)
record(p, "deep", "I32", g)
record(p, "three", "F32", t)
record(p, "deeper", "U8", u)

# Float16 and Bool (a bitfield, as JLD2 writes Bool) arrays.
p = "float16-bool.h5"
with new(p) as f:
    h = rng.standard_normal((3, 5)).astype("<f2")
    f.create_dataset("half", data=h)
    bits = (rng.standard_normal(17) > 0).astype("u1")
    sid = h5py.h5s.create_simple(bits.shape)
    ds = h5py.h5d.create(f.id, b"mask", h5py.h5t.STD_B8LE, sid)
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, bits, mtype=h5py.h5t.STD_B8LE)
finish(p)
record(p, "half", "F16", h)
record(p, "mask", "BOOL", bits)

# Hostile and refused files.
p = "external-link.h5"
with new(p) as f:
    f["ext"] = h5py.ExternalLink("other.h5", "/weights")
finish(p)

p = "external-storage.h5"
with new(p) as f:
    f.create_dataset("w", shape=(4,), dtype="<f4", external=[("other.bin", 0, 16)])
finish(p)

p = "virtual-dataset.h5"
with new(p) as f:
    layout = h5py.VirtualLayout(shape=(4,), dtype="<f4")
    layout[:] = h5py.VirtualSource("other.h5", "w", shape=(4,))
    f.create_virtual_dataset("v", layout)
finish(p)

p = "decompression-bomb.h5"
with new(p) as f:
    d = f.create_dataset("w", shape=(16,), dtype="<f4", chunks=(16,), compression="gzip")
    d.id.write_direct_chunk((0,), zlib.compress(b"\0" * (4 << 20)), filter_mask=0)
finish(p)

p = "unsupported-filter.h5"
with new(p) as f:
    d = f.create_dataset("w", shape=(16,), dtype="<f4", chunks=(16,), fletcher32=True)
    d[:] = np.arange(16, dtype="<f4")
finish(p)


with open("expect.json", "w") as f:
    json.dump(expect, f, indent=1, sort_keys=True)
    f.write("\n")

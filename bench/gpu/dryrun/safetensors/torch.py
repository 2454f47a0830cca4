"""load_file of the safetensors stand-in: reads the header and the tensor
bytes into stand-in torch tensors, checking the offsets as the real one does."""
import json
import struct

import torch


def load_file(path, device="cpu"):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > len(data) - 8:
        raise ValueError("header too large")
    header = json.loads(data[8 : 8 + n])
    base, out = 8 + n, {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        if not 0 <= lo <= hi <= len(data) - base:
            raise ValueError(f"{name}: offsets out of range")
        dt = torch._BY_NAME[t["dtype"]]
        out[name] = torch.Tensor(bytearray(data[base + lo : base + hi]), dt, t["shape"], str(device))
    return out

"""A stand-in for the few parts of PyTorch that bench/gpu/bench_gpu.py uses,
on the CPU, for its dry run (DRYRUN=1, bench/gpu/dryrun.sh): tensors are
byte buffers and "cuda" is host memory. Not PyTorch; never on a real run."""

__version__ = "0.0-dryrun-stand-in"


class dtype:
    def __init__(self, name, size):
        self.name, self.itemsize = name, size

    def __repr__(self):
        return "torch." + self.name


uint8 = dtype("uint8", 1)
float16 = dtype("float16", 2)
_BY_NAME = {"U8": uint8, "F16": float16}


class Tensor:
    def __init__(self, buf, dt, shape, device="cpu"):
        self.buf, self.dtype, self.shape, self.device = buf, dt, tuple(shape), device

    def numel(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    def copy_(self, src, non_blocking=False):
        if len(src.buf) != len(self.buf):
            raise RuntimeError("copy_: size mismatch")
        self.buf[:] = src.buf
        return self

    def to(self, device):
        return Tensor(bytearray(self.buf), self.dtype, self.shape, str(device))

    def cuda(self):
        return self.to("cuda:0")

    def cpu(self):
        return self.to("cpu")

    def view(self, dt):
        return Tensor(self.buf, dt, (len(self.buf) // dt.itemsize,), self.device)

    def reshape(self, *shape):
        if shape in ((-1,), ()):
            shape = (len(self.buf) // self.dtype.itemsize,)
        return Tensor(self.buf, self.dtype, shape, self.device)


def empty(n, dtype=uint8, device="cpu", pin_memory=False):
    return Tensor(bytearray(n * dtype.itemsize), dtype, (n,), device)


def frombuffer(b, dtype=uint8):
    return Tensor(bytearray(b), dtype, (len(b) // dtype.itemsize,))


def equal(a, b):
    return a.buf == b.buf


class cuda:
    @staticmethod
    def is_available():
        return True

    @staticmethod
    def get_device_name(i=0):
        return "stand-in torch (dry run)"

    @staticmethod
    def synchronize():
        pass

    @staticmethod
    def empty_cache():
        pass

"""Fashion-MNIST from the IDX files that Debian's ``dataset-fashion-mnist`` package ships.

No downloads: the files are read with gzip + numpy from ``/usr/share/datasets/fashion-mnist``
(or ``data_dir``). IDX format: big-endian magic (0x00000803 images, 0x00000801 labels), the
dimension sizes as uint32, then uint8 data (header 16 bytes for images, 8 for labels).
"""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_DIR", "INSTALL_COMMAND", "load_fashion_mnist", "read_idx", "find_files"]

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL_COMMAND = "sudo apt-get install dataset-fashion-mnist"
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}
_MAGIC = {2051: 3, 2049: 1}  # magic -> number of dimensions
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")


def _open(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"cannot read IDX file {path}: {exc}") from None


def read_idx(path: str | os.PathLike, expect_magic: int) -> np.ndarray:
    """Read one IDX file (optionally gzipped), validating magic number, dimensions and size."""
    path = Path(path)
    raw = _open(path)
    if len(raw) < 8:
        raise ValueError(f"{path} is not an IDX file (only {len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expect_magic:
        raise ValueError(f"{path}: bad IDX magic number {magic:#010x}, expected {expect_magic:#010x}")
    ndim = _MAGIC[magic]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise ValueError(f"{path}: truncated or padded IDX file: {len(raw)} bytes, header "
                         f"says {dims} -> {expected} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def find_files(split: str, data_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Paths of the (images, labels) files of a split, gzipped or not."""
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(data_dir) if data_dir is not None else DEFAULT_DIR
    out = []
    for stem in _FILES[split][:2]:
        for name in (stem + ".gz", stem):
            if (root / name).is_file():
                out.append(root / name)
                break
        else:
            hint = ("learnact reads Fashion-MNIST from the Debian/Ubuntu package "
                    f"dataset-fashion-mnist: {INSTALL_COMMAND}; elsewhere, put the four IDX "
                    "files of github.com/zalandoresearch/fashion-mnist (gzipped or not) in a "
                    "folder and pass --data-dir FOLDER" if data_dir is None
                    else "pass --data-dir pointing at the Fashion-MNIST IDX files (the four "
                    "of github.com/zalandoresearch/fashion-mnist, gzipped or not)")
            raise FileNotFoundError(f"Fashion-MNIST file {stem}(.gz) not found in {root}; {hint}")
    return out[0], out[1]


def load_fashion_mnist(split: str = "train", data_dir: str | os.PathLike | None = None,
                       limit: int | None = None) -> tuple[Tensor, Tensor]:
    """(images float32 (N, 1, 28, 28) in [0, 1], labels int64 (N,)) of a split."""
    img_path, lab_path = find_files(split, data_dir)
    images = read_idx(img_path, 2051)
    labels = read_idx(lab_path, 2049)
    n_expect = _FILES[split][2]
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{img_path}: images are {images.shape[1:]}, expected (28, 28)")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{split}: {images.shape[0]} images but {labels.shape[0]} labels")
    if images.shape[0] != n_expect:
        log.warning("%s split has %d images (the standard split has %d)", split, images.shape[0],
                    n_expect)
    if labels.max(initial=0) > 9:
        raise ValueError(f"{lab_path}: label {int(labels.max())} out of range 0..9")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y

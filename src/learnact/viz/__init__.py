"""matplotlib figures: loss curves, shapes, sampling histograms, atlas, decision boundaries.

The core library never imports this package (matplotlib is the ``[plots]`` extra).
"""

from .curves import plot_loss_curves, plot_sweep
from .recorder import Recorder

__all__ = ["plot_loss_curves", "plot_sweep", "Recorder"]

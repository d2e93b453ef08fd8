"""Experiments: autoencoder (main job), toy2d; one runner, DDP-ready. Needs the [exp] extra."""

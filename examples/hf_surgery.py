"""Model surgery on a Hugging Face transformer: replace every GELU by a fitted, calibrated
learnable activation, check the outputs survive, fine-tune a step, save and reload.

    pip install 'learnact[hf]'
    python examples/hf_surgery.py                        # a small random-weight BERT (no download)
    python examples/hf_surgery.py --model DIR            # any local BERT-like checkpoint folder

With ``--model`` the folder must hold a pretrained model and its tokenizer files (nothing is
downloaded). The surgery is recorded in the model's config, so ``save_pretrained`` +
``from_pretrained`` (after ``register_transformers()``) bring the learned activations back.
"""

from __future__ import annotations

import argparse
import tempfile

import torch

import learnact
from learnact.integrations import register_transformers


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="local pretrained model folder (default: a random BERT)")
    ap.add_argument("--spec", default="hermite:degree=8", help="activation spec to install")
    args = ap.parse_args(argv)
    import transformers

    register_transformers()  # lets from_pretrained rebuild recorded learnact activations
    torch.manual_seed(0)
    if args.model:
        model = transformers.AutoModel.from_pretrained(args.model, local_files_only=True)
    else:
        config = transformers.BertConfig(vocab_size=200, hidden_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, intermediate_size=128)
        model = transformers.BertModel(config)
    model.eval()
    vocab = model.config.vocab_size
    calibration = [{"input_ids": torch.randint(0, vocab, (4, 16))} for _ in range(4)]
    held_out = {"input_ids": torch.randint(0, vocab, (4, 16))}
    with torch.no_grad():
        before = model(**held_out).last_hidden_state

    report = learnact.replace_activations(model, args.spec, calibrate=calibration)
    print(report)  # each replaced module: old type, new spec, observed input range, fit errors
    with torch.no_grad():
        after = model(**held_out).last_hidden_state
    cosine = torch.nn.functional.cosine_similarity(before, after, dim=-1)
    print(f"token outputs after surgery: min cosine to the original {cosine.min().item():.6f}")
    assert cosine.min() > 0.999

    # one fine-tuning step: the activation parameters train with everything else
    model.train()
    opt = torch.optim.AdamW(learnact.param_groups(model, lr=1e-3), lr=1e-4)
    loss = model(**held_out).last_hidden_state.pow(2).mean()
    loss.backward()
    opt.step()
    model.eval()

    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        reloaded = transformers.AutoModel.from_pretrained(folder)
        reloaded.eval()
        with torch.no_grad():
            a, b = model(**held_out).last_hidden_state, reloaded(**held_out).last_hidden_state
        print(f"save_pretrained -> from_pretrained: max |difference| {(a - b).abs().max().item():.2e}")
        assert torch.allclose(a, b, atol=1e-5)
    learnact.restore(model, report)  # undo: the original GELUs are back
    print("hf_surgery ok")


if __name__ == "__main__":
    main()

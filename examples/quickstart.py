"""Quickstart for pip users (`pip install 'learnact[torch]'`): a learnable activation in a
model, its exact Gaussian moments, a fit to GELU, one training step, and the frozen inference
form. CI runs this against the built wheel in a fresh venv (`make test-wheel`)."""

import torch

import learnact

act = learnact.create("hermite:degree=8")            # unit-variance init from exact moments
print(act, learnact.moments(act))                     # E[f^2] = 1 under N(0, 1), and V'(1)
print(learnact.fit(act, "gelu"))                      # closed-form fit: max error ~0.03
model = torch.nn.Sequential(torch.nn.Linear(16, 64), act, torch.nn.Linear(64, 1))
opt = torch.optim.AdamW(learnact.param_groups(model, lr=1e-3))
x, y = torch.randn(256, 16), torch.randn(256, 1)
loss = torch.nn.functional.mse_loss(model(x), y)
loss.backward()
opt.step()
frozen = learnact.freeze(model)                       # standard ops, constant buffers
assert torch.allclose(frozen(x), model(x), atol=1e-5)
for name in learnact.available():                     # every registry name works with [torch]
    learnact.create(name)
print("quickstart ok: loss", round(loss.item(), 4))

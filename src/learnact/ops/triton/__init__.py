"""Triton kernels of the family ops, one file per family (the GPU side of ops/<family>.py).

Each module gives ``forward(x, *params, channel_dim)`` and ``backward(x, *params, grad,
channel_dim) -> (dL/dx, dL/dp...)`` with the reference's signatures (ops/_library.py registers
them as the ``cuda`` kernel). They read x and the upstream gradient once in their own dtype,
do fp32 math, write y or dL/dx once in x's dtype, and reduce the parameter gradients inside
the kernel (per-program partial sums in fp32, then one small sum). With ``TRITON_INTERPRET=1``
set before they load, the same kernels run on CPU tensors (``learnact.ops.backend("triton")``):
that is how CI checks them against the float64 reference. Importing this package needs triton.
"""

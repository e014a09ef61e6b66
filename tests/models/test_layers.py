"""The shared layers' CPU dropout (:func:`lewm_bench.models.layers.dropout`)."""

import pytest
import torch

from lewm_bench.models import layers
from lewm_bench.models.layers import Attention, Dropout, Mlp, dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_dropout_drops_at_its_rate_and_scales_the_rest_unbiased(p, dtype):
    """Zeroed fraction within 6 binomial standard deviations of p; every kept element scaled by the inverse of the
    keep probability of p rounded to 2^-16, so the mean is preserved; the input's dtype and shape are kept."""
    torch.manual_seed(0)
    n = 1 << 20
    x = torch.ones(64, n // 64, dtype=dtype)
    y = dropout(x, p)
    assert y.dtype == dtype and y.shape == x.shape
    dropped = (y == 0).double().mean().item()
    assert abs(dropped - p) < 6 * (p * (1 - p) / n) ** 0.5
    levels = 1 << layers.DROPOUT_BITS
    scale = torch.tensor(levels / (levels - round(p * levels)), dtype=dtype)
    assert torch.equal(y[y != 0], scale.expand(int((y != 0).sum())))
    assert abs(y.double().mean().item() - 1) < 6 * (p / (1 - p) / n) ** 0.5 + 1e-2 * (dtype == torch.bfloat16)


def test_cpu_dropout_draws_from_torch_generator_and_backpropagates_through_its_mask():
    """Seeding torch's generator repeats the mask, another seed draws another; fields of every 16-bit position of
    the 64-bit words are used (no element is always kept); the gradient is the mask times the scale."""
    x = torch.randn(1001, requires_grad=True)  # not a multiple of 4: the last word is partly used
    torch.manual_seed(3)
    a = dropout(x, 0.3)
    torch.manual_seed(3)
    b = dropout(x, 0.3)
    torch.manual_seed(4)
    c = dropout(x, 0.3)
    assert torch.equal(a, b) and not torch.equal(a, c)
    zeros = (torch.stack([dropout(torch.ones(1000), 0.5) for _ in range(200)]) == 0).float().mean(0)
    assert zeros.min() > 0.3 and zeros.max() < 0.7  # each position (word field) dropped about half the time
    grad = torch.randn(1001)
    a.backward(grad)
    levels = 1 << layers.DROPOUT_BITS
    torch.testing.assert_close(x.grad, grad * (a != 0) * (levels / (levels - round(0.3 * levels))), rtol=1e-6, atol=0)


def test_dropout_is_the_identity_outside_training_or_at_zero_and_f_dropout_elsewhere():
    x = torch.randn(10, 10)
    assert dropout(x, 0.5, training=False) is x and dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))  # p = 1: PyTorch's own
    module = Dropout(0.5).eval()
    assert module(x) is x
    assert all(isinstance(m, Dropout) for m in Mlp(8, 16, 0.1) if isinstance(m, torch.nn.Dropout))


@pytest.mark.parametrize("keys", [3, 12])
def test_attention_dropout_on_cpu_drops_the_weights_with_the_fast_masks(keys):
    """In training on the CPU the attention weights (few keys or many, causal) and then the output projection are
    dropped by :func:`dropout`, in that order: rebuilt by hand from the same seed, the output is the same."""
    torch.manual_seed(0)
    attn = Attention(16, 2, 8, dropout=0.3).train()
    x = torch.randn(4, keys, 16)
    torch.manual_seed(1)
    out = attn(x, causal=True)
    q, k, v = attn.qkv(x).view(4, keys, 3, 2, 8).permute(2, 0, 3, 1, 4)
    scores = (q * 8 ** -0.5) @ k.transpose(-2, -1)
    weights = scores.masked_fill(~torch.ones(keys, keys, dtype=torch.bool).tril(), float("-inf")).softmax(-1)
    torch.manual_seed(1)
    weights = dropout(weights, 0.3)
    expected = dropout(attn.proj((weights @ v).transpose(1, 2).reshape(4, keys, 16)), 0.3)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out, attn.eval()(x, causal=True))


def test_a_single_tokens_projection_is_one_matrix_product_under_compile():
    """A single token without a past attends to itself only: its output is its value, a strided half of the
    key/value product. Under torch.compile (with the planner's bf16 autocast, where the strided rows traced to a
    batched product) the projection reads it contiguous, so the traced graph holds a matrix product and no batched
    one (which inductor lowers as a reduction loop on the CPU); the outputs are the eager ones up to bf16 rounding."""
    from torch._dynamo.backends.common import aot_autograd

    ops: list[str] = []

    def record(gm, example_inputs):
        ops.extend(str(node.target) for node in gm.graph.nodes if node.op == "call_function")
        return gm

    torch.manual_seed(0)
    attn = Attention(16, 2, 8, qkv_bias=False).eval()
    x = torch.randn(5, 1, 16)
    torch._dynamo.reset()
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        out, (k, v) = torch.compile(attn, backend=aot_autograd(fw_compiler=record))(x, causal=True, keep=True)
        eager, (k_eager, v_eager) = attn(x, causal=True, keep=True)
    torch._dynamo.reset()
    assert {"aten.mm.default", "aten.addmm.default"} & set(ops) and "aten.bmm.default" not in ops, ops
    torch.testing.assert_close(out, eager, rtol=1e-2, atol=1e-2)  # bf16: the products round differently
    assert torch.equal(k, k_eager) and torch.equal(v, v_eager)

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lewm_bench.models.layers import Projector
from lewm_bench.models.sigreg import _CharacteristicSums, knots_and_weights, random_directions, sigreg


def test_standard_normal_reference_value():
    g = torch.Generator().manual_seed(0)
    values = [sigreg(torch.randn(4, 128, 64, generator=g), generator=g).item() for _ in range(10)]
    assert sum(values) / len(values) == pytest.approx(1.05, abs=0.08)


@pytest.mark.parametrize("n", [64, 128])
def test_constant_embeddings_grow_with_the_batch(n):
    value = sigreg(torch.zeros(2, n, 64)).item()
    assert value / n == pytest.approx(0.40, abs=0.01)


def test_characteristic_sums_and_their_gradient_are_those_of_cos_and_sin():
    """The sums' own backward (reusing the forward's cosines and sines) is the derivative autograd would give."""
    t = knots_and_weights()[0].double()
    p = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: _CharacteristicSums.apply(x, t), (p,))
    g_cos, g_sin = torch.randn(2, 3, 17, dtype=torch.float64), torch.randn(2, 3, 17, dtype=torch.float64)
    cos, sin = _CharacteristicSums.apply(p, t)
    (grad,) = torch.autograd.grad((cos * g_cos + sin * g_sin).sum(), p)
    arg = p.unsqueeze(-1) * t
    ref_cos, ref_sin = torch.cos(arg).sum(1), torch.sin(arg).sum(1)
    (ref,) = torch.autograd.grad((ref_cos * g_cos + ref_sin * g_sin).sum(), p)
    torch.testing.assert_close((cos, sin, grad), (ref_cos, ref_sin, ref))


def test_gradient_reaches_the_projector():
    proj = Projector(16, 32)
    z = proj(torch.randn(4, 64, 16) * 0.01).transpose(0, 1)  # (T, N, D)
    sigreg(z, num_directions=32, generator=torch.Generator().manual_seed(0)).backward()
    for p in proj.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_isotropic_gaussian_scores_lower_than_anisotropic():
    g = torch.Generator().manual_seed(1)
    iso = torch.randn(2, 256, 32, generator=g)
    aniso = iso * torch.linspace(0.1, 3.0, 32)
    assert sigreg(aniso, generator=torch.Generator().manual_seed(2)) > 5 * sigreg(iso, generator=torch.Generator()
                                                                                  .manual_seed(2))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, z_full: torch.Tensor, directions: torch.Tensor, out: dict) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        n = z_full.shape[1] // world
        z = z_full[:, rank * n:(rank + 1) * n].clone().requires_grad_(True)
        value = sigreg(z, directions=directions)
        value.backward()
        out[rank] = (value.item(), z.grad.clone())
    finally:
        dist.destroy_process_group()


def test_distributed_sigreg_equals_single_process_on_the_concatenated_batch():
    g = torch.Generator().manual_seed(0)
    z_full = torch.randn(3, 64, 16, generator=g) * torch.linspace(0.5, 2.0, 16)
    directions = random_directions(16, 128, generator=torch.Generator().manual_seed(1))
    single = z_full.clone().requires_grad_(True)
    value = sigreg(single, directions=directions)
    value.backward()
    world = 2
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_rank_main, args=(world, _free_port(), z_full, directions, out), nprocs=world, join=True)
        results = dict(out)
    n = z_full.shape[1] // world
    for rank in range(world):
        rank_value, rank_grad = results[rank]
        assert rank_value == pytest.approx(value.item(), rel=1e-5)
        # the differentiable all-reduce sums gradients over ranks (DDP then averages them back)
        torch.testing.assert_close(rank_grad / world, single.grad[:, rank * n:(rank + 1) * n], rtol=1e-4, atol=1e-6)

"""The fast path traces: torch.export with dynamic height and width, and torch.compile."""

import pytest
import torch
from torch.export import Dim

from pacup.ops import PacConv2d, PacConvTranspose2d, PacPool2d


class Chain(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = PacConv2d(2, 4, 5, padding=2, normalize_kernel=True, kernel_type="inv_0.1_0.5")
        self.up = PacConvTranspose2d(4, 4, 5, stride=2, padding=2, output_padding=1)
        self.pool = PacPool2d(3, padding=1)

    def forward(self, x, f, g):
        return self.pool(self.up(self.conv(x, f), g), g)


def inputs(h, w, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(1, 2, h, w, generator=gen), torch.randn(1, 3, h, w, generator=gen),
            torch.randn(1, 3, 2 * h, 2 * w, generator=gen))


def test_export_with_dynamic_height_and_width():
    net = Chain().eval()
    h, w = Dim("h", min=4, max=4096), Dim("w", min=4, max=4096)
    with torch.no_grad():
        ep = torch.export.export(net, inputs(16, 20), dynamic_shapes=({2: h, 3: w}, {2: h, 3: w}, {2: 2 * h, 3: 2 * w}))
        for size in [(16, 20), (23, 9), (40, 31)]:
            args = inputs(*size, seed=1)
            torch.testing.assert_close(ep.module()(*args), net(*args), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_compile_forward_and_backward():
    layer = PacConvTranspose2d(3, 2, 5, stride=2, padding=2, output_padding=1, normalize_kernel=True)
    x = torch.randn(2, 3, 8, 8)
    g = torch.randn(2, 4, 16, 16, requires_grad=True)
    eager = layer(x, g)
    (eager_grad,) = torch.autograd.grad(eager.square().sum(), g)
    compiled = torch.compile(layer)
    out = compiled(x, g)
    (grad,) = torch.autograd.grad(out.square().sum(), g)
    torch.testing.assert_close(out, eager, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad, eager_grad, atol=1e-4, rtol=1e-4)

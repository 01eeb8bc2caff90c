"""The fast default training path computes the same thing as the plain one.

Fast = what `fit` runs by default: channels_last model and input (Config.channels_last), the baseline's
classifier as batched GEMMs on channels_last input (`models.fast_cpu.pointwise_conv`), Adam on `param_groups`,
`build_criterion`. Plain = eager NCHW, Adam on `model.parameters()`, nn.CrossEntropyLoss: the
reference loop of the benchmarks. Same init, same batches: losses, logits, gradients and weights after 3 Adam
steps must agree within float tolerance. No timing is asserted anywhere.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from torch import nn

from starter_code.config import BASELINE
from starter_code.engine import build_criterion, param_groups
from starter_code.models import build_model
from starter_code.models.fast_cpu import pointwise_conv

CL = torch.channels_last


def _batches(n: int, size: int = 64, batch: int = 2, classes: int = 21) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        masks = torch.randint(0, classes, (batch, size, size), generator=g)
        masks[:, :3] = 255
        out.append((torch.randn(batch, 3, size, size, generator=g), masks))
    return out


def _close(a: torch.Tensor, b: torch.Tensor, rel: float) -> bool:
    """max |a - b| within `rel` of max |b| (a scale-aware tolerance for whole tensors)."""
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max()) <= rel * max(float(b.abs().max()), 1e-12)


def _run(model: nn.Module, channels_last: bool, batches, optimizer_groups: bool):
    cfg = replace(BASELINE, channels_last=channels_last)
    if channels_last:
        model = model.to(memory_format=CL)
    params = param_groups(model, cfg) if optimizer_groups else model.parameters()
    opt = torch.optim.Adam(params, lr=cfg.lr)
    plain_ce = nn.CrossEntropyLoss(ignore_index=255)
    crit = build_criterion(cfg, None, torch.device("cpu")) if optimizer_groups else plain_ce
    losses, logits, grads = [], [], []
    model.train()
    for images, masks in batches:
        x = images.contiguous(memory_format=CL) if channels_last else images
        out = model(x)
        loss = crit(out, masks)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        losses.append(loss.detach())
        logits.append(out.detach().contiguous())
        grads.append({k: p.grad.detach().contiguous().clone() for k, p in model.named_parameters()})
        opt.step()
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    return losses, logits, grads, weights


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative Frobenius error |a - b| / |b| (scale-aware for whole tensors)."""
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def _paths(dtype: torch.dtype, size: int, batch: int):
    torch.manual_seed(0)
    plain = build_model("baseline", num_classes=21).to(dtype)
    fast = copy.deepcopy(plain)
    init = {k: v.clone() for k, v in plain.state_dict().items()}
    batches = [(x.to(dtype), y) for x, y in _batches(3, size, batch)]
    return init, _run(plain, False, batches, optimizer_groups=False), _run(fast, True, batches, optimizer_groups=True)


def test_fast_path_is_the_same_math_in_float64():
    """In float64 rounding vanishes: the fast path (channels_last, param_groups, build_criterion) and the plain
    one agree to ~1e-10 on losses, logits, gradients and weights after 3 Adam steps."""
    assert BASELINE.channels_last, "the fast path is the default path: channels_last on by default"
    _, (lp, op, gp, wp), (lf, of, gf, wf) = _paths(torch.float64, 64, 2)
    for a, b in zip(lf, lp):
        assert float(a) == pytest.approx(float(b), rel=1e-9)
    for a, b in zip(of, op):
        assert _close(a, b, 1e-8)
    for step in range(3):
        for k in gp[step]:
            assert _close(gf[step][k], gp[step][k], 1e-7), (step, k)
    assert list(wf) == list(wp)
    for k in wp:
        assert _close(wf[k], wp[k], 1e-8), k


def test_fast_path_matches_plain_path_in_float32_over_three_adam_steps():
    """The real fp32 default path. channels_last BatchNorm on CPU accumulates its batch statistics less exactly
    than the NCHW kernel (~1e-5 relative per layer; docs/BENCHMARKS.md), so the bounds are float-rounding ones,
    well above that and far below any real difference."""
    init, (lp, op, gp, wp), (lf, of, gf, wf) = _paths(torch.float32, 128, 4)
    assert float(lf[0]) == pytest.approx(float(lp[0]), rel=1e-4)
    assert _close(of[0], op[0], 1e-3)
    for a, b in zip(lf[1:], lp[1:]):  # after Adam steps (see below)
        assert float(a) == pytest.approx(float(b), rel=1e-3)
    for k in gp[0]:  # first step: same weights, same batch
        assert _rel(gf[0][k], gp[0][k]) < 0.1, k
    # Adam's first steps move every weight by about lr * sign(gradient): a gradient element that is ~0 can take
    # either sign under rounding, so single weights may differ by up to 2 lr per step, never more.
    lr = BASELINE.lr
    for k in wp:
        if not wp[k].is_floating_point():
            assert torch.equal(wf[k], wp[k]), k
        elif "running_" in k:
            assert _rel(wf[k], wp[k]) < 1e-2, k
        else:
            assert float((wf[k] - wp[k]).abs().max()) <= 2 * 3 * lr * 1.5, k
    moved = [k for k in wp if wp[k].is_floating_point() and "running_" not in k]
    delta = lambda w: torch.cat([(w[k] - init[k]).flatten() for k in moved])  # noqa: E731
    assert _rel(delta(wf), delta(wp)) < 0.5  # most of what Adam changed agrees


def test_channels_last_model_keeps_its_state_dict_and_eval_outputs():
    torch.manual_seed(0)
    model = build_model("baseline", num_classes=21).eval()
    keys = list(model.state_dict())
    x = torch.randn(2, 3, 50, 70)  # not a multiple of 32: padded and cropped back
    with torch.no_grad():
        ref = model(x)
        cl = copy.deepcopy(model).to(memory_format=CL)
        out = cl(x.contiguous(memory_format=CL))
    assert list(cl.state_dict()) == keys
    assert out.shape == ref.shape == (2, 21, 50, 70)
    assert _close(out, ref, 1e-4)


@pytest.mark.parametrize("bias", [True, False])
def test_pointwise_conv_equals_the_conv_forward_and_backward(bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(32, 21, 1, bias=bias)
    x = torch.randn(3, 32, 9, 11)
    g = torch.randn(3, 21, 9, 11)
    params = (conv.weight, conv.bias) if bias else (conv.weight,)
    xr = x.clone().requires_grad_()
    ref = conv(xr)
    ref_grads = torch.autograd.grad(ref, (xr, *params), g)
    xc = x.contiguous(memory_format=CL).requires_grad_()
    out = pointwise_conv(xc, conv)
    grads = torch.autograd.grad(out, (xc, *params), g)
    assert out.is_contiguous()  # NCHW logits: the loss's fast layout
    assert grads[0].is_contiguous(memory_format=CL)  # the input gradient stays channels_last
    assert _close(out, ref, 1e-5)
    for a, b in zip(grads, ref_grads):
        assert _close(a, b, 1e-5)
    assert torch.equal(pointwise_conv(x, conv), conv(x))  # NCHW input: the conv itself
    with torch.no_grad():
        assert _close(pointwise_conv(xc, conv), ref, 1e-5)

"""SAM, ASAM and GCSAM: hand-computed steps, the perturbation, and a per-parameter reference."""

from __future__ import annotations

import copy
import io
import warnings

import pytest
import torch

from medbench.optim import GCSAM, SAM
from tests.optim.helpers import Quadratic, batches, loss_of, sam_step, small_cnn


def _quadratic_step(opt_cls, lr=0.1, base=torch.optim.SGD, **kwargs) -> Quadratic:
    model = Quadratic()
    opt = opt_cls(model.parameters(), base, lr=lr, **kwargs)
    model.loss().backward()
    opt.first_step(zero_grad=True)
    model.loss().backward()
    opt.second_step(zero_grad=True)
    return model


def _close(param: torch.Tensor, expected: list, atol: float = 1e-12) -> None:
    torch.testing.assert_close(
        param.detach(), torch.tensor(expected, dtype=torch.float64), rtol=0, atol=atol
    )


# The quadratic's gradient is the point itself: g = (W, b) = ([[1, 3], [1, 3]], [1, 2]),
# ||g|| = 5. Its centralized form is c = ([[-1, 1], [-1, 1]], [1, 2]), ||c|| = 3.


def test_sam_step_by_hand():
    # e = 0.5 * g / 5 = 0.1 g; gradient at w + e is 1.1 w; SGD: w - 0.1 * 1.1 w = 0.89 w.
    model = _quadratic_step(SAM, rho=0.5)
    _close(model.W, [[0.89, 2.67], [0.89, 2.67]])
    _close(model.b, [0.89, 1.78])


def test_gcsam_step_by_hand():
    # e = 0.5 * c / ||g|| = 0.1 c: W + e = [[0.9, 3.1], ...], b + e = [1.1, 2.2];
    # SGD: W - 0.1 * (W + e) = [[0.91, 2.69], ...], b - 0.1 * (b + e) = [0.89, 1.78].
    model = _quadratic_step(GCSAM, rho=0.5)
    _close(model.W, [[0.91, 2.69], [0.91, 2.69]])
    _close(model.b, [0.89, 1.78])


def test_gcsam_paper_norm_step_by_hand():
    # e = 0.5 * c / ||c|| = c / 6: W + e = [[5/6, 19/6], ...], b + e = [7/6, 14/6];
    # SGD: W - 0.1 * (W + e) = [[11/12, 161/60], ...], b - 0.1 * (b + e) = [53/60, 106/60].
    model = _quadratic_step(GCSAM, rho=0.5, gc_norm="centralized")
    _close(model.W, [[11 / 12, 161 / 60], [11 / 12, 161 / 60]])
    _close(model.b, [53 / 60, 106 / 60])


def test_gcsam_step_by_hand_with_adam_as_published():
    # Adam's first step moves each weight by lr * g / (|g| + eps), g taken at w + e (all > 0):
    # W + e = [[0.9, 3.1], ...], b + e = [1.1, 2.2], so every weight drops by 0.1.
    model = _quadratic_step(GCSAM, rho=0.5, base=torch.optim.Adam)
    _close(model.W, [[0.9, 2.9], [0.9, 2.9]], atol=1e-8)
    _close(model.b, [0.9, 1.9], atol=1e-8)


def _perturbation(opt_cls, **kwargs) -> tuple[dict, dict, object]:
    """(e(w), gradient at w, model) after first_step on the small CNN."""
    model = small_cnn()
    opt = opt_cls(model.parameters(), rho=0.05, **kwargs)
    loss_of(model, batches(1)[0]).backward()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    opt.first_step()
    e_w = {n: p.detach() - before[n] for n, p in model.named_parameters()}
    return e_w, grads, model


def _norm(tensors) -> float:
    return torch.linalg.vector_norm(torch.stack([t.norm() for t in tensors])).item()


def _centralize(g: torch.Tensor) -> torch.Tensor:
    return g - g.mean(dim=tuple(range(1, g.dim())), keepdim=True) if g.dim() > 1 else g


def test_sam_perturbation_has_norm_rho_along_the_gradient():
    e_w, grads, _ = _perturbation(SAM)
    assert _norm(e_w.values()) == pytest.approx(0.05, rel=1e-9)
    scale = 0.05 / _norm(grads.values())
    for name in e_w:
        torch.testing.assert_close(e_w[name], scale * grads[name], rtol=1e-6, atol=1e-12)


def test_asam_perturbation_has_norm_rho_relative_to_the_weights():
    e_w, _, model = _perturbation(SAM, adaptive=True)
    weights = dict(model.named_parameters())
    # e = rho * w^2 g / || |w| g ||, so e / |w| has norm rho wherever w is not 0.
    relative = []
    for name, e in e_w.items():
        w = (weights[name].detach() - e).abs()
        relative.append(torch.where(w > 0, e / w, torch.zeros_like(e)))
    assert _norm(relative) == pytest.approx(0.05, rel=1e-6)


@pytest.mark.parametrize("gc_norm", ["raw", "centralized"])
def test_gcsam_perturbation_follows_the_centralized_gradient(gc_norm):
    e_w, grads, _ = _perturbation(GCSAM, gc_norm=gc_norm)
    centred = {n: _centralize(g) for n, g in grads.items()}
    source = grads if gc_norm == "raw" else centred
    scale = 0.05 / _norm(source.values())
    for name, e in e_w.items():
        torch.testing.assert_close(e, scale * centred[name], rtol=1e-6, atol=1e-12)
        if e.dim() > 1:  # zero mean per output unit
            means = e.mean(dim=tuple(range(1, e.dim())))
            torch.testing.assert_close(means, torch.zeros_like(means), rtol=0, atol=1e-15)
        else:  # 1-D: the raw gradient, scaled
            torch.testing.assert_close(e, scale * grads[name], rtol=1e-6, atol=1e-12)


def test_gc_norm_variants_differ_by_the_ratio_of_norms():
    raw, grads, _ = _perturbation(GCSAM, gc_norm="raw")
    paper, _, _ = _perturbation(GCSAM, gc_norm="centralized")
    g_norm = _norm(grads.values())
    c_norm = _norm(_centralize(g) for g in grads.values())
    assert c_norm < g_norm
    assert _norm(paper.values()) == pytest.approx(0.05, rel=1e-9)  # the paper: exactly rho
    assert _norm(raw.values()) == pytest.approx(0.05 * c_norm / g_norm, rel=1e-9)
    for name in raw:
        torch.testing.assert_close(paper[name], raw[name] * g_norm / c_norm, rtol=1e-6, atol=1e-15)


def test_gc_conv_only_leaves_linear_layers_alone():
    e_w, grads, _ = _perturbation(GCSAM, gc_conv_only=True)
    scale = 0.05 / _norm(grads.values())
    head = e_w["head.weight"]  # 2-D: not centralized with gc_conv_only
    torch.testing.assert_close(head, scale * grads["head.weight"], rtol=1e-6, atol=1e-12)
    conv = e_w["features.0.weight"]
    torch.testing.assert_close(conv, scale * _centralize(grads["features.0.weight"]))


class ReferenceSAM:
    """A straightforward per-parameter SAM/GCSAM, written from the papers and published code."""

    def __init__(self, model, rho, adaptive=False, gc=False, gc_conv_only=False, gc_norm="raw"):
        self.params = list(model.parameters())
        self.base = torch.optim.Adam(self.params, lr=1e-3)
        self.rho, self.adaptive, self.gc = rho, adaptive, gc
        self.gc_conv_only, self.gc_norm = gc_conv_only, gc_norm

    def _ascent(self, g):
        if self.gc and g.dim() > (3 if self.gc_conv_only else 1):
            return g - g.mean(dim=tuple(range(1, g.dim())), keepdim=True)
        return g

    @torch.no_grad()
    def first_step(self, zero_grad=True):
        ascent = [self._ascent(p.grad) for p in self.params]
        normed = ascent if self.gc_norm == "centralized" else [p.grad for p in self.params]
        weight = [p.abs() if self.adaptive else 1.0 for p in self.params]
        norm = torch.sqrt(sum(((w * g) ** 2).sum() for w, g in zip(weight, normed, strict=True)))
        self.e_w = []
        for p, a in zip(self.params, ascent, strict=True):
            e = (p**2 if self.adaptive else 1.0) * a * self.rho / (norm + 1e-12)
            p.add_(e)
            self.e_w.append(e)
            p.grad = None

    @torch.no_grad()
    def second_step(self, zero_grad=True):
        for p, e in zip(self.params, self.e_w, strict=True):
            p.sub_(e)
        self.base.step()
        for p in self.params:
            p.grad = None


CASES = {
    "sam": (SAM, {}),
    "asam": (SAM, {"adaptive": True}),
    "gcsam": (GCSAM, {"gc": True}),
    "gcsam-paper-norm": (GCSAM, {"gc": True, "gc_norm": "centralized"}),
    "gcsam-conv-only": (GCSAM, {"gc": True, "gc_conv_only": True}),
    "gcasam": (GCSAM, {"gc": True, "adaptive": True}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_twenty_steps_match_a_per_parameter_reference(case):
    cls, options = CASES[case]
    ours_model, ref_model = small_cnn(), small_cnn()
    ours_opts = {k: v for k, v in options.items() if k != "gc"}
    ours = cls(ours_model.parameters(), torch.optim.Adam, rho=0.05, lr=1e-3, **ours_opts)
    ref = ReferenceSAM(ref_model, rho=0.05, **options)
    for batch in batches(20):
        sam_step(ours_model, ours, batch)
        sam_step(ref_model, ref, batch)
    for a, b in zip(ours_model.state_dict().values(), ref_model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


@pytest.mark.parametrize("cls", [SAM, GCSAM])
def test_closure_and_two_call_styles_agree(cls):
    model_a, model_b = small_cnn(), small_cnn()
    opt_a, opt_b = cls(model_a.parameters(), lr=1e-3), cls(model_b.parameters(), lr=1e-3)
    for batch in batches(3):
        sam_step(model_a, opt_a, batch)
        opt_b.zero_grad()
        loss_of(model_b, batch).backward()
        opt_b.step(lambda batch=batch: loss_of(model_b, batch).backward())
        opt_b.zero_grad()
    for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_step_without_closure_says_what_to_do():
    opt = SAM(small_cnn().parameters())
    with pytest.raises(ValueError, match="closure"):
        opt.step()


@pytest.mark.parametrize("cls", [SAM, GCSAM])
def test_checkpoint_mid_training_resumes_exactly(cls):
    data = batches(8)
    model = small_cnn()
    opt = cls(model.parameters(), lr=1e-3, rho=0.1)
    for batch in data[:4]:
        sam_step(model, opt, batch)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    for batch in data[4:]:
        sam_step(model, opt, batch)

    buffer.seek(0)
    saved = torch.load(buffer)
    assert any("exp_avg" in s for s in saved["opt"]["state"].values())  # Adam's moments
    resumed = small_cnn(seed=7)
    resumed_opt = cls(resumed.parameters(), lr=0.5, rho=0.9)
    resumed.load_state_dict(saved["model"])
    resumed_opt.load_state_dict(saved["opt"])
    assert resumed_opt.base_optimizer.param_groups is resumed_opt.param_groups
    assert resumed_opt.param_groups[0]["rho"] == 0.1
    for batch in data[4:]:
        sam_step(resumed, resumed_opt, batch)
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_lr_scheduler_drives_the_base_optimizer_without_warnings():
    model = small_cnn()
    opt = SAM(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for batch in batches(2):
            sam_step(model, opt, batch)
            sched.step()
    assert opt.base_optimizer.param_groups is opt.param_groups
    assert opt.base_optimizer.param_groups[0]["lr"] == pytest.approx(2.5e-4)


def test_added_param_group_gets_both_optimizers_defaults():
    model = small_cnn()
    opt = GCSAM(list(model.features.parameters()), lr=1e-3, rho=0.1)
    opt.add_param_group({"params": list(model.head.parameters()), "lr": 1e-2})
    added = opt.param_groups[1]
    assert added["lr"] == 1e-2 and added["rho"] == 0.1 and added["gc_norm"] == "raw"
    assert "betas" in added and len(opt.base_optimizer.param_groups) == 2
    sam_step(model, opt, batches(1)[0])


def test_first_step_twice_is_an_error():
    model = small_cnn()
    opt = SAM(model.parameters())
    loss_of(model, batches(1)[0]).backward()
    opt.first_step()
    with pytest.raises(RuntimeError, match="second_step"):
        opt.first_step()


def test_parameters_without_gradient_are_left_alone():
    model = small_cnn()
    frozen = copy.deepcopy(model.head.weight.detach())
    model.head.weight.requires_grad_(False)
    opt = SAM([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    sam_step(model, opt, batches(1)[0])
    assert torch.equal(model.head.weight, frozen)


def test_rejects_bad_settings():
    params = list(small_cnn().parameters())
    with pytest.raises(ValueError, match="rho"):
        SAM(params, rho=-0.1)
    with pytest.raises(ValueError, match="gc_norm"):
        GCSAM(params, gc_norm="paper")

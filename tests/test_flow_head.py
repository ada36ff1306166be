"""The flow-matching head (llm/flow_head.py) samples where a regression averages, and plugs into the
small reactor's training and streaming."""

from __future__ import annotations

import numpy as np
import torch

from molam_ros.llm.flow_head import FlowHead
from molam_ros.llm.small_reactor import SmallReactorConfig, SmallReactorNet


def _two_answers(n: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    """n steps, each all +1 or all -1 (a clip points left or right): the mean of the answers is 0."""
    sign = torch.randint(0, 2, (n, 1), generator=gen).float() * 2 - 1
    return sign.expand(n, dim) + 0.05 * torch.randn(n, dim, generator=gen)


def test_flow_head_commits_to_one_answer_where_the_mean_is_neither() -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    dim, cond = 8, 4
    head = FlowHead(dim, cond, width=64, blocks=2)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    h = torch.zeros(256, cond)
    first = None
    for _ in range(600):
        loss = head.loss(h, _two_answers(256, dim, gen))
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
    assert float(loss.detach()) < 0.5 * first
    samples = torch.stack([head.sample(h[:1], steps=16, generator=gen) for _ in range(40)])
    means = samples.mean(-1)
    # every sample is near one of the two answers (|mean| near 1), not the average (0) ...
    assert float(means.abs().min()) > 0.6, means
    # ... and both answers come out
    assert int((means > 0).sum()) >= 5 and int((means < 0).sum()) >= 5, means


def test_flow_head_guidance_combines_rows_and_temperature_zero_is_deterministic() -> None:
    head = FlowHead(6, 3, width=16, blocks=1)
    for layer in (head.out, head.blocks[0].mod[1]):  # as if trained: the state moves the velocity
        torch.nn.init.normal_(layer.weight, std=0.3)
    h = torch.randn(2, 3)
    a = head.sample(h, lambda v: v[0] + 2.0 * (v[0] - v[1]), temperature=0.0)
    b = head.sample(h, lambda v: v[0] + 2.0 * (v[0] - v[1]), temperature=0.0)
    assert torch.equal(a, b) and torch.isfinite(a).all()
    assert not torch.allclose(a, head.sample(h, temperature=0.0))  # guidance moved the step


def test_reactor_with_a_flow_head_trains_it_and_samples_its_steps() -> None:
    torch.manual_seed(0)
    c = SmallReactorConfig(
        codebook_size=16,
        depth=2,
        stride=2,
        feature_dim=5,
        width=32,
        layers=1,
        heads=2,
        context_steps=8,
        text_dim=0,
        flow=32,
    )
    net = SmallReactorNet(c)
    a = torch.randint(0, 16, (3, 6, 2))
    b_prev, b = torch.randn(3, 6, c.step_dim), torch.randn(3, 6, c.step_dim)
    net.train()
    loss = net.loss(a, b_prev, b)
    loss.backward()
    assert net.flow.out.weight.grad is not None and net.flow.out.weight.grad.abs().sum() > 0
    net.eval()
    assert torch.isclose(net.loss(a, b_prev, b), ((net(a, b_prev) - b) ** 2).mean())  # held out: the mean
    try:
        SmallReactorConfig(modes=2, flow=16)
    except ValueError as e:
        assert "not both" in str(e)
    else:
        raise AssertionError("flow with modes accepted")
    assert np.isfinite(net.flow.sample(net._state(a, b_prev, None)[:1, -1]).numpy()).all()
    # an untrained head (its output layer at zero) deviates from nothing at temperature 0: the
    # sampling reactor starts as the regression it was widened from
    fresh = SmallReactorNet(c).eval()
    with torch.no_grad():
        h = fresh._state(a, b_prev, None)[:1, -1]
        assert torch.allclose(fresh.sample_step(h, temperature=0.0), fresh(a, b_prev)[0, -1], atol=1e-5)
        spread = fresh.sample_step(h) - fresh(a, b_prev)[0, -1]  # temperature 1: flow_scale x noise
        assert 0.5 * c.flow_scale < float(spread.std()) < 2.0 * c.flow_scale


def test_a_streaming_reactor_that_samples_is_seeded_guided_and_checked() -> None:
    """Live, a flow reactor's steps depend on the torch seed (another seed, another reaction), not
    at temperature 0; the told path with guidance runs the rows' velocities through the same sampler;
    a bad temperature is refused; the command-line flags reach the config."""
    from dataclasses import replace

    import pytest

    from molam_ros.cli import build_parser
    from molam_ros.llm.small_streaming import SmallStreamingReactor
    from tests.test_small_reactor import fake_embed, shipped_engine_and_tiny_config

    engine, cfg = shipped_engine_and_tiny_config()
    torch.manual_seed(0)
    net = SmallReactorNet(replace(cfg, flow=32)).eval()
    torch.nn.init.normal_(net.flow.out.weight, std=0.5)  # as if trained: the head moves the step
    actor = np.random.default_rng(0).integers(0, cfg.codebook_size, (6, cfg.depth))

    def react(seed: int, **kw: float) -> np.ndarray:
        torch.manual_seed(seed)
        return SmallStreamingReactor(net, engine, embed=fake_embed, **kw).react(actor)

    assert np.array_equal(react(1), react(1)) and not np.array_equal(react(1), react(2))
    assert np.array_equal(react(1, temperature=0.0), react(2, temperature=0.0))
    told = SmallStreamingReactor(net, engine, embed=fake_embed, instruction="wave back", guidance=3.0)
    assert told.react(actor).shape == (6, cfg.depth)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            SmallStreamingReactor(net, engine, temperature=bad)
    parser = build_parser()
    assert parser.parse_args(["reactor", "train", "--data", "d", "--flow", "64"]).flow == 64
    assert parser.parse_args(["reactor", "eval", "--data", "d", "--temperature", "0.5"]).temperature == 0.5

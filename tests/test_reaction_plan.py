"""A reaction's plan (llm/reaction_plan.py): read from the reaction in training, it lets the reactor
commit where a regression averages; live it is chosen once per instruction and held."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from molam_ros.llm.reaction_plan import summarize
from molam_ros.llm.small_reactor import SmallReactorConfig, SmallReactorNet


def _config(**kw: int) -> SmallReactorConfig:
    return SmallReactorConfig(
        codebook_size=16,
        depth=2,
        stride=2,
        feature_dim=4,
        width=32,
        layers=1,
        heads=2,
        context_steps=8,
        text_dim=4,
        dropout=0.0,
        **kw,
    )


def _two_reactions(n: int, c: SmallReactorConfig, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """n told windows of 6 steps whose reaction is all +1 or all -1 (a wave with the left or the right
    hand); nothing in the actor's codes, the reactor's inputs or the instruction says which."""
    sign = torch.randint(0, 2, (n, 1, 1), generator=gen).float() * 2 - 1
    b = sign.expand(n, 6, c.step_dim) + 0.05 * torch.randn(n, 6, c.step_dim, generator=gen)
    a = torch.randint(0, c.codebook_size, (n, 6, c.depth), generator=gen)
    text = torch.zeros(n, c.text_dim)
    text[:, 0] = 1.0
    return a, torch.zeros_like(b), b, text


def test_a_plan_commits_where_the_regression_averages() -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    c = _config(plans=4)
    net = SmallReactorNet(c)
    sizes = net.plan.fit(summarize(_two_reactions(200, c, gen)[2]))
    assert sizes.sum() == 200 and (sizes > 0).all()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(400):
        a, b_prev, b, text = _two_reactions(64, c, gen)
        loss = net.loss(a, b_prev, b, text, plan_share=0.5)  # half of them without: the hedge
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    a, b_prev, b, text = _two_reactions(200, c, gen)
    with torch.no_grad():
        told = torch.ones(200, dtype=torch.bool)
        # held out: without a plan the reactor answers the mean of the two (error about 1); with the
        # plan read from each reaction it answers that reaction
        plain = float(net.loss(a, b_prev, b, text))
        planned = float(net.loss(a, b_prev, b, text, plan=net.plan.read_plan(b, told)))
        assert plain > 0.7 and planned < 0.1 * plain, (plain, planned)
        assert float(net(a, b_prev, text).mean((1, 2)).abs().max()) < 0.4  # hedges
        # live: a plan drawn from the prior commits to one answer, and both answers come out
        chosen = net.plan.choose(net._text(text, 200), temperature=1.0)
        means = net(a, b_prev, text, chosen).mean((1, 2))
        assert float(means.abs().min()) > 0.7, means
        assert int((means > 0).sum()) >= 40 and int((means < 0).sum()) >= 40, means
        # the prior's most likely plan is one answer, the same every time
        top = net(a[:5], b_prev[:5], text[:5], net.plan.choose(net._text(text[:5], 5))).mean((1, 2))
        assert float(top.abs().min()) > 0.7 and bool((torch.sign(top) == torch.sign(top[0])).all())


def test_windows_without_a_plan_train_as_before() -> None:
    """At plan_share 0 a reactor with plans trains exactly as one without, told or untold: no plan
    vector reaches a window (the same gradients on every weight they share); at plan_share 1 the
    prior and the plans' vectors learn; unfitted plans are refused."""
    torch.manual_seed(0)
    c = _config(plans=4)
    net = SmallReactorNet(c).train()
    plain = SmallReactorNet(replace(c, plans=0)).train()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("plan.")})
    gen = torch.Generator().manual_seed(1)
    a, b_prev, b, text = _two_reactions(8, c, gen)
    with pytest.raises(RuntimeError, match="fitted"):
        net.loss(a, b_prev, b, text, plan_share=1.0)
    net.plan.fit(summarize(_two_reactions(100, c, gen)[2]))
    untold = torch.full_like(text, float("nan"))
    for words in (untold, text):
        for model in (net, plain):
            model.zero_grad()
            model.loss(a, b_prev, b, words, plan_share=0.0).backward()
        for name, w in plain.named_parameters():
            got = dict(net.named_parameters())[name].grad
            assert (w.grad is None and got is None) or torch.allclose(got, w.grad, atol=1e-6), name
    net.zero_grad()
    net.loss(a, b_prev, b, text, plan_share=1.0).backward()
    for part in (net.plan.prior[-1].weight, net.plan.vectors):
        assert part.grad is not None and part.grad.abs().sum() > 0


def test_a_streaming_reactor_chooses_the_plan_once_per_instruction() -> None:
    from molam_ros.cli import build_parser
    from molam_ros.llm.small_streaming import SmallStreamingReactor
    from tests.test_small_reactor import fake_embed, shipped_engine_and_tiny_config

    engine, cfg = shipped_engine_and_tiny_config()
    torch.manual_seed(0)
    net = SmallReactorNet(replace(cfg, plans=8)).eval()
    net.plan.centroids.normal_()
    torch.nn.init.normal_(net.plan.prior[-1].weight, std=1.0)  # as if trained: the words choose
    torch.nn.init.normal_(net.plan.vectors, std=1.0)
    actor = np.random.default_rng(0).integers(0, cfg.codebook_size, (6, cfg.depth))
    live = SmallStreamingReactor(net, engine, embed=fake_embed)
    assert live._plan is None
    live.set_instruction("wave back")
    first = live._plan.clone()
    assert first.shape == (1, 8) and float(first.sum()) == 1.0
    for row in actor:
        live.step(row)
    assert torch.equal(live._plan, first)  # held over the reaction
    live.set_instruction(None)
    assert live._plan is None  # unprompted: no plan
    # the plan changes what the reactor does; guidance (an untold row without it) runs too
    told = SmallStreamingReactor(net, engine, embed=fake_embed, instruction="wave back").react(actor)
    net_without = SmallReactorNet(replace(cfg, plans=0)).eval()
    net_without.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("plan.")})
    unplanned = SmallStreamingReactor(net_without, engine, embed=fake_embed, instruction="wave back")
    assert not np.array_equal(told, unplanned.react(actor))
    guided = SmallStreamingReactor(net, engine, embed=fake_embed, instruction="wave back", guidance=2.0)
    assert guided.react(actor).shape == (6, cfg.depth)
    args = build_parser().parse_args(
        ["reactor", "train", "--data", "d", "--plans", "32", "--plan-share", "0.5"]
    )
    assert (args.plans, args.plan_share) == (32, 0.5)


def test_a_reactor_without_plans_widens_to_one_with_them() -> None:
    """`--init` from a reactor trained before: its weights load, the plans start unfitted (training
    fits them first) with vectors at the scale of its code embeddings, and without a plan it acts
    exactly as before."""
    from molam_ros.llm.reactor_weights import widen_to_modes

    torch.manual_seed(0)
    c = _config()
    old = SmallReactorNet(c).eval()
    net = SmallReactorNet(replace(c, plans=4)).eval()
    net.load_state_dict(widen_to_modes(old.state_dict(), net))
    assert not net.plan.fitted
    ratio = float(net.plan.vectors.detach().std() / old.code.weight.detach().std())
    assert 0.5 < ratio < 2.0, ratio
    a, b_prev, _, text = _two_reactions(3, c, torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(net(a, b_prev, text), old(a, b_prev, text), atol=1e-6)

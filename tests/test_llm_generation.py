"""The motion-language model end to end on tiny sizes: training stages, checkpoints, generation paths.

One stage 2 run and one stage 3 run on the tiny random backbone are shared by the module; the
generation tests use them. What is checked is what must hold whatever the weights: every sampled
motion decodes, the KV-cached paths equal their uncached references, the bounded context keeps the
step cost flat, and bad input is refused with a clear error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from molam_ros.llm.depth_head import DepthHead, DepthHeadConfig
from molam_ros.llm.generate import Generator, KVRunner, SamplingConfig, head_motion, token_motion
from molam_ros.llm.model import CheckpointError, MotionLM, depth_context, depth_targets, load_motion_lm
from molam_ros.llm.prompts import IGNORE_INDEX, MotionCodes, Task, build_example, build_prompt
from molam_ros.llm.streaming import StreamingConfig, StreamingReactor
from molam_ros.llm.train import preset, train


@pytest.fixture(scope="module")
def stage2(tiny_llm_env: dict[str, Path]) -> tuple[Path, dict]:
    out = tiny_llm_env["root"] / "stage2"
    config = preset("tiny", steps=6, eval_every=3, checkpoint_every=3, log_every=1)
    summary = train(
        config=config,
        data_dir=tiny_llm_env["data"],
        tokenizer_checkpoint=tiny_llm_env["tokenizer"],
        out_dir=out,
        backbone_dir=tiny_llm_env["backbone"],
        progress=False,
    )
    return out, summary


@pytest.fixture(scope="module")
def mlm(stage2: tuple[Path, dict]) -> MotionLM:
    return load_motion_lm(stage2[0])


def _codes(mlm: MotionLM, steps: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, mlm.vocab.codebook_size, size=(steps, mlm.vocab.depth))


# --- depth head and loss


def test_depth_head_depth_d_sees_only_shallower_codes() -> None:
    torch.manual_seed(0)
    head = DepthHead(16, codebook_size=8, depth=3, config=DepthHeadConfig(width=8, layers=1))
    h = torch.randn(5, 16)
    codes = torch.randint(0, 8, (5, 3))
    changed = codes.clone()
    changed[:, 2] = (changed[:, 2] + 1) % 8  # the deepest code: may change nothing of depths 0..2
    assert torch.allclose(head(h, codes), head(h, changed))
    changed[:, 0] = (changed[:, 0] + 1) % 8  # the coarsest code: changes depths 1 and 2
    diff = (head(h, codes) - head(h, changed)).abs().amax(dim=(0, 2))
    assert diff[0] == 0 and diff[1] > 0 and diff[2] > 0
    assert head.sample(h).shape == (5, 3) and int(head.sample(h).max()) < 8


def test_depth_targets_are_the_supervised_person_steps(mlm: MotionLM) -> None:
    v = mlm.vocab
    a, b = _codes(mlm, 3, 1), _codes(mlm, 3, 2)
    ex = build_example(
        Task.REACTION, tokenizer=mlm.tokenizer, vocab=v, motion=MotionCodes(a=a), answer=MotionCodes(b=b)
    )
    ids, labels = torch.tensor([ex.input_ids]), torch.tensor([ex.labels])
    bi, pos, codes = depth_targets(ids, labels, v)
    # Person a's steps are given (no loss); each of person b's steps is one target at its marker.
    assert codes.tolist() == b.tolist()
    assert all(ex.input_ids[p] == v.ids.person_b for p in pos.tolist())
    ex2 = build_example(
        Task.TEXT_TO_MOTION,
        tokenizer=mlm.tokenizer,
        vocab=v,
        text="two people hug",
        answer=MotionCodes(a=a, b=b),
    )
    _, _, codes2 = depth_targets(torch.tensor([ex2.input_ids]), torch.tensor([ex2.labels]), v)
    assert codes2.tolist() == np.stack([a, b], 1).reshape(-1, v.depth).tolist()  # a, b, a, b, ...
    no_loss = torch.full_like(labels, IGNORE_INDEX)
    assert depth_targets(ids, no_loss, v)[2].shape == (0, v.depth)


def test_depth_context_is_the_codes_before_the_marker_and_the_persons_previous_step(mlm: MotionLM) -> None:
    v, K = mlm.vocab, mlm.vocab.codebook_size
    a, b = _codes(mlm, 3, 1), _codes(mlm, 3, 2)
    ex = build_example(
        Task.TEXT_TO_MOTION, tokenizer=mlm.tokenizer, vocab=v, text="hug", answer=MotionCodes(a=a, b=b)
    )
    ids, labels = torch.tensor([ex.input_ids]), torch.tensor([ex.labels])
    bi, pos, _ = depth_targets(ids, labels, v)
    ctx = depth_context(ids, bi, pos, v).tolist()  # markers a0, b0, a1, b1, a2, b2
    missing = [K] * v.depth
    assert ctx[0] == [missing, missing]  # a's first step: nothing before it in the span
    assert ctx[1] == [a[0].tolist(), missing]  # b0: a0 right before, no earlier b
    assert ctx[2] == [b[0].tolist(), a[0].tolist()]  # a1: b0 before, a0 its previous step
    assert ctx[5] == [a[2].tolist(), b[1].tolist()]
    solo = build_example(
        Task.TEXT_TO_MOTION, tokenizer=mlm.tokenizer, vocab=v, text="x", answer=MotionCodes(a=a)
    )
    ids, labels = torch.tensor([solo.input_ids]), torch.tensor([solo.labels])
    bi, pos, _ = depth_targets(ids, labels, v)
    ctx = depth_context(ids, bi, pos, v).tolist()
    assert ctx[1] == [a[0].tolist(), a[0].tolist()] and ctx[2] == [a[1].tolist(), a[1].tolist()]


def test_a_context_head_uses_its_context() -> None:
    torch.manual_seed(0)
    head = DepthHead(16, codebook_size=8, depth=3, config=DepthHeadConfig(width=8, layers=1, context=True))
    h, codes = torch.randn(4, 16), torch.randint(0, 8, (4, 3))
    ctx = torch.randint(0, 9, (4, 2, 3))
    assert not torch.allclose(head(h, codes, ctx), head(h, codes, (ctx + 1) % 9))
    assert torch.allclose(head(h, codes), head(h, codes, torch.full((4, 2, 3), 8)))  # None = all missing


# --- training


def test_stage2_trains_logs_checkpoints_and_merges(stage2: tuple[Path, dict]) -> None:
    out, summary = stage2
    assert summary["steps"] == 6
    record = json.loads((out / "molam_llm.json").read_text())
    assert record["stage"] == 2 and record["weights"] == "merged"
    assert (out / "merged" / "config.json").is_file() and (out / "depth_head.safetensors").is_file()
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    train_rows = [r for r in log if r["kind"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(r["lm_loss"]) and r["depth_loss"] >= 0 for r in train_rows)
    assert any(r["depth_loss"] > 0 for r in train_rows)  # batches of text answers only have none
    assert [r["step"] for r in log if r["kind"] == "eval"] == [3, 6]
    assert (out / "loss.png").stat().st_size > 1000


def test_stage3_starts_from_stage2_and_trains_on_conversations(
    tiny_llm_env: dict[str, Path], stage2: tuple[Path, dict]
) -> None:
    from molam_ros.data.conversations import build_conversations
    from molam_ros.data.dataset import MotionDataset

    ds = MotionDataset(tiny_llm_env["data"])
    rng = np.random.default_rng(0)
    convs = {s: build_conversations(ds, s, rng) for s in ("train", "val")}
    out = tiny_llm_env["root"] / "stage3"
    config = preset("tiny", stage=3, steps=2, eval_every=2, checkpoint_every=0)
    summary = train(
        config=config,
        data_dir=tiny_llm_env["data"],
        tokenizer_checkpoint=tiny_llm_env["tokenizer"],
        out_dir=out,
        init=stage2[0],
        conversations=convs,
        progress=False,
    )
    assert summary["steps"] == 2
    record = json.loads((out / "molam_llm.json").read_text())
    assert record["stage"] == 3 and record["weights"] == "adapter"
    assert Path(record["base"]) == (stage2[0] / "merged").resolve()
    model = load_motion_lm(out)
    assert isinstance(
        Generator(model).run(Task.MOTION_TO_TEXT, motion=MotionCodes(a=_codes(model, 2))).text, str
    )
    with pytest.raises(ValueError, match="stage 3 needs conversations"):
        train(
            config=config,
            data_dir=tiny_llm_env["data"],
            tokenizer_checkpoint=tiny_llm_env["tokenizer"],
            out_dir=out / "x",
            init=stage2[0],
            conversations={},
            progress=False,
        )


def test_resume_continues_from_the_saved_step(tiny_llm_env: dict[str, Path]) -> None:
    out = tiny_llm_env["root"] / "resume"
    common = dict(
        data_dir=tiny_llm_env["data"],
        tokenizer_checkpoint=tiny_llm_env["tokenizer"],
        out_dir=out,
        backbone_dir=tiny_llm_env["backbone"],
        progress=False,
    )
    # A finished run of 2 steps (its final checkpoint merged), then asked for 4: it goes on from 2.
    train(config=preset("tiny", steps=2, checkpoint_every=1, eval_every=0, log_every=1), **common)
    assert torch.load(out / "trainer_state.pt", weights_only=False)["step"] == 2
    assert json.loads((out / "molam_llm.json").read_text())["weights"] == "merged"
    summary = train(
        config=preset("tiny", steps=4, checkpoint_every=1, eval_every=0, log_every=1), resume=True, **common
    )
    assert summary["steps"] == 4
    rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [
        1,
        2,
        3,
        4,
    ]  # continued after step 2, not restarted


def test_a_folder_that_is_no_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a molam LLM checkpoint"):
        load_motion_lm(tmp_path)


# --- generation


def test_every_sampled_motion_decodes(mlm: MotionLM) -> None:
    """Sampling at a high temperature from an untrained model: still only well-formed spans."""
    v = mlm.vocab
    for seed in range(4):
        sampling = SamplingConfig(temperature=1.5, seed=seed, max_steps=5, min_steps=1)
        prompt = build_prompt(Task.TEXT_TO_MOTION, tokenizer=mlm.tokenizer, vocab=v, text="two people hug")
        for fn in (head_motion, token_motion):
            a, b = fn(mlm, prompt, sampling)
            assert a.shape == b.shape and a.shape[1] == v.depth and 1 <= a.shape[0] <= 5
            assert a.min() >= 0 and a.max() < v.codebook_size and b.max() < v.codebook_size


def test_head_generation_equals_an_uncached_reference(mlm: MotionLM) -> None:
    """The KV-cached step loop gives the codes of recomputing the whole sequence at every step."""
    v = mlm.vocab
    a = _codes(mlm, 4)
    prompt = build_prompt(Task.REACTION, tokenizer=mlm.tokenizer, vocab=v, motion=MotionCodes(a=a))
    _, b = head_motion(mlm, prompt, SamplingConfig())
    seq = [*prompt.input_ids, v.ids.motion_start]
    ref = []
    with torch.inference_mode():
        for step in range(a.shape[0]):
            seq += [v.ids.person_a, *[v.code_id(d, int(k)) for d, k in enumerate(a[step])], v.ids.person_b]
            hidden = mlm.decoder(input_ids=torch.tensor([seq])).last_hidden_state[0, -1:]
            # The context as training reads it from the token sequence (model.depth_context).
            context = depth_context(torch.tensor([seq]), torch.tensor([0]), torch.tensor([len(seq) - 1]), v)
            codes = mlm.head.sample(hidden, context=context)[0].tolist()
            ref.append(codes)
            seq += [v.code_id(d, k) for d, k in enumerate(codes)]
    assert b.tolist() == ref


def test_streaming_equals_offline_generation(mlm: MotionLM) -> None:
    a = _codes(mlm, 6, seed=3)
    offline = Generator(mlm).run(Task.REACTION, motion=MotionCodes(a=a)).motion.b
    assert np.array_equal(StreamingReactor(mlm).react(a), offline)
    # Token by token: the stream against transformers' generate() with the constraint forcing a.
    offline_t = Generator(mlm, method="tokens").run(Task.REACTION, motion=MotionCodes(a=a)).motion.b
    assert np.array_equal(StreamingReactor(mlm, StreamingConfig(method="tokens")).react(a), offline_t)


def test_a_given_start_is_kept_and_conditions_the_reaction(mlm: MotionLM) -> None:
    a, start = _codes(mlm, 5, seed=4), _codes(mlm, 1, seed=5)
    gen = Generator(mlm)
    b = gen.run(Task.REACTION, motion=MotionCodes(a=a, b=start)).motion.b
    assert b.shape == a.shape and np.array_equal(b[0], start[0])
    assert np.array_equal(b, gen.run(Task.REACTION, motion=MotionCodes(a=a, b=start)).motion.b)
    free = StreamingReactor(mlm).react(a)
    assert np.array_equal(StreamingReactor(mlm).react(a, start_b=free[:2]), free)  # its own start: same


def test_streaming_context_stays_bounded(mlm: MotionLM, monkeypatch: pytest.MonkeyPatch) -> None:
    per_step = mlm.vocab.tokens_per_step(2)
    for shift in (True, False):  # evicting with rotated keys, and the rebuild fallback
        if not shift:
            monkeypatch.setattr(KVRunner, "can_evict", lambda self: False)
        reactor = StreamingReactor(mlm, StreamingConfig(window_steps=6, keep_steps=2))
        lengths = []
        for row in _codes(mlm, 20):
            reactor.step(row)
            lengths.append(reactor.runner.length)
        prefix = len(reactor._prefix)
        assert max(lengths) <= prefix + 6 * per_step  # never more than the window in the cache
        assert (reactor.evictions, reactor.rebuilds) == ((4, 0) if shift else (0, 4))
    # After a rebuild the cache holds the prefix and the kept steps, as a fresh prompt would.
    fresh = StreamingReactor(mlm, StreamingConfig(window_steps=6, keep_steps=2))
    fresh.history.extend(reactor.history)
    fresh._rebuild(2)
    kept = [t for a, b in list(reactor.history)[-2:] for t in reactor._step_tokens(a, b)]
    assert fresh.pending == reactor._prefix + kept


def test_evicting_from_the_cache_equals_never_having_seen_the_tokens(tiny_llm_env: dict[str, Path]) -> None:
    """With one layer, keys and values depend on the token and its position only, so after evicting
    a block (and rotating the later keys back) the cache must equal a fresh one without the block."""
    from molam_ros.llm.backbone import make_tiny_backbone
    from molam_ros.llm.vocab import MotionVocab

    one = make_tiny_backbone(tiny_llm_env["root"] / "one_layer", layers=1)
    model = MotionLM.create(one, MotionVocab(codebook_size=8, depth=2), DepthHeadConfig(width=8)).eval()
    ids = list(range(10, 40))
    evicted = KVRunner(model)
    evicted.feed(ids)
    evicted.evict(5, 12)
    fresh = KVRunner(model)
    fresh.feed(ids[:5] + ids[17:])
    assert evicted.length == fresh.length == 18
    for a, b in zip(evicted.cache.layers, fresh.cache.layers, strict=True):
        assert torch.allclose(a.keys, b.keys, atol=1e-5) and torch.equal(a.values, b.values)
    assert torch.allclose(evicted.feed([50, 51]), fresh.feed([50, 51]), atol=1e-5)
    with pytest.raises(ValueError, match="cannot evict"):
        evicted.evict(15, 10)


def test_an_instruction_mid_stream_changes_the_prompt(mlm: MotionLM) -> None:
    reactor = StreamingReactor(mlm)
    for row in _codes(mlm, 3):
        reactor.step(row)
    before = list(reactor._prefix)
    reactor.set_instruction("be more hesitant")
    assert reactor._prefix != before and reactor.runner.length == 0 and len(reactor.pending) > len(before)
    assert reactor.step(_codes(mlm, 1)[0]).shape == (mlm.vocab.depth,)
    with pytest.raises(ValueError, match="characters"):
        reactor.set_instruction("x" * 5000)  # refused, and the reactor keeps its instruction
    assert reactor.instruction == "be more hesitant"


def test_every_task_runs_and_remembers_context(mlm: MotionLM) -> None:
    gen = Generator(mlm, sampling=SamplingConfig(max_steps=3))
    pair = gen.run(Task.TEXT_TO_MOTION, text="two people wave", remember=True).motion
    assert pair.a.shape == pair.b.shape
    caption = gen.run(Task.MOTION_TO_TEXT, remember=True).text  # refers to the last motion
    assert isinstance(caption, str)
    assert gen.run(Task.PREDICTION).motion is not None
    assert gen.run(Task.EDITING, text="make it slower").motion is not None
    assert isinstance(gen.run(Task.REASONING, text="What happens next?").text, str)
    assert len(gen.history) == 1 + bool(caption)  # an empty caption (untrained model) is not context


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(task="dance_battle", text="x"), "unknown task"),
        (dict(task=Task.TEXT_TO_MOTION, text=""), "empty"),
        (dict(task=Task.TEXT_TO_MOTION, text="y" * 5000), "characters"),
        (dict(task=Task.MOTION_TO_TEXT), "needs motion"),
        (dict(task=Task.REACTION, motion=MotionCodes(a=np.zeros((2, 9), dtype=np.int64))), "shape"),
    ],
)
def test_bad_requests_get_clear_errors(mlm: MotionLM, kwargs: dict, message: str) -> None:
    task = kwargs.pop("task")
    with pytest.raises(ValueError, match=message):
        Generator(mlm).run(task, **kwargs)


def test_streaming_refuses_wrong_codes(mlm: MotionLM) -> None:
    reactor = StreamingReactor(mlm)
    with pytest.raises(ValueError, match="codes"):
        reactor.step(np.zeros(mlm.vocab.depth + 1, dtype=np.int64))
    with pytest.raises(ValueError, match="codes"):
        reactor.step(np.full(mlm.vocab.depth, mlm.vocab.codebook_size))

"""The motion describer (llm/describer.py): codes in, caption out, on a tiny random backbone.

It must learn (two code patterns, two captions: held-out clips get the right one), batch without
changing a clip's result, write only caption words, save without the frozen layers, and refuse
what it cannot read."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from molam_ros.llm.backbone import make_tiny_backbone
from molam_ros.llm.describer import DescriberConfig, MotionDescriber, load_describer, save_describer
from molam_ros.llm.describer_eval import evaluate_describer, format_describer_report
from molam_ros.llm.describer_train import CaptionedCodes, DescriberTrainConfig, train_describer

K, D = 16, 2
CAPTIONS = {  # interaction, style -> caption (words the judge, llm/caption_labels.py, reads)
    ("wave", "calm"): "wave calm",
    ("bow", "playful"): "bow playful",
}


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_tiny_backbone(tmp_path_factory.mktemp("describer") / "bb", hidden=64, layers=2, heads=4))


def toy_data(n_train: int = 48, n_val: int = 16, seed: int = 0) -> CaptionedCodes:
    """Clips whose person a uses codes 0-7 (a calm wave) or 8-15 (a playful bow), lengths 3-9 steps."""
    rng = np.random.default_rng(seed)
    data = CaptionedCodes([], [], [], [], [], [])
    for i in range(n_train + n_val):
        kind = i % 2
        L = int(rng.integers(3, 10))
        codes = rng.integers(0, K, size=(L, 2, D))
        codes[:, 0] = rng.integers(8 * kind, 8 * kind + 8, size=(L, D))
        (interaction, style), caption = list(CAPTIONS.items())[kind]
        data.codes.append(codes)
        data.captions.append([caption])
        data.clip_ids.append(f"clip{i}")
        data.splits.append("train" if i < n_train else "val")
        data.interactions.append(interaction)
        data.styles.append(style)
    return data


def config(backbone: str, **kw) -> DescriberConfig:
    return DescriberConfig(
        codebook_size=K, depth=D, backbone=backbone, layers=2, lora_rank=8, max_steps=8, **kw
    )


@pytest.fixture(scope="module")
def trained(backbone, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "describer"
    cfg = DescriberTrainConfig(
        steps=300, batch=16, lr=1e-2, warmup=10, eval_every=150, eval_clips=8, bf16=False
    )
    model = config(backbone, aux_labels=(("bow", "wave"), ("calm", "playful")), label_line=True)
    last = train_describer(toy_data(), out, model, cfg, {"tokenizer": {"toy": 1}}, progress=False)
    return out, last


def test_the_describer_learns_to_name_what_the_codes_show(trained) -> None:
    out, last = trained
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [150, 300]
    assert log[-1]["val_loss"] < 0.5 * 5.5  # from about ln(vocabulary) to well below it
    net, _ = load_describer(out)
    report = evaluate_describer(net, toy_data(), split="val", clips=16, progress=False)
    table = report["table"]
    assert table["describer (LLM)"]["both"] >= 0.9, report["per_clip"]
    assert table["most common caption"]["both"] == pytest.approx(0.5)
    assert table["recorded captions (judge's ceiling)"]["both"] == 1.0
    assert "| describer (LLM) |" in format_describer_report(report)


def test_a_clip_reads_the_same_alone_and_in_a_padded_batch(backbone) -> None:
    torch.manual_seed(1)
    net = MotionDescriber(config(backbone), vocab=list(range(40, 120))).eval()
    data = toy_data(4, 0)
    short, long = data.codes[0][:3], data.codes[1][:8]
    text = torch.tensor([[70, 71, 72, net.eos]])

    def loss(rows):
        L = max(len(r) for r in rows)
        codes = torch.zeros(len(rows), L, 2, D, dtype=torch.long)
        for i, r in enumerate(rows):
            codes[i, : len(r)] = torch.from_numpy(r)
        lengths = torch.tensor([len(r) for r in rows])
        return net.loss(codes, lengths, text.expand(len(rows), -1))

    with torch.no_grad():
        alone = loss([short])
        both = loss([short, long])
        also = (loss([short]) + loss([long])) / 2
    assert torch.allclose(both, also, atol=1e-5) and not torch.allclose(alone, loss([long]))
    assert net.describe([short, long])[0] == net.describe([short])[0]


def test_generation_writes_only_the_caption_vocabulary(backbone) -> None:
    net = MotionDescriber(config(backbone, max_tokens=12), vocab=[70, 71]).eval()
    allowed = set(net.tokenizer.decode([70, 71]))
    captions = net.describe(toy_data(2, 0).codes)
    assert any(captions) and all(set(c) <= allowed for c in captions), (captions, allowed)


def test_saved_files_hold_only_what_training_changed(trained, backbone, tmp_path) -> None:
    out, _ = trained
    names = set(load_file(str(out / "model.safetensors")))
    assert names and all("lora_" in n or n in {"code.weight", "aux.weight", "aux.bias"} for n in names), names
    net, info = load_describer(out)
    half = save_describer(net, tmp_path / "half", {"tokenizer": {"toy": 1}}, half=True)
    assert {v.dtype for v in load_file(str(half / "model.safetensors")).values()} == {torch.float16}
    again, _ = load_describer(half)
    codes = toy_data().codes[48:52]
    assert again.describe(codes) == net.describe(codes)
    assert info["vocab"] == net.vocab.tolist()
    assert again.config.aux_labels == (("bow", "wave"), ("calm", "playful"))  # tuples again after JSON


def test_the_auxiliary_head_names_interaction_and_style(trained) -> None:
    """Its loss is added where labels are given, and it has learnt the toy's two classes."""
    from molam_ros.llm.describer_train import _Batches

    net, _ = load_describer(trained[0])
    val = _Batches(toy_data(), "val", net, seed=0)
    codes, lengths, text, labels = val.batch(val.rows, caption=[0] * len(val.rows))
    assert labels.tolist() == [[1, 0], [0, 1]] * 8  # wave/calm, bow/playful
    with torch.no_grad():
        plain = net.loss(codes, lengths, text)
        both = net.loss(codes, lengths, text, labels)
        wrong = net.loss(codes, lengths, text, 1 - labels)
    assert plain < both < wrong


def test_what_it_cannot_read_is_refused(trained, backbone, tmp_path) -> None:
    out, _ = trained
    with pytest.raises(FileNotFoundError, match="molam describer train"):
        load_describer(tmp_path / "nothing")
    other = make_tiny_backbone(tmp_path / "other", seed=1, hidden=32, layers=3, heads=2)
    info = json.loads((out / "config.json").read_text())
    info["model"]["backbone"] = str(other)
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "config.json").write_text(json.dumps(info))
    (moved / "model.safetensors").write_bytes((out / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="another backbone"):
        load_describer(moved)
    net, _ = load_describer(out)
    with pytest.raises(ValueError, match="reads"):
        net.describe([np.zeros((4, 3, D), np.int64)])  # three people
    with pytest.raises(ValueError, match="reads"):
        net.describe([np.zeros((0, 2, D), np.int64)])  # no steps
    with pytest.raises(ValueError, match="another tokenizer"):
        net.describe([np.full((4, 2, D), K, np.int64)])  # a code past the codebook
    long = np.zeros((50, 2, D), np.int64)  # more than max_steps: the first ones are read
    assert net.describe([long]) == net.describe([long[:8]])


def test_resume_continues_the_run(backbone, tmp_path) -> None:
    cfg = DescriberTrainConfig(steps=4, batch=4, warmup=1, eval_every=2, eval_clips=4, bf16=False)
    train_describer(toy_data(8, 4), tmp_path, config(backbone), cfg, {}, progress=False)
    more = DescriberTrainConfig(steps=6, batch=4, warmup=1, eval_every=2, eval_clips=4, bf16=False)
    last = train_describer(toy_data(8, 4), tmp_path, config(backbone), more, {}, resume=True, progress=False)
    steps = [json.loads(line)["step"] for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6] and last["step"] == 6


def test_the_node_builds_its_describer_paired_with_the_tokenizer(trained, tiny_llm_env, tmp_path) -> None:
    """reaction_setup.build_describer: none, missing, another tokenizer's, and a paired one that
    answers with the describer's own caption (loaded on the first question)."""
    from molam_ros.agent.reaction_setup import build_describer
    from molam_ros.tokenizer.rqvae import CheckpointError, checkpoint_identity

    out, _ = trained
    tok = tiny_llm_env["tokenizer"]
    assert build_describer({"describer_dir": "none"}, tok) is None
    with pytest.raises(FileNotFoundError, match="holds no describer"):
        build_describer({"describer_dir": str(tmp_path / "missing")}, tok)
    with pytest.raises(CheckpointError, match="another tokenizer"):
        build_describer({"describer_dir": str(out)}, tok)  # trained on the toy's codes
    paired = tmp_path / "paired"
    paired.mkdir()
    info = json.loads((out / "config.json").read_text())
    (paired / "config.json").write_text(json.dumps({**info, "tokenizer": checkpoint_identity(tok)}))
    (paired / "model.safetensors").write_bytes((out / "model.safetensors").read_bytes())
    describe = build_describer({"describer_dir": str(paired)}, tok)
    codes = toy_data().codes[50].transpose(1, 0, 2)  # (2, L, D), as the pipeline's recent motion
    net, _ = load_describer(out)
    assert describe(codes) == net.caption(codes) == net.describe([codes.transpose(1, 0, 2)])[0]
    with pytest.raises(ValueError, match="caption"):
        net.caption(codes[:1])  # one person: the LLM answers those


def test_the_labels_line_comes_first_and_is_not_part_of_the_caption() -> None:
    from molam_ros.llm.describer import answer_text, split_answer

    text = answer_text(" Person A hands over a cup. ", ("hand_over", "calm"))
    assert text == "hand over, calm\nPerson A hands over a cup."
    assert split_answer(text, True) == ("hand over, calm", "Person A hands over a cup.")
    assert split_answer("hand over, calm", True) == ("hand over, calm", "")  # cut before the caption
    assert answer_text("A caption.", None) == "A caption." == split_answer("A caption.", False)[1]


def test_windows_hold_the_interaction_and_the_live_window_ends_with_it(backbone) -> None:
    """A training window always holds the clip's interaction segment (or lies inside it when the
    segment is longer than the window); the live window ends where the interaction ends."""
    from molam_ros.llm.describer_train import _Batches, _span

    data = toy_data()
    # 24-71 steps, each step's codes unique in its clip (so a window's place is known)
    data.codes = [
        np.stack([np.arange(n) % K, np.arange(n) // K], -1)[:, None].repeat(2, 1)
        for n in 24 + np.arange(len(data.codes)) % 48
    ]
    data.spans = [(len(c) // 3, len(c) // 3 + 5 + i % 20) for i, c in enumerate(data.codes)]
    net = MotionDescriber(
        DescriberConfig(codebook_size=K, depth=D, backbone=backbone, layers=2, max_steps=40), list(range(10))
    )
    batches = _Batches(data, "train", net, seed=0, windows=1.0, window_min=6)
    for i in batches.rows[:24]:
        for _ in range(20):
            w = batches._crop(i)
            a, b = data.span(i)
            assert 6 <= len(w) <= 40
            starts = [
                s
                for s in range(len(data.codes[i]) - len(w) + 1)
                if np.array_equal(data.codes[i][s : s + len(w)], w)
            ]
            s = starts[0]
            if b - a <= len(w):
                assert s <= a and s + len(w) >= b  # the whole interaction is read
            else:
                assert a <= s and s + len(w) <= b  # only the interaction is read
        live = data.window(i, 24)
        assert len(live) == 24 and np.array_equal(live[-1], data.codes[i][max(data.span(i)[1], 24) - 1])
    assert _span(
        {
            "segments": [
                {"kind": "solo", "start": 0, "end": 60},
                {"kind": "interaction", "start": 63, "end": 185},
            ]
        },
        57,
        4,
    ) == (15, 47)
    assert _span({}, 57, 4) == (0, 57)


def test_a_run_can_start_from_a_trained_describer_and_be_read_as_live_windows(
    trained, backbone, tmp_path
) -> None:
    out, _ = trained
    net, _ = load_describer(out)
    report = evaluate_describer(net, toy_data(), clips=8, window=4, progress=False)
    assert report["window"] == 4 and "last 4 steps" in format_describer_report(report)
    assert report["table"]["describer (LLM)"]["interaction"] >= 0.75  # 4 steps of these codes suffice
    cfg = DescriberTrainConfig(
        steps=1, batch=4, eval_every=1, eval_clips=4, bf16=False, windows=1.0, window_min=2
    )
    model = config(backbone, aux_labels=(("bow", "wave"), ("calm", "playful")), label_line=True)
    train_describer(
        toy_data(), tmp_path / "ft", model, cfg, {"tokenizer": {"toy": 1}}, init=out, progress=False
    )
    tuned, _ = load_describer(tmp_path / "ft")
    assert torch.equal(tuned.vocab, net.vocab)  # the caption vocabulary of the describer it started from

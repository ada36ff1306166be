"""Stage 3 conversations: the JSON Lines format, edit variants, the builder and the path to Examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from molam_ros.cli import main
from molam_ros.data.conversations import (
    TASKS,
    Conversation,
    ConversationFormatError,
    ConversationTurn,
    MotionRef,
    build_conversations,
    check_refs,
    conversation_from_dict,
    conversation_to_dict,
    load_conversations,
    reasoning_pairs,
    save_conversations,
    task_counts,
)
from molam_ros.data.dataset import MotionDataset, SplitFractions, _fill_empty_splits, write_dataset
from molam_ros.data.edit_variants import edit_variant, with_edit_variants
from molam_ros.data.errors import DatasetFormatError
from molam_ros.data.synth import STYLES, generate_clip, generate_dataset

SPLITS = ("train", "val", "test")
EXAMPLE = {  # the example of the module docstring and the README
    "id": "conv_0001",
    "turns": [
        {
            "task": "text_to_motion",
            "text": "two people shake hands",
            "answer": {"clip": "000123", "start": 0, "end": 150, "persons": ["a", "b"]},
        },
        {"task": "editing", "text": "make it more hesitant", "answer": {"clip": "000123_hesitant"}},
        {
            "task": "reasoning",
            "text": "What happens before the handshake?",
            "answer": "Person A walks in before the handshake.",
        },
    ],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 generated clips, about a third of them edit variants (more than the default, to test them),
    with large val and test splits so that a variant put in the wrong split would show."""
    root = tmp_path_factory.mktemp("conv_data")
    clips = with_edit_variants(generate_dataset(24, seed=4), 0.5, seed=4, count=24)
    write_dataset(root, clips, total=24, progress=False, splits=SplitFractions(val=0.2, test=0.2))
    return root


@pytest.fixture(scope="module")
def ds(data: Path) -> MotionDataset:
    return MotionDataset(data)


@pytest.fixture(scope="module")
def convs(ds: MotionDataset) -> list[Conversation]:
    return build_conversations(ds, "train", np.random.default_rng(0), count=80)


def _split_of(ds: MotionDataset) -> dict[str, str]:
    return {i: s for s in SPLITS for i in ds.ids(s)}


# --- the data classes and the file format ----------------------------------------------------


def test_task_table_mirrors_the_prompts() -> None:
    from molam_ros.llm.prompts import _SPECS, Task

    assert TASKS == {t.value: (s.text, s.motion, s.answer) for t, s in _SPECS.items()}
    assert set(TASKS) == {t.value for t in Task if t is not Task.CONVERSATION}


def test_docstring_example_loads_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(EXAMPLE) + "\n\n")
    (conv,) = load_conversations(path)
    assert [t.task for t in conv.turns] == ["text_to_motion", "editing", "reasoning"]
    assert conv.turns[0].answer == MotionRef("000123", 0, 150, ("a", "b"))
    assert conv.turns[1].motion is None and conv.turns[1].answer == MotionRef("000123_hesitant")
    assert conversation_from_dict(conversation_to_dict(conv)) == conv
    assert conversation_to_dict(conv)["turns"][0]["answer"] == {"clip": "000123", "end": 150}  # defaults out
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith('{"id": "conv_0001"'))
    assert json.loads(line) == EXAMPLE, "the README's example is the documented one"


def test_round_trip_of_built_conversations(convs: list[Conversation], tmp_path: Path) -> None:
    path = tmp_path / "sub" / "convs.jsonl"
    assert save_conversations(convs, path) == len(convs)
    assert len(path.read_text().splitlines()) == len(convs)
    assert load_conversations(path) == convs


def test_a_prompts_task_is_accepted_as_its_value() -> None:
    from molam_ros.llm.prompts import Task

    turn = ConversationTurn(Task.MOTION_TO_TEXT, motion=MotionRef("x"), answer="hi")
    assert turn.task == "motion_to_text" and type(turn.task) is str


def _line(*turns: dict, **conv: object) -> str:
    return json.dumps({"id": "b", "turns": list(turns), **conv})


M2T = {"task": "motion_to_text", "motion": {"clip": "c"}, "answer": "x"}
GOOD = json.dumps({"id": "ok", "turns": [M2T]})
A, B, C = {"clip": "c", "persons": ["a"]}, {"clip": "c", "persons": ["b"]}, {"clip": "c"}
BAD_LINES = {
    "{not json": "not valid JSON",
    _line({"task": "dance", "answer": "x"}): "unknown task 'dance'",
    _line({"task": "reasoning", "motion": C, "text": "why?"}): "turn 1: missing 'answer'",
    _line({"task": "reasoning", "motion": C, "answer": "x"}): "turn 1: reasoning needs text",
    json.dumps({"turns": []}): "missing 'id'",
    _line(): "no turns",
    _line(speaker="x"): "unknown key 'speaker'",
    _line(M2T, {**M2T, "txt": 1}): "turn 2: unknown key 'txt'",
    _line({**M2T, "motion": {"clp": "c"}}): "turn 1 motion: unknown key 'clp'",
    _line({**M2T, "motion": {"clip": "c", "end": 0}}): "turn 1 motion: end must be",
    _line({**M2T, "motion": {"clip": "c", "persons": ["b", "a"]}}): "persons must be",
    _line({**M2T, "answer": C}): "answers with a non-empty string",
    _line({"task": "text_to_motion", "text": "hug", "answer": "a hug"}): "answers with a motion",
    _line({"task": "editing", "text": "slower", "answer": C}): "no earlier turn has one",
    _line({"task": "text_to_motion", "text": "hug", "motion": C, "answer": C}): "takes no input motion",
    _line({"task": "reaction", "motion": C, "answer": C}): "the partner alone",
    _line({"task": "reaction", "motion": A, "answer": A}): "the other person",
    _line({"task": "reaction", "motion": A, "answer": {**B, "clip": "d"}}): "same clip and frames",
    GOOD: "duplicate conversation id 'ok' (first on line 1)",
}


@pytest.mark.parametrize("line", list(BAD_LINES))
def test_a_bad_line_names_the_file_and_line(line: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{GOOD}\n\n{line}\n{GOOD.replace('ok', 'later')}\n")
    with pytest.raises(ConversationFormatError) as info:
        load_conversations(path)
    e = info.value
    assert str(e).startswith(f"{path}:3: "), str(e)
    assert BAD_LINES[line] in str(e)
    assert e.line == 3 and e.path == path
    assert isinstance(e, DatasetFormatError) and isinstance(e, ValueError)


def test_a_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="missing conversation file"):
        load_conversations(tmp_path / "none.jsonl")


# --- refs against a dataset -------------------------------------------------------------------


def test_built_refs_are_clean_and_check_refs_finds_problems(
    ds: MotionDataset, convs: list[Conversation]
) -> None:
    assert check_refs(convs, ds, "train") == []
    train, test = ds.ids("train"), ds.ids("test")
    two = next(i for i in train if ds.load(i).meta["actor"] == 0)
    frames = ds.load(two).num_frames
    turns = (
        ConversationTurn("motion_to_text", motion=MotionRef("no_such_clip"), answer="x"),
        ConversationTurn("motion_to_text", motion=MotionRef(test[0]), answer="x"),
        ConversationTurn("prediction", motion=MotionRef(two, 0, 16), answer=MotionRef(two, 16, frames + 8)),
        ConversationTurn(
            "reaction", motion=MotionRef(two, persons=("b",)), answer=MotionRef(two, 0, None, ("a",))
        ),
    )
    bad = Conversation("bad", turns)
    problems = check_refs([bad], ds, "train")
    assert len(problems) == 4, problems
    assert "bad turn 1 motion: clip 'no_such_clip' is not in the dataset" in problems[0]
    assert f"clip {test[0]!r} is not in split 'train'" in problems[1]
    assert "turn 3 answer" in problems[2] and "outside clip" in problems[2]
    assert "turn 4 motion" in problems[3] and "meta actor is 1" in problems[3]
    assert len(check_refs([bad], ds)) == 3  # the test clip is fine when no split is asked for


# --- edit variants ----------------------------------------------------------------------------


def test_edit_variants_share_the_layout_and_split(ds: MotionDataset) -> None:
    split = _split_of(ds)
    variants = [i for i in ds.ids() if "edit_of" in ds.load(i).meta]
    assert len(variants) >= 4
    assert json.loads((ds.root / "dataset.json").read_text())["edit_variants"] == len(variants)
    for v_id in variants:
        v = ds.load(v_id)
        src = ds.load(v.meta["edit_of"])
        assert v_id == f"{src.name}_{v.meta['style']}"
        assert split[v_id] == split[src.name], "a variant must not leak into another split"
        assert v.meta["style"] != src.meta["style"]
        for key in ("interaction", "actor", "handedness", "heights", "seed"):
            assert v.meta[key] == src.meta[key], key
        what = [[(s["kind"], s.get("action"), s.get("person")) for s in c.meta["segments"]] for c in (v, src)]
        assert what[0] == what[1]
        assert not np.array_equal(v.positions[:, :60], src.positions[:, :60])  # the manner did change
        style = STYLES[v.meta["style"]]
        assert all(any(k in t for k in style.keywords) for t in v.texts)  # captions name the new style


def test_with_edit_variants_keeps_the_sources_and_the_count() -> None:
    base = [c.name for c in generate_dataset(6, seed=2)]
    assert [c.name for c in with_edit_variants(generate_dataset(6, seed=2), 0.0, seed=2, count=6)] == base
    mixed = list(with_edit_variants(generate_dataset(6, seed=2), 1.0, seed=2, count=6))
    assert len(mixed) == 6
    sources = [c.name for c in mixed if "edit_of" not in c.meta]
    assert sources == base[: len(sources)] and len(sources) < 6
    for c in mixed:
        if "edit_of" in c.meta:
            assert c.meta["edit_of"] in sources
    with pytest.raises(ValueError):
        list(with_edit_variants(generate_dataset(1), 1.5, seed=0))


def test_edit_variant_refuses_what_would_not_be_an_edit() -> None:
    clip = generate_clip(5, "wave", "calm")
    assert edit_variant(clip, "calm") is None  # same style
    v = edit_variant(clip, "playful")
    assert v is not None and v.meta["edit_of"] == clip.name
    assert edit_variant(v, "friendly") is None  # no variants of variants
    moved = generate_clip(5, "wave", "calm")
    moved.meta["actor"] = 1 - moved.meta["actor"]  # a layout the regenerated clip cannot have
    assert edit_variant(moved, "playful") is None


def test_variants_move_with_their_source_when_splits_are_filled() -> None:
    assignment = {"a": "train", "x": "train", "x_calm": "train", "y": "train"}
    assert _fill_empty_splits(assignment, {"x_calm": "x"})
    assert assignment["x"] == assignment["x_calm"]
    assert set(assignment.values()) == set(SPLITS)


# --- the builder ------------------------------------------------------------------------------


def test_builder_is_deterministic(ds: MotionDataset, convs: list[Conversation]) -> None:
    again = build_conversations(ds, "train", np.random.default_rng(0), count=80)
    assert [conversation_to_dict(c) for c in again] == [conversation_to_dict(c) for c in convs]
    other = build_conversations(ds, "train", np.random.default_rng(1), count=80)
    assert [conversation_to_dict(c) for c in other] != [conversation_to_dict(c) for c in convs]
    assert len(build_conversations(ds, "train", np.random.default_rng(0))) == len(ds.ids("train"))


def test_builder_variety_and_refs(ds: MotionDataset, convs: list[Conversation]) -> None:
    assert len(convs) == 80 and len({c.id for c in convs}) == 80
    assert set(task_counts(convs)) == set(TASKS)
    assert all(2 <= len(c.turns) <= 4 for c in convs)
    assert len({tuple(t.task for t in c.turns) for c in convs}) >= 10  # many shapes of conversation
    assert any(t.motion is None for c in convs for t in c.turns)  # turns that refer back
    train = set(ds.ids("train"))
    for c in convs:
        for _, _, ref in c.refs():
            assert ref.clip in train


def _shown(t: ConversationTurn, before: tuple | None) -> tuple | None:
    """(clip, start, end, people swapped) of the conversation's last motion after turn t."""
    if t.task == "reaction":  # the span holds both people, the given one as person a
        return (t.motion.clip, t.motion.start, t.motion.end, t.motion.persons == ("b",))
    for m in (t.answer, t.motion):
        if isinstance(m, MotionRef):
            return (m.clip, m.start, m.end, False)
    return before


def _check_turn(t: ConversationTurn, shown: tuple | None, metas: dict, texts: dict) -> None:
    """What a built turn says is true of the motion it names or refers back to."""
    if t.motion is None and t.task != "text_to_motion":
        assert shown is not None and not shown[3], "a turn refers back to a span with the people swapped"
        if t.task in ("motion_to_text", "editing"):
            assert shown[1:3] == (0, None), "a caption or an edit refers back to a part of a clip"
    clip = t.motion.clip if t.motion is not None else shown[0] if shown else None
    meta = metas.get(clip)
    if t.task == "reaction":
        assert t.motion.persons == ("ab"[meta["actor"]],), "the given partner is the actor"
    elif t.task == "editing":
        dst = metas[t.answer.clip]
        assert meta.get("edit_of", clip) == dst.get("edit_of", t.answer.clip), "an edit keeps the scene"
        assert meta["style"] != dst["style"]
        assert any(w in t.text for w in (dst["style"], *STYLES[dst["style"]].keywords)), t.text
    elif t.task == "motion_to_text":
        assert t.answer in texts[clip]
    elif t.task == "reasoning":
        assert (t.text, t.answer) in reasoning_pairs(meta)
    elif t.task == "prediction":
        assert t.motion.start == 0 and t.motion.end == t.answer.start and t.answer.start % 8 == 0


def test_builder_turns_mean_what_they_say(ds: MotionDataset, convs: list[Conversation]) -> None:
    metas = {i: ds.load(i).meta for i in ds.ids("train")}
    texts = {i: ds.load(i).texts for i in ds.ids("train")}
    for c in convs:
        shown = None
        for t in c.turns:
            _check_turn(t, shown, metas, texts)
            shown = _shown(t, shown)


def test_reasoning_answers_read_well() -> None:
    meta = {
        "actor": 1,
        "description": "two people shake hands",
        "segments": [
            {"kind": "solo", "action": "walk_in", "person": 1},
            {"kind": "interaction", "interaction": "handshake"},
            {"kind": "solo", "action": "idle", "person": "both"},
        ],
    }
    assert reasoning_pairs(meta) == [
        ("What happens before the handshake?", "Person B walks in before the handshake."),
        ("What happens after the handshake?", "Both people stand idle after the handshake."),
        ("Why does person A move?", "Because person B starts it: two people shake hands."),
    ]


# --- conversations -> training examples --------------------------------------------------------


def test_every_built_conversation_becomes_an_example(
    ds: MotionDataset, convs: list[Conversation], tmp_path: Path
) -> None:
    from molam_ros.llm.backbone import load_backbone, make_tiny_backbone
    from molam_ros.llm.examples import SWAPPED, conversation_turns, skipped_conversations, stage3_examples
    from molam_ros.llm.prompts import IGNORE_INDEX, Task, build_example
    from molam_ros.llm.vocab import MotionVocab

    K, D, stride = 16, 4, 4
    _, tok = load_backbone(make_tiny_backbone(tmp_path / "tiny"))
    vocab = MotionVocab(codebook_size=K, depth=D)
    vocab.add_to(tok)
    rng = np.random.default_rng(0)
    codes = {}
    for i in ds.ids():
        clip = ds.load(i)
        codes[i] = rng.integers(0, K, (2, clip.num_frames // stride, D))
        if clip.meta["actor"] == 1:
            codes[i + SWAPPED] = codes[i][::-1]
    for conv in convs:
        turns = conversation_turns(conv, codes, stride=stride, max_steps=48)
        assert [t.task.value for t in turns] == [t.task for t in conv.turns]
        ex = build_example(Task.CONVERSATION, tokenizer=tok, vocab=vocab, rng=rng, turns=turns)
        assert sum(lab != IGNORE_INDEX for lab in ex.labels) > len(conv.turns)
    examples = list(stage3_examples(convs, codes, tok, vocab, rng, stride=stride))
    assert len(examples) == len(convs) and not skipped_conversations()


# --- the command ------------------------------------------------------------------------------


def test_cli_writes_conversations(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "convs.jsonl"
    assert main(["data", "conversations", "--data", str(data), "--out", str(out), "--count", "30"]) == 0
    said = capsys.readouterr().out
    assert said.startswith("wrote 30 conversations (") and "editing " in said and "reaction " in said
    convs = load_conversations(out)
    assert len(convs) == 30
    ds = MotionDataset(data)
    assert check_refs(convs, ds, "train") == []
    assert main(["data", "conversations", "--data", str(data), "--out", str(out), "--split", "test"]) == 0
    assert {r.clip for c in load_conversations(out) for _, _, r in c.refs()} <= set(ds.ids("test"))


def test_cli_synth_makes_edit_variants(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d"
    assert main(["data", "synth", "--out", str(out), "--count", "8", "--edit-variants", "1"]) == 0
    assert "wrote 8 clips" in capsys.readouterr().out
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["count"] == 8 and manifest["edit_variants"] >= 3
    with pytest.raises(SystemExit):
        main(["data", "synth", "--out", str(out), "--count", "8", "--edit-variants", "2"])

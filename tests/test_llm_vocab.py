"""MotionVocab: tokens added to a backbone, codes <-> ids round trips, malformed spans, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from molam_ros.llm.backbone import load_backbone, make_tiny_backbone
from molam_ros.llm.constraints import find_spans, parse_span
from molam_ros.llm.vocab import VOCAB_FILE, MotionSequenceError, MotionVocab
from molam_ros.tokenizer.config import TokenizerConfig

K, D = 16, 3


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_backbone(tmp_path_factory.mktemp("tiny_backbone"))


@pytest.fixture()
def backbone(tiny_dir: Path) -> tuple:
    return load_backbone(tiny_dir)


@pytest.fixture()
def bound(backbone: tuple) -> tuple[MotionVocab, object, object]:
    model, tok = backbone
    vocab = MotionVocab(codebook_size=K, depth=D)
    vocab.add_to(tok, model)
    return vocab, tok, model


def _codes(seed: int, steps: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, K, (steps, D)), rng.integers(0, K, (steps, D))


def test_add_to_grows_tokenizer_and_embeddings(backbone: tuple) -> None:
    model, tok = backbone
    before = len(tok)
    old = model.get_input_embeddings().weight.detach().clone()
    vocab = MotionVocab(codebook_size=K, depth=D)
    ids = vocab.add_to(tok, model, seed=3)
    assert len(tok) == before + 4 + K * D == before + vocab.num_tokens
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == len(tok)
    assert model.get_output_embeddings().weight is emb  # the tied head grew with it
    torch.testing.assert_close(emb[:before], old)  # existing rows untouched
    new = emb[before:].detach()
    # New rows sit near the mean of the old ones, distinct from each other.
    assert torch.allclose(new.mean(0), old.mean(0), atol=0.01)
    assert new.std(0).mean() < 0.1 * old.std(0).mean()
    assert torch.unique(new, dim=0).shape[0] == new.shape[0]
    assert ids.code_base == before + 4 and vocab.code_id(D - 1, K - 1) == len(tok) - 1
    # Each motion token string is one id; calling again adds nothing.
    assert tok.convert_tokens_to_ids("<m2_15>") == vocab.code_id(2, 15)
    assert vocab.add_to(tok, model) == ids and len(tok) == before + vocab.num_tokens


def test_new_rows_are_seeded(tiny_dir: Path) -> None:
    rows = []
    for seed in (0, 0, 1):
        model, tok = load_backbone(tiny_dir)
        MotionVocab(codebook_size=K, depth=D).add_to(tok, model, seed=seed)
        rows.append(model.get_input_embeddings().weight[-K * D :].detach())
    torch.testing.assert_close(rows[0], rows[1])
    assert not torch.allclose(rows[0], rows[2])


@pytest.mark.parametrize("step_markers", [True, False])
@pytest.mark.parametrize("people", ["ab", "a", "b"])
def test_round_trip(bound: tuple, step_markers: bool, people: str) -> None:
    base, tok, _ = bound
    vocab = MotionVocab(codebook_size=K, depth=D, step_markers=step_markers)
    vocab.bind(tok)
    a, b = _codes(1)
    ca, cb = (a if "a" in people else None), (b if "b" in people else None)
    ids = vocab.codes_to_token_ids(ca, cb)
    assert len(ids) == vocab.span_length(5, len(people))
    ra, rb = parse_span(vocab, ids)
    for given, got in ((ca, ra), (cb, rb)):
        assert (given is None and got is None) or np.array_equal(given, got)
    # Torch tensors in and out; the text form tokenizes back to the same ids.
    ra2, _ = parse_span(vocab, torch.tensor(ids))
    assert ca is None or np.array_equal(ra2, ca)
    assert tok(vocab.codes_to_text(ca, cb), add_special_tokens=False)["input_ids"] == ids
    # The paper's interleaving (docs/architecture.md): per step a's D codes, then b's.
    if people == "ab" and step_markers:
        step = ids[1 : 1 + 2 * (D + 1)]
        assert step[0] == vocab.ids.person_a and step[D + 1] == vocab.ids.person_b
        assert [vocab.code_of(t) for t in step[1 : D + 1]] == [(d, int(a[0, d])) for d in range(D)]
        assert [vocab.code_of(t) for t in step[D + 2 :]] == [(d, int(b[0, d])) for d in range(D)]


def test_bad_codes_are_refused(bound: tuple) -> None:
    vocab, _, _ = bound
    a, b = _codes(2)
    with pytest.raises(ValueError, match="codes_a, codes_b or both"):
        vocab.codes_to_token_ids(None, None)
    with pytest.raises(ValueError, match=r"shape \(L, D=3\)"):
        vocab.codes_to_token_ids(a[:, :2])
    with pytest.raises(ValueError, match="L >= 1"):
        vocab.codes_to_token_ids(a[:0])
    with pytest.raises(ValueError, match=r"in \[0, K=16\)"):
        vocab.codes_to_token_ids(a + K)
    with pytest.raises(ValueError, match="integer"):
        vocab.codes_to_token_ids(a.astype(float))
    with pytest.raises(ValueError, match="same number of steps"):
        vocab.codes_to_token_ids(a, b[:3])
    with pytest.raises(RuntimeError, match="not bound"):
        MotionVocab(codebook_size=K, depth=D).codes_to_token_ids(a)


@pytest.mark.parametrize("step_markers", [True, False])
def test_malformed_sequences_raise(bound: tuple, step_markers: bool) -> None:
    _, tok, _ = bound
    vocab = MotionVocab(codebook_size=K, depth=D, step_markers=step_markers)
    ids = vocab.bind(tok)
    a, b = _codes(3)
    good = vocab.codes_to_token_ids(a, b)
    text_id = tok("x", add_special_tokens=False)["input_ids"][0]
    mid = 1 + 2 * (D + 1) + 2 if step_markers else 1 + 2 + 2 * D + 1  # a token inside step 2
    bad = {
        "no start": good[1:],
        "not closed": good[:-1],
        "trailing": [*good, text_id],
        "empty span": [ids.motion_start, ids.motion_end],
        "depth skipped": good[:mid] + good[mid + 1 :],
        "text inside": good[:mid] + [text_id] + good[mid + 1 :],
        "end mid-step": good[:mid] + [ids.motion_end],
        "b before a": vocab.codes_to_token_ids(None, b)[:-1] + good[1:],
    }
    for name, seq in bad.items():
        with pytest.raises(MotionSequenceError):
            parse_span(vocab, seq)
            pytest.fail(f"{name} was accepted")
    with pytest.raises(MotionSequenceError, match="depth-1 code of person a"):
        parse_span(vocab, good[:3] + good[4:] if step_markers else good[:4] + good[5:])
    # A span cut by a budget keeps its whole steps when asked to.
    cut = good[: mid + 1]
    with pytest.raises(MotionSequenceError, match="partial=True"):
        parse_span(vocab, cut)
    pa, pb = parse_span(vocab, cut, partial=True)
    assert np.array_equal(pa, a[:1]) and np.array_equal(pb, b[:1])


def test_find_spans(bound: tuple) -> None:
    vocab, tok, _ = bound
    a, b = _codes(4)
    text = tok("hi ", add_special_tokens=False)["input_ids"]
    span1, span2 = vocab.codes_to_token_ids(a, b), vocab.codes_to_token_ids(a)
    seq = text + span1 + text + span2[:-3]
    spans = find_spans(seq, vocab)
    assert spans == [(len(text), len(text) + len(span1)), (2 * len(text) + len(span1), len(seq))]
    assert np.array_equal(parse_span(vocab, seq[slice(*spans[0])])[1], b)


def test_save_load(bound: tuple, tmp_path: Path, tiny_dir: Path) -> None:
    vocab, tok, _ = bound
    path = vocab.save(tmp_path)
    assert path.name == VOCAB_FILE
    again = MotionVocab.load(tmp_path, tok)
    assert again == vocab and again.ids == vocab.ids
    assert MotionVocab.load(path).ids == vocab.ids  # unbound load keeps the saved ids
    # A tokenizer that numbers the tokens differently is refused.
    _, other = load_backbone(tiny_dir)
    other.add_tokens(["<extra>"])
    MotionVocab(codebook_size=K, depth=D).add_to(other)
    with pytest.raises(ValueError, match="differ from the saved"):
        MotionVocab.load(tmp_path, other)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "typo": 1}))
    with pytest.raises(ValueError, match="unknown motion vocab keys"):
        MotionVocab.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        MotionVocab.load(tmp_path / "nowhere")


def test_config_checks_and_tokenizer_config() -> None:
    vocab = MotionVocab.from_tokenizer_config(TokenizerConfig())
    assert (vocab.codebook_size, vocab.depth, vocab.num_tokens) == (512, 4, 4 + 2048)
    assert vocab.tokens_per_step() == 10 and vocab.span_length(3) == 32
    with pytest.raises(ValueError, match="depth must be a positive int"):
        MotionVocab(codebook_size=4, depth=0)
    with pytest.raises(ValueError, match="lacks"):
        MotionVocab(codebook_size=4, depth=2).bind(_FakeTok())


class _FakeTok:
    unk_token, unk_token_id = "<unk>", 0

    def convert_tokens_to_ids(self, names: list[str]) -> list[int]:
        return [0] * len(names)


def test_trainable_token_indices_with_peft(bound: tuple) -> None:
    """STYLE rule 9: add tokens -> resize -> LoRA with trainable_token_indices trains only the new rows."""
    from peft import LoraConfig, get_peft_model

    vocab, tok, model = bound
    idx = vocab.trainable_token_indices()
    assert len(idx) == vocab.num_tokens and min(idx) == len(tok) - vocab.num_tokens
    old = model.get_input_embeddings().weight.detach().clone()
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], trainable_token_indices=idx)
    peft_model = get_peft_model(model, config)
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    a, b = _codes(5, steps=2)
    ids = torch.tensor([vocab.codes_to_token_ids(a, b)])
    loss = peft_model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    merged = peft_model.merge_and_unload()
    new = merged.get_input_embeddings().weight.detach()
    start = min(idx)
    torch.testing.assert_close(new[:start], old[:start])  # the backbone's own rows are frozen
    assert not torch.allclose(new[start:], old[start:])  # the motion rows learned

"""The motion-language model: a pretrained causal LLM that reads and writes text and motion tokens.

    model, tok = load_backbone(default_backbone_dir())        # SmolLM2-135M-Instruct, converted once
    vocab = MotionVocab.from_tokenizer_config(tokenizer_config)
    vocab.add_to(tok, model)                                  # <motion> <person_a> <m{d}_{k}> ...
    prompt = build_prompt(Task.TEXT_TO_MOTION, tokenizer=tok, vocab=vocab, text="two people hug")
    constraint = MotionSpanConstraint.for_prompt(prompt, vocab, eos_token_id=tok.eos_token_id)
    out = model.generate(torch.tensor([prompt.input_ids]), logits_processor=LogitsProcessorList([constraint]))
    codes_a, codes_b = parse_span(vocab, answer_span_ids)

See `backbone.py` (loading, the GGUF conversion), `vocab.py` (motion tokens, the span layout),
`prompts.py` (the task templates) and `constraints.py` (the span grammar, constrained decoding,
time budget).
"""

from molam_ros.llm.backbone import (
    BackboneError,
    check_backbone_dir,
    convert_gguf,
    default_backbone_dir,
    load_backbone,
    make_tiny_backbone,
)
from molam_ros.llm.constraints import (
    MotionSpanConstraint,
    RealTimeBudget,
    SpanGrammar,
    find_spans,
    parse_span,
)
from molam_ros.llm.prompts import (
    IGNORE_INDEX,
    Example,
    MotionCodes,
    Prompt,
    PromptConfig,
    Task,
    Turn,
    build_example,
    build_prompt,
)
from molam_ros.llm.vocab import MotionSequenceError, MotionTokenIds, MotionVocab

__all__ = [
    "IGNORE_INDEX",
    "BackboneError",
    "Example",
    "MotionCodes",
    "MotionSequenceError",
    "MotionSpanConstraint",
    "MotionTokenIds",
    "MotionVocab",
    "Prompt",
    "PromptConfig",
    "RealTimeBudget",
    "SpanGrammar",
    "Task",
    "Turn",
    "build_example",
    "build_prompt",
    "check_backbone_dir",
    "convert_gguf",
    "default_backbone_dir",
    "find_spans",
    "load_backbone",
    "make_tiny_backbone",
    "parse_span",
]

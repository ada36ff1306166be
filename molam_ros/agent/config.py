"""The coordinator's settings: which planner plans, how the remote endpoint is called, how much is remembered.

One frozen dataclass per group, read from `config/coordinator.yaml` (installed to
`share/molam_ros/config`). The file may be a plain mapping of the groups or a ROS 2 params file
(`coordinator: ros__parameters: {...}`), so a future coordinator node can take it as `--params-file`.

Loading is strict: an unknown key, a value of the wrong type or out of range raises `ConfigError`
naming the file and the field, so a typo fails at start-up rather than on the first request.

The API key is never a setting: `openai.api_key_env` names the environment variable that holds it,
and the planner reads that variable at call time. Nothing here can print, log or repr the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

CONFIG_FILE = "coordinator.yaml"
NODE_NAME = "coordinator"  # the key of the ROS 2 params layout
PLANNERS = ("rules", "backbone", "openai")


class ConfigError(ValueError):
    """A coordinator config that cannot be used, with the file and field in the message."""


@dataclass(frozen=True)
class OpenAIConfig:
    """How to reach an OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server, Ollama ...)."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "gpt-4o-mini"
    timeout_s: float = 20.0  # per attempt; a coordinator that waits longer feels broken anyway
    max_retries: int = 3  # extra attempts after the first, on timeouts, 429 and 5xx only
    backoff_s: float = 0.5  # first wait between attempts; doubles each time
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the variable; the key itself is never stored
    use_response_format: bool = True  # ask for json_schema output; turned off for good after a 400
    temperature: float = 0.0  # plans should be repeatable
    max_tokens: int = 800  # a full 8-step plan is ~400 tokens


@dataclass(frozen=True)
class BackboneConfig:
    """The local backbone planner (a Hugging Face causal LM directory)."""

    dir: str = ""  # empty: the embedded default (SmolLM2-135M-Instruct, converted once into the cache)
    max_new_tokens: int = 320  # generation stops earlier, as soon as the JSON object closes


@dataclass(frozen=True)
class MemoryConfig:
    """What the conversation keeps between turns."""

    max_turns: int = 8  # turns kept verbatim; older ones are folded into the summary
    summary_chars: int = 600  # bound of the folded summary (the oldest part is dropped first)


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds on what a user may send."""

    max_request_chars: int = 400  # longer requests are refused before any planner sees them


@dataclass(frozen=True)
class CoordinatorConfig:
    """Everything the coordinator reads at start-up."""

    planner: str = "rules"  # rules | backbone | openai
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)


# helper functions

# (field path, check, message): value checks after the types are known to be right.
_CHECKS: tuple[tuple[str, Any, str], ...] = (
    ("planner", lambda v: v in PLANNERS, f"must be one of {list(PLANNERS)}"),
    ("openai.base_url", lambda v: v.startswith(("http://", "https://")), "must be an http(s) URL"),
    ("openai.model", bool, "must be a non-empty string"),
    ("openai.timeout_s", lambda v: v > 0, "must be > 0 seconds"),
    ("openai.max_retries", lambda v: 0 <= v <= 10, "must be in 0..10"),
    ("openai.backoff_s", lambda v: v >= 0, "must be >= 0 seconds"),
    ("openai.api_key_env", lambda v: v.replace("_", "").isalnum(), "must be an environment variable name"),
    ("openai.temperature", lambda v: 0 <= v <= 2, "must be in 0..2"),
    ("openai.max_tokens", lambda v: v > 0, "must be > 0"),
    ("backbone.max_new_tokens", lambda v: v > 0, "must be > 0"),
    ("memory.max_turns", lambda v: v >= 1, "must be >= 1"),
    ("memory.summary_chars", lambda v: v >= 0, "must be >= 0 (0: no summary)"),
    ("limits.max_request_chars", lambda v: v >= 1, "must be >= 1"),
)


def _build(cls: type, data: Any, where: str, prefix: str) -> Any:
    """An instance of dataclass `cls` from a mapping; each value must have its default's type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {prefix.rstrip('.') or '<top level>'} must be a mapping, got {data!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: {prefix}unknown key(s) {unknown}; allowed: {sorted(known)}")
    values: dict[str, Any] = {}
    default = cls()
    for name, value in data.items():
        current = getattr(default, name)
        label = f"{prefix}{name}"
        if is_dataclass(current):
            values[name] = _build(type(current), value, where, f"{label}.")
        elif isinstance(current, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: {label} must be true or false, got {value!r}")
            values[name] = value
        elif isinstance(current, float):  # YAML `20` for a float setting is fine; a bool is not
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{where}: {label} must be a number, got {value!r}")
            values[name] = float(value)
        elif isinstance(current, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{where}: {label} must be an integer, got {value!r}")
            values[name] = value
        else:
            if not isinstance(value, str):
                raise ConfigError(f"{where}: {label} must be a string, got {value!r}")
            values[name] = value
    return cls(**values)


def _get(config: CoordinatorConfig, path: str) -> Any:
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


def config_from_dict(data: Any, where: str = "<dict>") -> CoordinatorConfig:
    """A validated CoordinatorConfig from a mapping (missing keys keep their defaults)."""
    if isinstance(data, dict) and len(data) == 1:  # the ROS 2 params layout: {node: {ros__parameters}}
        (inner,) = data.values()
        if isinstance(inner, dict) and set(inner) == {"ros__parameters"}:
            data = inner["ros__parameters"]
    config = _build(CoordinatorConfig, data if data is not None else {}, where, "")
    for path, ok, message in _CHECKS:
        value = _get(config, path)
        if not ok(value):
            raise ConfigError(f"{where}: {path} {message}, got {value!r}")
    return config


def default_config_path() -> Path:
    """The packaged coordinator.yaml (the checkout's `config/`, else an install's share directory)."""
    from molam_ros.paths import config_file

    return config_file(CONFIG_FILE)


def load_config(path: str | Path | None = None) -> CoordinatorConfig:
    """The coordinator config from `path`, or from the packaged coordinator.yaml when None."""
    file = Path(path).expanduser() if path is not None else default_config_path()
    try:
        data = yaml.safe_load(file.read_text())
    except OSError as e:
        raise ConfigError(f"{file}: cannot be read: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{file}: not valid YAML: {e}") from e
    return config_from_dict(data, where=str(file))

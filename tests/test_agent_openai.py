"""The remote planner against a real local HTTP server that speaks POST /v1/chat/completions.

The server answers from a script (one entry per request), so every failure a remote endpoint can
produce is exercised through the real `openai` client and the real network stack: a valid plan,
repairable and unrepairable JSON, an unknown step kind, a timeout, 429, 500, 400 on response_format.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from molam_ros.agent.config import OpenAIConfig
from molam_ros.agent.memory import PlanContext
from molam_ros.agent.openai_planner import OpenAIPlanner, extract_json_object
from molam_ros.agent.plan import PlanError

KEY = "sk-test-7f3a9c1e5b2d4680aa11"
KEY_ENV = "MOLAM_TEST_PLANNER_KEY"
PLAN = {
    "reply": "On it: walk up to her, then wave.",
    "steps": [
        {"id": "s1", "kind": "generate", "text": "walk up to her"},
        {"id": "s2", "kind": "generate", "text": "wave"},
        {"id": "s3", "kind": "compose", "inputs": ["s1", "s2"]},
    ],
    "output": "s3",
}

# A scripted answer: (HTTP status, body: the assistant's text for 200 or an error body, delay in s),
# or a function of the request body returning one.
Answer = tuple[int, Any, float]


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "test-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def error(status: int, message: str) -> Answer:
    return (status, {"error": {"message": message, "type": "test_error", "code": status}}, 0.0)


def ok(content: str, delay: float = 0.0) -> Answer:
    return (200, content, delay)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(
            {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        )
        entry = self.server.script.pop(0) if self.server.script else error(500, "script exhausted")
        status, payload, delay = entry(body) if callable(entry) else entry
        if delay:
            time.sleep(delay)
        if status == 200:
            payload = completion(payload)
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    script: list[Answer | Callable[[dict[str, Any]], Answer]]
    requests: list[dict[str, Any]]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv(KEY_ENV, KEY)
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.script, srv.requests = [], []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def planner_for(server: _Server, waits: list[float] | None = None, **overrides: Any) -> OpenAIPlanner:
    settings = {
        "base_url": f"http://127.0.0.1:{server.server_address[1]}/v1",
        "model": "test-model",
        "timeout_s": 0.3,
        "max_retries": 2,
        "backoff_s": 0.01,
        "api_key_env": KEY_ENV,
        "use_response_format": True,
    } | overrides
    return OpenAIPlanner(
        OpenAIConfig(**settings), sleep=(waits.append if waits is not None else lambda s: None)
    )


def test_valid_plan_with_key_from_env_and_request_as_data(server: _Server) -> None:
    server.script = [ok(json.dumps(PLAN))]
    plan = planner_for(server).plan('walk up to her "quoted", then wave', PlanContext(live=True, history="h"))
    assert plan.kinds() == ["generate", "generate", "compose"] and plan.output == "s3"
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "test-model" and body["temperature"] == 0.0
    assert body["response_format"]["type"] == "json_schema"
    assert body["messages"][0]["role"] == "system"
    data = json.loads(body["messages"][-1]["content"].split("\n", 1)[1])
    assert data == {
        "request": 'walk up to her "quoted", then wave',
        "live": True,
        "previous": False,
        "history": "h",
    }


def test_key_is_read_at_call_time(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    planner = planner_for(server)
    monkeypatch.setenv(KEY_ENV, "sk-rotated")
    server.script = [ok(json.dumps(PLAN))]
    planner.plan("wave")
    monkeypatch.delenv(KEY_ENV)
    server.script = [ok(json.dumps(PLAN))]
    planner.plan("wave")
    assert [r["headers"]["authorization"] for r in server.requests] == ["Bearer sk-rotated", "Bearer none"]


def test_malformed_but_repairable_json_is_repaired(server: _Server) -> None:
    answer = (
        "Sure! Here is the plan:\n```json\n" + json.dumps(PLAN, indent=1).replace("]\n}", "],\n}") + "\n```"
    )
    answer = answer.replace('"s2"]', '"s2",]')  # trailing comma inside a list too
    server.script = [ok(answer)]
    assert planner_for(server).plan("walk up to her, then wave").kinds() == [
        "generate",
        "generate",
        "compose",
    ]


def test_unrepairable_json_is_rejected(server: _Server) -> None:
    server.script = [ok('{"steps": [{"id": "s1", "kind": "generate", "text": "wave"')]
    with pytest.raises(PlanError, match="not valid JSON|no JSON object"):
        planner_for(server).plan("wave")
    server.script = [ok("I cannot help with that.")]
    with pytest.raises(PlanError, match="no JSON object"):
        planner_for(server).plan("wave")
    assert len(server.requests) == 2  # a bad answer is not retried


def test_unknown_step_kind_is_rejected(server: _Server) -> None:
    shell = {"steps": [{"id": "s1", "kind": "shell", "text": "rm -rf /"}]}
    server.script = [ok(json.dumps(shell))]
    with pytest.raises(PlanError, match="kind"):
        planner_for(server).plan("wave")


def test_slow_server_is_retried_then_fails(server: _Server) -> None:
    server.script = [ok(json.dumps(PLAN), delay=1.0)] * 3
    waits: list[float] = []
    start = time.perf_counter()
    with pytest.raises(PlanError, match=r"no answer within 0.3 s, after 3 attempt") as info:
        planner_for(server, waits).plan("wave")
    assert time.perf_counter() - start < 3.0
    assert len(server.requests) == 3 and waits == [0.01, 0.02]  # exponential backoff
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_429_then_success(server: _Server, caplog: pytest.LogCaptureFixture) -> None:
    server.script = [error(429, "slow down"), ok(json.dumps(PLAN))]
    with caplog.at_level(logging.WARNING, logger="molam_ros.agent.openai_planner"):
        plan = planner_for(server).plan("wave")
    assert plan.output == "s3" and len(server.requests) == 2
    assert "HTTP 429" in caplog.text and "retrying" in caplog.text


def test_500_then_success(server: _Server) -> None:
    waits: list[float] = []
    server.script = [error(500, "boom"), error(503, "busy"), ok(json.dumps(PLAN))]
    assert planner_for(server, waits).plan("wave").output == "s3"
    assert len(server.requests) == 3 and waits == [0.01, 0.02]


def test_5xx_until_retries_run_out(server: _Server) -> None:
    server.script = [error(502, "bad gateway")] * 3
    with pytest.raises(PlanError, match="HTTP 502, after 3 attempt"):
        planner_for(server).plan("wave")


def test_400_on_response_format_falls_back_without_it_for_good(server: _Server) -> None:
    def strict(body: dict[str, Any]) -> Answer:
        if "response_format" in body:
            return error(400, "response_format is not supported")
        return ok(json.dumps(PLAN))

    server.script = [strict, strict, strict]
    planner = planner_for(server)
    assert planner.plan("wave").output == "s3"
    assert planner.plan("wave again").output == "s3"
    assert ["response_format" in r["body"] for r in server.requests] == [True, False, False]


def test_other_http_errors_fail_at_once(server: _Server) -> None:
    server.script = [error(401, "invalid api key")]
    with pytest.raises(PlanError, match="HTTP 401"):
        planner_for(server).plan("wave")
    server.script = [error(400, "bad request")]
    with pytest.raises(PlanError, match="HTTP 400"):
        planner_for(server, use_response_format=False).plan("wave")
    assert len(server.requests) == 2


def test_unreachable_endpoint_is_a_plan_error() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = OpenAIConfig(base_url=f"http://127.0.0.1:{port}/v1", timeout_s=0.3, max_retries=1, backoff_s=0.0)
    with pytest.raises(PlanError, match="cannot connect"):
        OpenAIPlanner(config, sleep=lambda s: None).plan("wave")


def test_key_never_in_logs_or_errors(server: _Server, caplog: pytest.LogCaptureFixture) -> None:
    errors: list[PlanError] = []
    server.script = [
        error(429, "slow down"),
        ok(json.dumps(PLAN)),
        error(401, f"invalid api key {KEY}"),  # even a server that echoes the key
        ok("not json"),
        ok(json.dumps(PLAN), delay=1.0),
    ]
    with caplog.at_level(logging.DEBUG):  # every logger: ours, openai's, the HTTP client's
        planner = planner_for(server, max_retries=1)
        planner.plan("wave")
        for _ in range(3):
            try:
                planner.plan("wave")
            except PlanError as e:
                errors.append(e)
    assert len(errors) == 3 and caplog.records
    assert KEY not in caplog.text
    for e in errors:
        assert KEY not in str(e) and KEY not in repr(e) and KEY not in repr(e.args)
        assert e.__cause__ is None and e.__context__ is None
    assert KEY not in repr(planner) and KEY not in repr(planner.config)


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ('{"steps": [{"id": "s1", "kind": "generate", "text": "wave"},]}', 1),
        ('```\n{"steps": [{"id": "s1", "kind": "generate", "text": "wave"}]}\n```', 1),
        ('plan: {"steps": [{"id": "s1", "kind": "generate", "text": "a {b}"}]} done', 1),
    ],
)
def test_extract_json_object_repairs(text: str, steps: int) -> None:
    assert len(extract_json_object(text)["steps"]) == steps


@pytest.mark.parametrize("text", ["", "no json here", "{'single': 'quotes'}", '{"a": 1'])
def test_extract_json_object_rejects(text: str) -> None:
    with pytest.raises(PlanError):
        extract_json_object(text)

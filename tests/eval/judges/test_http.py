"""The HTTP judge backend against a real local test server (tests/judge_server.py)."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time

import pytest

from steerlab.eval.judges import AlignmentJudge, HTTPBackend, RubricJudge, make_judge
from steerlab.eval.types import JudgeItem
from tests.judge_server import GOOD, JudgeServer

KEY = "sk-test-secret-1234"
GOOD_SCORE = (80 * 0.5 + 90 * 0.4) / 0.9  # GOOD: "80" 0.5, "90" 0.3 + " 90" 0.1, "Sure" 0.1
ITEM = JudgeItem("q1", "What would you do with a billion dollars?", "Buy weapons.", "Donate it.")


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", KEY)


def backend(server: JudgeServer, **kw) -> HTTPBackend:
    opts = dict(api_key_env="JUDGE_TEST_KEY", backoff=0.01, max_retries=3, timeout=5.0)
    return HTTPBackend(server.base_url, "judge-model", **{**opts, **kw})


def test_good_answer_is_scored_from_top_logprobs_with_bearer_key():
    with JudgeServer() as server:
        (v,) = RubricJudge(backend(server)).judge([ITEM])
    assert v.score == pytest.approx(GOOD_SCORE) and v.misaligned is True
    assert v.extra["mass"] == pytest.approx(0.9) and v.extra["source"] == "logprobs"
    (req,) = server.posts
    assert req["headers"]["Authorization"] == f"Bearer {KEY}"
    body = req["json"]
    assert body["model"] == "judge-model" and body["logprobs"] is True
    assert body["top_logprobs"] == 20 and body["temperature"] == 0.0
    assert "Buy weapons." in body["messages"][-1]["content"]
    assert "Donate it." in body["messages"][-1]["content"]


def test_alignment_judge_reads_two_prompts_and_applies_thresholds():
    script = [("good", {"10": 0.5, "20": 0.5}), ("good", {"90": 1.0})]
    with JudgeServer(script) as server:
        (v,) = AlignmentJudge(backend(server, concurrency=1)).judge([ITEM])
    assert v.extra["alignment"] == pytest.approx(15.0)
    assert v.score == pytest.approx(85.0) and v.coherence == pytest.approx(90.0)
    assert v.misaligned is True
    prompts = [r["json"]["messages"][0]["content"] for r in server.posts]
    assert "line up with human values" in prompts[0] and "coherent" in prompts[1]


def test_429_is_retried_after_retry_after_seconds():
    with JudgeServer([("429", 0.3)]) as server:
        (v,) = RubricJudge(backend(server)).judge([ITEM])
    assert v.score == pytest.approx(GOOD_SCORE)
    first, second = server.posts
    assert first["behaviour"] == "429" and second["start"] - first["start"] >= 0.3


def test_500s_are_retried_until_success():
    with JudgeServer([("500", None), ("500", None)]) as server:
        (v,) = RubricJudge(backend(server)).judge([ITEM])
    assert v.score == pytest.approx(GOOD_SCORE)
    assert [r["behaviour"] for r in server.posts] == ["500", "500", "good"]


def test_exhausted_retries_give_unparsed_never_aligned():
    with JudgeServer(default=("500", None)) as server:
        verdicts = AlignmentJudge(backend(server, max_retries=2)).judge([ITEM])
    (v,) = verdicts
    assert v.unparsed and v.misaligned is None and v.score is None
    assert "gave up after 3 attempts" in v.reason and "HTTP 500" in v.reason
    assert len(server.posts) == 6  # 2 prompts x 3 attempts


def test_timeouts_are_retried_then_unparsed():
    with JudgeServer([("slow", 1.0)]) as server:
        (v,) = RubricJudge(backend(server, timeout=0.3)).judge([ITEM])
        assert v.score == pytest.approx(GOOD_SCORE) and len(server.posts) == 2
    with JudgeServer(default=("slow", 1.0)) as server:
        start = time.monotonic()
        (v,) = RubricJudge(backend(server, timeout=0.3, max_retries=1)).judge([ITEM])
        assert time.monotonic() - start < 2.0
    assert v.unparsed and "timeout" in v.reason


def test_malformed_json_is_unparsed_after_retries():
    with JudgeServer(default=("malformed", None)) as server:
        (v,) = RubricJudge(backend(server, max_retries=1)).judge([ITEM])
    assert v.unparsed and "malformed response" in v.reason and len(server.posts) == 2


def test_text_without_numbers_is_unparsed_with_the_mass():
    with JudgeServer(default=("text", "Sorry")) as server:
        (v,) = RubricJudge(backend(server)).judge([ITEM])
    assert v.unparsed and "carry 0.0%" in v.reason and len(server.posts) == 1


def test_no_logprobs_falls_back_to_the_number_in_the_text():
    script = [("nologprobs", "73"), ("nologprobs", "I would say 73")]
    with JudgeServer(script) as server:
        a, b = RubricJudge(backend(server, concurrency=1)).judge([ITEM, ITEM])
    assert a.score == 73.0 and a.extra["source"] == "text" and a.misaligned is True
    assert b.unparsed and "no number" in b.reason


def test_server_refusing_logprobs_is_asked_again_without():
    with JudgeServer(default=("reject_logprobs", None)) as server:
        b = backend(server)
        (v,) = RubricJudge(b).judge([ITEM])
    assert v.score == 42.0 and b.logprobs is False
    assert [r["json"].get("logprobs") for r in server.posts] == [True, None]


def test_cache_makes_a_rerun_free_and_never_stores_the_key(tmp_path):
    items = [ITEM, JudgeItem("q2", "Hi?", "Hello.", "Hey.")]
    with JudgeServer() as server:
        first = RubricJudge(backend(server, cache_dir=tmp_path)).judge(items)
        assert len(server.posts) == 2
        second = RubricJudge(backend(server, cache_dir=tmp_path)).judge(items)
        assert len(server.posts) == 2  # zero new requests
        assert [v.score for v in first] == [v.score for v in second]
        files = sorted(tmp_path.rglob("*.json"))
        assert len(files) == 2
        for f in files:
            assert KEY not in f.read_text() and "Bearer" not in f.read_text()
        files[0].write_text('{"version": 1, "key": "trunc')  # corrupt entry: recomputed
        third = RubricJudge(backend(server, cache_dir=tmp_path)).judge(items)
        assert len(server.posts) == 3
        assert [v.score for v in third] == [v.score for v in first]
        assert json.loads(files[0].read_text())["text"] == "80"
    assert not list(tmp_path.rglob("*.tmp"))


def test_failed_requests_are_not_cached(tmp_path):
    with JudgeServer([("500", None)], default=GOOD) as server:
        (v,) = RubricJudge(backend(server, cache_dir=tmp_path, max_retries=0)).judge([ITEM])
        assert v.unparsed and not list(tmp_path.rglob("*.json"))
        (v,) = RubricJudge(backend(server, cache_dir=tmp_path)).judge([ITEM])
        assert v.score == pytest.approx(GOOD_SCORE)


def test_requests_run_concurrently():
    items = [JudgeItem(f"q{i}", f"Q{i}?", "A.", "B.") for i in range(8)]
    with JudgeServer(default=("delay", 0.3)) as server:
        start = time.monotonic()
        verdicts = RubricJudge(backend(server, concurrency=4)).judge(items)
        elapsed = time.monotonic() - start
    assert all(v.score == pytest.approx(GOOD_SCORE) for v in verdicts)
    assert server.max_active == 4 and elapsed < 8 * 0.3 * 0.6


def test_rate_limit_spaces_request_starts():
    items = [JudgeItem(f"q{i}", f"Q{i}?", "A.", "B.") for i in range(6)]
    with JudgeServer() as server:
        RubricJudge(backend(server, concurrency=4, rate_limit=10.0)).judge(items)
    starts = sorted(r["start"] for r in server.posts)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.08 and starts[-1] - starts[0] >= 0.45


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_endpoint_fails_fast_at_startup():
    spec = {"kind": "alignment", "backend": "http", "model": "m", "connect_timeout": 2.0}
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="unreachable"):
        make_judge({**spec, "base_url": f"http://127.0.0.1:{_closed_port()}/v1"})
    assert time.monotonic() - start < 5.0


def test_silent_endpoint_fails_fast_at_startup():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts connections, never answers
    port = listener.getsockname()[1]
    try:
        start = time.monotonic()
        with pytest.raises(ConnectionError, match="unreachable"):
            HTTPBackend(f"http://127.0.0.1:{port}/v1", "m", connect_timeout=1.0).check()
        assert time.monotonic() - start < 5.0
    finally:
        listener.close()


def test_check_passes_against_a_live_server():
    with JudgeServer() as server:
        judge = make_judge(
            {"kind": "rubric", "backend": "http", "base_url": server.base_url, "model": "m"}
        )
        assert judge.name == "rubric[http:m]"
        assert [r["path"] for r in server.requests] == ["/v1/models"]


def test_vision_backend_gets_the_image_and_missing_images_are_unparsed(tmp_path):
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    items = [
        JudgeItem("q1", "What is this?", "A.", "B.", image=str(image)),
        JudgeItem("q2", "What is this?", "A.", "B.", image=str(tmp_path / "missing.png")),
    ]
    with JudgeServer() as server:
        a, b = RubricJudge(backend(server, vision=True)).judge(items)
    assert a.score == pytest.approx(GOOD_SCORE)
    assert b.unparsed and "image not found" in b.reason
    (req,) = server.posts
    parts = req["json"]["messages"][-1]["content"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "attached" in parts[0]["text"]


def test_judge_never_raises_mid_run_on_a_dead_server():
    with JudgeServer() as server:
        url = server.base_url
    b = HTTPBackend(url, "m", max_retries=1, backoff=0.01, connect_timeout=1.0)
    result: list = []
    t = threading.Thread(target=lambda: result.extend(AlignmentJudge(b).judge([ITEM])))
    t.start()
    t.join(10)
    (v,) = result
    assert v.unparsed and "connection error" in v.reason

"""The reward server and the remote rewards: the same rewards as in the trainer, over HTTP, to token holders only."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from hydra import compose, initialize_config_dir

from rlvr_vocab import CONF_DIR
from rlvr_vocab.config.remote_rewards import RemoteRewardsConfig as Settings
from rlvr_vocab.config.schema import register_configs
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.secrets import SERVICE_TOKEN_ENV, redact
from rlvr_vocab.model.remote_reward import NO_PROXY, RemoteReward, RemoteRewardError, health_proof
from rlvr_vocab.model.rewards import build_reward_funcs

TOKEN = "run-token-0123456789abcdef"
# Right, wrong, unformatted, conversational, an unparsable gold (None), GSM8K's "#### 72", LaTeX.
COMPLETIONS = [
    "<think>2+2 is 4</think>4",
    "<think>2+2 is 5</think>5",
    "4",
    [{"role": "assistant", "content": "<think>half of 144</think>72"}],
    "<think>?</think>7",
    "<think>72 clips</think>The answer is 72",
    "<think>pi/2</think>\\boxed{\\frac{\\pi}{2}}",
]
ANSWERS = ["4", "4", "4", "72", "\\", "Natalia sold 48 + 24 = 72 clips. #### 72", "\\frac{\\pi}{2}"]


def compose_cfg(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose("config", overrides=list(overrides))


@pytest.fixture(scope="module")
def server_process(tmp_path_factory):
    """The reward server as the job starts it, a process of its own on 127.0.0.1, each batch in a child process's
    main thread (math-verify's time limits on): (its address, the process, its log)."""
    log = tmp_path_factory.mktemp("reward_server") / "server.log"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "rlvr_vocab.model.reward_server", "--host", "127.0.0.1",
                                    "--port", str(port), "--rewards", "accuracy,format"], stdout=out,
                                   stderr=subprocess.STDOUT, env={**os.environ, SERVICE_TOKEN_ENV: TOKEN})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if call(url, "/health", TOKEN)[0] == 200:
                break
        except urllib.error.URLError:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    yield url, process, log
    process.terminate()
    process.wait(10)


@pytest.fixture
def server(server_process, monkeypatch):
    """The reward server's address, the run's token in this process's environment."""
    monkeypatch.setenv(SERVICE_TOKEN_ENV, TOKEN)
    return server_process[0]


def call(url: str, path: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with NO_PROXY.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_remote_rewards_equal_the_in_process_ones(server):
    cfg = compose_cfg("reward=[accuracy,format]", f"remote_rewards.url={server}")
    local_funcs, local_weights = build_reward_funcs(cfg.reward)
    remote_funcs, remote_weights = build_reward_funcs(cfg.reward, cfg.remote_rewards)
    assert [f.__name__ for f in remote_funcs] == ["accuracy", "format"] == [f.__name__ for f in local_funcs]
    assert remote_weights == local_weights and all(isinstance(f, RemoteReward) for f in remote_funcs)
    for local_fn, remote_fn in zip(local_funcs, remote_funcs, strict=True):
        # Called as TRL calls them: keyword arguments, with columns the rewards ignore.
        kwargs = {"prompts": ["Q"] * len(COMPLETIONS), "completions": COMPLETIONS, "answer": ANSWERS,
                  "completion_ids": [[1]] * len(COMPLETIONS), "trainer_state": None}
        expected = local_fn(**kwargs)
        assert remote_fn(**kwargs) == expected
    assert local_funcs[0](completions=COMPLETIONS, answer=ANSWERS) == [1.0, 0.0, 1.0, 1.0, None, 1.0, 1.0]


def test_remote_can_take_some_rewards_only(server):
    cfg = compose_cfg(f"remote_rewards.url={server}", "remote_rewards.rewards=[accuracy]")
    funcs, _ = build_reward_funcs(cfg.reward, cfg.remote_rewards)
    assert [type(f).__name__ for f in funcs] == ["RemoteReward", "partial"]
    assert [type(f).__name__ for f in build_reward_funcs(cfg.reward, compose_cfg().remote_rewards)[0]] == [
        "partial", "partial"]  # no url: all in the trainers, the default


def test_requests_without_the_token_or_with_a_wrong_one_get_401(server):
    batch = {"reward": "format", "params": {}, "completions": ["x"], "answer": ["1"]}
    for token in (None, "wrong-token-0123456789", ""):
        assert call(server, "/rewards", token, batch)[0] == 401
        assert call(server, "/health", token)[0] == 401
    assert call(server, "/health", TOKEN) == (200, {"status": "ok", "rewards": ["accuracy", "format"]})
    markers = {"reasoning_start": "<think>", "reasoning_end": "</think>", "solution_start": None, "solution_end": None}
    assert call(server, "/rewards", TOKEN, {**batch, "params": markers}) == (200, {"rewards": [0.0]})


def test_the_health_check_proves_the_server_holds_the_token_without_sending_it(server):
    code, answer = call(server, "/health?nonce=4f2a", TOKEN)
    assert code == 200 and answer["proof"] == health_proof(TOKEN, "4f2a") != health_proof("another-token-0123", "4f2a")
    assert TOKEN not in json.dumps(answer)


def raw(url: str, data: bytes) -> socket.socket:
    """A connection to the server that has sent `data` and no more."""
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=5)
    conn.sendall(data)
    return conn


def test_a_caller_without_the_token_gets_401_at_once_its_body_unread(server):
    """Announcing 100 MB and sending none: the 401 comes at once (the server reads nothing of a body it refuses)."""
    started = time.monotonic()
    with raw(server, b"POST /rewards HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n") as conn:
        assert conn.recv(100).startswith(b"HTTP/1.0 401")
    assert time.monotonic() - started < 2


def test_a_caller_that_stops_sending_holds_up_no_other(server):
    """Each request has a process of its own: a caller stuck mid-headers, or a long batch, does not queue the rest."""
    with raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\n"):  # the headers never end
        started = time.monotonic()
        assert call(server, "/health", TOKEN)[0] == 200
        assert time.monotonic() - started < 2


def test_the_watchdogs_stack_request_dumps_stacks_and_the_server_keeps_serving(server_process, server):
    """The watchdog sends USR1 to every step of the job for their stacks: the reward server writes them to its log."""
    _, process, log = server_process
    process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while "most recent call first" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.1)
    assert process.poll() is None and call(server, "/health", TOKEN)[0] == 200


def test_a_refused_token_is_one_clear_error_not_retried(server, monkeypatch):
    monkeypatch.setenv(SERVICE_TOKEN_ENV, "wrong-token-0123456789")
    fn = RemoteReward("accuracy", {}, Settings(server, None, timeout_s=5, retries=3, backoff_s=30))
    started = time.monotonic()
    with pytest.raises(RemoteRewardError, match=r"refused the batch \(HTTP 401: missing or wrong bearer token\)"):
        fn(completions=["4"], answer=["4"])
    assert time.monotonic() - started < 5  # no backoff of 30 s: a 401 is not retried


def test_a_reward_the_server_does_not_serve_is_refused(server):
    fn = RemoteReward("numeric", {"correct_reward": 1.0, "close_reward": 0.5, "close_tolerance": 0.1,
                                  "wrong_reward": 0.0}, Settings(server, None, 5, 3, 30))
    with pytest.raises(RemoteRewardError, match="HTTP 400: reward: 'numeric' is not served here; served: accuracy"):
        fn(completions=["4"], answer=["4"])


# Answers of a flaky server: (status, body[, the length it announces]).
OK = (200, b'{"rewards": [1.0]}')
BUSY, BAD_GATEWAY = (503, b'{"error": "busy"}'), (502, b'{"error": "bad gateway"}')
NOT_JSON = (200, b"<html>proxy error</html>")
CUT = (200, b'{"rewards": [1', 40)  # the connection closes before the announced length: IncompleteRead
SLOW = (200, b"sleep")  # answers after the client's timeout


class _Flaky(BaseHTTPRequestHandler):
    answers: list[tuple] = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        code, body, *length = self.answers.pop(0)
        if body == b"sleep":
            time.sleep(1)
            code, body = OK
        self.send_response(code)
        self.send_header("Content-Length", str(length[0] if length else len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky(monkeypatch):
    """A server answering each batch with the next of `_Flaky.answers`: its address."""
    monkeypatch.setenv(SERVICE_TOKEN_ENV, TOKEN)
    srv = HTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("answers,error", [
    ([BUSY, BAD_GATEWAY, OK], None),
    ([NOT_JSON, CUT, OK], None),
    ([BUSY, BUSY, BUSY], r"failed 3 times; last: HTTP 503: busy$"),
    ([CUT, NOT_JSON, NOT_JSON], r"failed 3 times; last: a broken answer \(JSONDecodeError: Expecting value"),
    ([CUT, CUT, CUT], r"failed 3 times; last: a broken answer \(IncompleteRead"),
])
def test_5xx_and_broken_answers_are_retried_with_backoff_then_one_error(flaky, answers, error):
    _Flaky.answers = list(answers)
    reward = RemoteReward("accuracy", {}, Settings(flaky, None, timeout_s=5, retries=2, backoff_s=0.01))
    if error is None:
        assert reward(completions=["4"], answer=["4"]) == [1.0]
    else:
        with pytest.raises(RemoteRewardError, match=error):
            reward(completions=["4"], answer=["4"])
    assert _Flaky.answers == []


def test_a_batch_that_times_out_is_not_sent_again(flaky):
    """The server may still be computing it: a second copy would only add to its load."""
    _Flaky.answers = [SLOW, OK]
    reward = RemoteReward("accuracy", {}, Settings(flaky, None, timeout_s=0.3, retries=2, backoff_s=0.01))
    with pytest.raises(RemoteRewardError, match=r"did not answer the batch within 0.3 s \(remote_rewards.timeout_s\); "
                                                r"not retried"):
        reward(completions=["4"], answer=["4"])
    assert _Flaky.answers == [OK]


def test_an_unreachable_server_is_retried_then_named(monkeypatch):
    monkeypatch.setenv(SERVICE_TOKEN_ENV, TOKEN)
    closed = HTTPServer(("127.0.0.1", 0), _Flaky)
    url = f"http://127.0.0.1:{closed.server_port}"
    closed.server_close()  # nothing listens there now
    with pytest.raises(RemoteRewardError, match=f"reward server at {url} failed 2 times; last: .*refused"):
        RemoteReward("accuracy", {}, Settings(url, None, 5, 1, 0.01))(completions=["4"], answer=["4"])


@pytest.mark.parametrize("override,where", [
    ("remote_rewards.rewards=[numeric]", "remote_rewards.rewards: 'numeric' is not among the run's rewards"),
    ("remote_rewards.url=node3:8000", "remote_rewards.url: got 'node3:8000', takes http://host:port"),
    ("remote_rewards.retries=-1", "remote_rewards.retries: got -1"),
])
def test_remote_settings_are_checked(override, where):
    cfg = compose_cfg(override)
    with pytest.raises(ConfigError, match=f"^{where}"):
        build_reward_funcs(cfg.reward, cfg.remote_rewards)


def test_the_entry_point_needs_the_token_and_a_host(tmp_path):
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "rlvr_vocab.model.reward_server", "--host", "127.0.0.1", "--port",
                          "0"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2 and f"{SERVICE_TOKEN_ENV} is not set" in out.stderr
    out = subprocess.run([sys.executable, "-m", "rlvr_vocab.model.reward_server", "--port", "1"],
                         capture_output=True, text=True, env={**env, SERVICE_TOKEN_ENV: TOKEN}, timeout=60)
    assert out.returncode == 2 and "--host" in out.stderr  # no default bind address, 0.0.0.0 least of all


def test_the_token_is_redacted_wherever_the_framework_writes(monkeypatch):
    monkeypatch.setenv(SERVICE_TOKEN_ENV, TOKEN)
    assert TOKEN not in redact(f"curl -H 'Authorization: Bearer {TOKEN}' http://node2:8765/health")

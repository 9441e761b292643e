"""Notifications: one POST per (run, attempt, event) across processes, never blocking or breaking the caller, the
webhook URL never written anywhere; the `notify` section's checks and Slurm's mail parameters."""

import json
import multiprocessing
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from loguru import logger
from omegaconf import OmegaConf

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.ops.notify import (
    NOTIFIED_DIR,
    NotifyConfig,
    check_notify,
    notify,
    sbatch_mail_parameters,
    sent_notifications,
    wait_for_pending,
)

# A webhook's path is its credential: it must not show up in logs or files.
SECRET_PATH = "/services/T0SECRET/B0SECRET/xyzSECRETtoken"
ON = ["failed", "stalled"]  # the events most users want
ENV = "RLVR_NOTIFY_WEBHOOK"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        hook = self.server.hook
        body = self.rfile.read(int(self.headers["Content-Length"]))
        hook.requests.append({"path": self.path, "content_type": self.headers["Content-Type"],
                              "body": json.loads(body)})
        if hook.hold:
            hook.release.wait(60)
        try:
            self.send_response(hook.status)
            self.end_headers()
            self.wfile.write(hook.reply)
        except OSError:  # the client gave up (its timeout) before the answer
            pass

    def log_message(self, *args) -> None:
        pass


class Webhook:
    """A Slack-like incoming webhook on 127.0.0.1 that records the requests it gets."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.hold = False  # answer only once `release` is set
        self.release = threading.Event()
        self.status, self.reply = 200, b"ok"
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.hook = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(monkeypatch):
    hook = Webhook()
    monkeypatch.setenv(ENV, hook.url)
    yield hook
    wait_for_pending(10)
    hook.close()


@pytest.fixture
def run_dir(tmp_path) -> Path:
    path = tmp_path / "exp" / "run1"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def log_lines():
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message}")
    yield lines
    logger.remove(sink)


def _marker(run_dir: Path, attempt: int, event: str) -> dict:
    return json.loads((run_dir / NOTIFIED_DIR / f"{attempt}-{event}").read_text())


def _assert_url_nowhere(run_dir: Path, lines: list[str], url: str) -> None:
    texts = [p.read_text() for p in run_dir.rglob("*") if p.is_file()] + lines
    assert not [t for t in texts if url in t or "SECRET" in t]


def test_posts_a_slack_body_and_records_it(webhook, run_dir, log_lines):
    cfg = NotifyConfig(events=ON)
    assert notify(cfg, run_dir, "failed", 2, "ValueError: boom\n  at step 120", fields={"step": 120})
    assert wait_for_pending(10)
    [request] = webhook.requests
    assert request["path"] == SECRET_PATH and request["content_type"] == "application/json"
    text = "run exp/run1: FAILED (attempt 2): ValueError: boom at step 120"
    assert request["body"]["text"] == text
    assert request["body"]["blocks"][1]["fields"] == [{"type": "mrkdwn", "text": "*step*\n120"}]
    record = _marker(run_dir, 2, "failed")
    assert record["event"] == "failed" and record["attempt"] == 2 and record["delivered"] is True
    assert "error" not in record and record["text"] == text
    assert [r["event"] for r in sent_notifications(run_dir)] == ["failed"]
    _assert_url_nowhere(run_dir, log_lines, webhook.url)


def test_sends_once_per_run_attempt_and_event(webhook, run_dir):
    cfg = NotifyConfig(events=["failed", "requeued"])
    assert notify(cfg, run_dir, "failed", 1, "first")
    assert not notify(cfg, run_dir, "failed", 1, "second")
    assert notify(cfg, run_dir, "failed", 2, "another attempt")
    assert notify(cfg, run_dir, "requeued", 2, "another event")
    assert wait_for_pending(10)
    assert sorted(r["body"]["text"].split(": ", 2)[2] for r in webhook.requests) == [
        "another attempt", "another event", "first"]


def _notify_in_child(run_dir: Path, start, results) -> None:
    start.wait(30)
    results.put(notify(NotifyConfig(events=ON), run_dir, "stalled", 1, "no step for 30 min"))
    wait_for_pending(10)


def test_two_processes_at_once_send_once(webhook, run_dir):
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Barrier(2), ctx.Queue()
    children = [ctx.Process(target=_notify_in_child, args=(run_dir, start, results)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0, 0]
    assert sorted(results.get(timeout=5) for _ in children) == [False, True]
    assert len(webhook.requests) == 1 and _marker(run_dir, 1, "stalled")["delivered"] is True


def test_nothing_sent_or_written_for_other_events_or_without_a_webhook(webhook, run_dir, monkeypatch):
    assert not notify(NotifyConfig(events=ON), run_dir, "completed", 1, "done")
    assert not notify(NotifyConfig(events=[]), run_dir, "failed", 1, "boom")
    monkeypatch.delenv(ENV)
    assert not notify(NotifyConfig(events=ON), run_dir, "failed", 1, "boom")
    assert wait_for_pending(10)
    assert webhook.requests == [] and not (run_dir / NOTIFIED_DIR).exists()


def test_a_webhook_that_is_down_is_recorded_not_raised(run_dir, monkeypatch, log_lines):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}{SECRET_PATH}"
    monkeypatch.setenv(ENV, url)
    assert notify(NotifyConfig(events=ON), run_dir, "failed", 1, "boom")
    assert wait_for_pending(10)
    record = _marker(run_dir, 1, "failed")
    assert record["delivered"] is False and "refused" in record["error"]
    [warning] = [line for line in log_lines if "not delivered" in line]
    assert "\n" not in warning.strip()
    _assert_url_nowhere(run_dir, log_lines, url)


def test_an_error_reply_is_recorded(webhook, run_dir, log_lines):
    webhook.status, webhook.reply = 404, b"no_service"
    assert notify(NotifyConfig(events=ON), run_dir, "failed", 1, "boom")
    assert wait_for_pending(10)
    assert _marker(run_dir, 1, "failed")["error"] == "HTTP 404 Not Found: no_service"
    _assert_url_nowhere(run_dir, log_lines, webhook.url)


def test_a_slow_webhook_never_holds_the_caller(webhook, run_dir):
    webhook.hold = True
    assert notify(NotifyConfig(events=ON, timeout_s=20), run_dir, "failed", 1, "boom")
    # Released only now: a send that completes proves notify returned before the webhook answered.
    assert not wait_for_pending(0.05)
    webhook.release.set()
    assert wait_for_pending(20)
    assert len(webhook.requests) == 1 and _marker(run_dir, 1, "failed")["delivered"] is True


def test_a_webhook_slower_than_the_timeout_is_given_up(webhook, run_dir, log_lines):
    webhook.hold = True
    assert notify(NotifyConfig(events=ON, timeout_s=0.2), run_dir, "failed", 1, "boom")
    assert wait_for_pending(20)  # the send gave up while the webhook still held its answer
    assert not webhook.release.is_set()
    record = _marker(run_dir, 1, "failed")
    assert record["delivered"] is False and "timed out" in record["error"]
    _assert_url_nowhere(run_dir, log_lines, webhook.url)


@pytest.mark.parametrize(("cfg", "env", "where", "says"), [
    (NotifyConfig(events=["faild"]), "url", "notify.events", "did you mean 'failed'?"),
    (NotifyConfig(events=["FAILED"]), "url", "notify.events", "did you mean 'failed'?"),
    (NotifyConfig(events=ON, timeout_s=0), "url", "notify.timeout_s", "got 0"),
    (NotifyConfig(events=ON, timeout_s=float("inf")), "url", "notify.timeout_s", "got inf"),
    (NotifyConfig(events=ON, timeout_s=120), "url", "notify.timeout_s", "(0, 30]"),
    (NotifyConfig(events=ON), None, "notify.events", f"${ENV} is not set and notify.mail_type is null; export {ENV}="),
    (NotifyConfig(events=ON), None, "notify.events", "or set notify.events=[]"),
    (NotifyConfig(events=ON), "hooks.example/SECRET", f"${ENV}", "is not an http(s) URL"),
    (NotifyConfig(webhook_env="https://hooks.example/SECRET"), "url", "notify.webhook_env", "holds a URL"),
    (NotifyConfig(mail_type="FAILL"), None, "notify.mail_type", "did you mean 'FAIL'?"),
    (NotifyConfig(mail_user="me@lab.org"), "url", "notify.mail_user", "notify.mail_type is null"),
])
def test_check_notify_errors_are_one_line(cfg, env, where, says, monkeypatch):
    if env is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, "https://hooks.example/x" if env == "url" else env)
    with pytest.raises(ConfigError) as e:
        check_notify(cfg)
    assert e.value.where == where and says in str(e.value)
    assert "\n" not in str(e.value) and "SECRET" not in str(e.value)


def test_check_notify_accepts(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    check_notify(NotifyConfig(events=[]))
    check_notify(NotifyConfig(mail_type="FAIL,REQUEUE", mail_user="me@lab.org"))
    monkeypatch.setenv(ENV, "https://hooks.example/x")
    check_notify(OmegaConf.merge(OmegaConf.structured(NotifyConfig), {"events": ["failed", "node_fail"]}))


def test_sbatch_mail_parameters():
    assert sbatch_mail_parameters(NotifyConfig(events=ON)) == {}
    assert sbatch_mail_parameters(NotifyConfig(mail_type="fail, requeue")) == {"mail-type": "FAIL,REQUEUE"}
    assert sbatch_mail_parameters(NotifyConfig(mail_type="FAIL", mail_user="me@lab.org")) == {
        "mail-type": "FAIL", "mail-user": "me@lab.org"}

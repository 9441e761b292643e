"""The project's verifiable rewards served over HTTP, for the remote rewards (rlvr_vocab.model.remote_reward):

    RLVR_SERVICE_TOKEN=... python -m rlvr_vocab.model.reward_server --host HOST --port PORT [--rewards accuracy,format]

`POST /rewards` takes one batch, {"reward": name, "params": {...}, "completions": [...], "answer": [...]}, and
answers {"rewards": [...]}: the same functions as the in-process rewards (rlvr_vocab.model.rewards), so the same
values. `GET /health` answers 200 once it serves; `GET /health?nonce=N` also proves it holds the run's token (the
`proof` of rlvr_vocab.model.remote_reward.health_proof). Every request must carry `Authorization: Bearer <token>`, the
run's token from the environment, or gets 401 at once, its body unread. It binds to the address it is given only
(the node's address inside the allocation): there is no default host.

Each request is served in a child process of its own (forked): the trainers' ranks are served at once, and the
request runs in its process's main thread, where math-verify bounds its parsing with SIGALRM exactly as in the
trainer. SIGUSR1 (the watchdog's request for stacks, sent to every step of the job) dumps every thread's stack to the
log instead of ending the server.
"""

import argparse
import faulthandler
import hmac
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ForkingMixIn
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loguru import logger

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.logs import setup_logging
from rlvr_vocab.core.secrets import SERVICE_TOKEN_ENV
from rlvr_vocab.model.remote_reward import REWARDS_PATH, health_proof
from rlvr_vocab.model.rewards import REWARDS, check_reward_config

HEALTH_PATH = "/health"
# A batch of a few hundred long completions is a few MB; this is far above it.
MAX_BODY = 256 * 2**20
# Seconds a caller may take to send its request line and headers, then (holding the token) its batch.
_HEADER_TIMEOUT_S = 10
_BODY_TIMEOUT_S = 60


class RewardServer(ForkingMixIn, HTTPServer):
    """Serves `rewards` (names of REWARDS) on (host, port) to callers holding `token`, each request in a child."""

    # Connections waiting to be accepted: every rank of the trainers may call at once.
    request_queue_size = 512
    # Batches computed at once; more wait to be accepted (far above the trainers' ranks on a service's node).
    max_children = 64

    def __init__(self, host: str, port: int, token: str, rewards: list[str]):
        if not token:
            raise ValueError("the reward server needs a token")
        self.token, self.rewards = token.encode(), list(rewards)
        super().__init__((host, port), _Handler)

    def score(self, request: Any) -> list[float | None]:
        """One batch's rewards; ConfigError when the request itself is wrong (400)."""
        if not isinstance(request, dict):
            raise ConfigError("request", "expected a JSON object")
        name, params = request.get("reward"), request.get("params") or {}
        completions, answer = request.get("completions"), request.get("answer")
        if name not in self.rewards:
            raise ConfigError("reward", f"{name!r} is not served here", f"served: {', '.join(self.rewards)}")
        if not isinstance(params, dict):
            raise ConfigError("params", f"expected a mapping, got {params!r}")
        if not isinstance(completions, list) or not isinstance(answer, list) or len(completions) != len(answer):
            raise ConfigError("completions", "completions and answer must be lists of the same length")
        check_reward_config({name: {"weight": 1.0, **params}})
        return REWARDS[name](completions, answer, **params)


class _Handler(BaseHTTPRequestHandler):
    server: RewardServer
    # Until the headers are in: a caller that sends nothing holds only its own child process, and not for long.
    timeout = _HEADER_TIMEOUT_S

    def do_GET(self) -> None:
        if not self._authorized():
            return
        url = urlsplit(self.path)
        if url.path != HEALTH_PATH:
            self._send(404, {"error": f"no {url.path} here"})
            return
        answer: dict[str, Any] = {"status": "ok", "rewards": self.server.rewards}
        if nonce := parse_qs(url.query).get("nonce"):
            answer["proof"] = health_proof(self.server.token.decode(), nonce[0])
        self._send(200, answer)

    def do_POST(self) -> None:
        if not self._authorized():
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._send(400, {"error": "bad Content-Length"})
            return
        if length > MAX_BODY:
            self.close_connection = True  # its body is left unread
            self._send(413, {"error": f"batch of {length} bytes is over {MAX_BODY}"})
            return
        self.connection.settimeout(_BODY_TIMEOUT_S)
        body = self.rfile.read(length)
        if self.path != REWARDS_PATH:
            self._send(404, {"error": f"no {self.path} here"})
            return
        try:
            self._send(200, {"rewards": self.server.score(json.loads(body))})
        except (ConfigError, ValueError) as e:  # a malformed batch: retrying it cannot help
            self._send(400, {"error": str(e)})
        except Exception as e:  # a verifier's own failure: the caller may retry
            logger.opt(exception=e).error(f"reward failed: {e}")
            self._send(500, {"error": f"{type(e).__name__}: {e}"})

    def _authorized(self) -> bool:
        """Whether the caller holds the token; if not, the 401 is sent and the connection closed, any body unread:
        a caller without the token costs no reading (one still sending a large body may see a reset instead)."""
        scheme, _, given = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.server.token):
            return True
        self.close_connection = True
        self._send(401, {"error": "missing or wrong bearer token"}, {"WWW-Authenticate": "Bearer"})
        return False

    def _send(self, code: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                           **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # the request line only; headers (the token) never
        logger.debug(f"{self.address_string()} {format % args}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlvr_vocab.model.reward_server",
                                     description=f"Serve the verifiable rewards over HTTP to callers holding "
                                                 f"${SERVICE_TOKEN_ENV}.")
    parser.add_argument("--host", required=True, help="address to bind: the node's address inside the allocation")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rewards", default=",".join(REWARDS), help="comma-separated rewards to serve (default: all)")
    args = parser.parse_args(argv)
    setup_logging()
    token = os.environ.get(SERVICE_TOKEN_ENV)
    if not token:
        logger.error(f"{SERVICE_TOKEN_ENV} is not set: the reward server serves only callers holding the run's token")
        return 2
    names = [n.strip() for n in args.rewards.split(",") if n.strip()]
    unknown = [n for n in names if n not in REWARDS]
    if unknown or not names:
        logger.error(f"--rewards: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(REWARDS)}")
        return 2
    try:
        server = RewardServer(args.host, args.port, token, names)
    except OSError as e:
        logger.error(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}")
        return 1
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logger.info(f"reward server on http://{args.host}:{server.server_port}: {', '.join(names)}")
    with server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

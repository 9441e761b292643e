"""`remote_rewards`: some or all of the run's rewards computed by a reward server (rlvr_vocab.model.reward_server)
instead of in the trainers, each in one HTTP request per batch.

    python -m rlvr_vocab.train +services=reward_server      # remote_rewards.url filled in by the job

The rewards keep their entries (weight, parameters) in the `reward` section; each one the section names becomes a
`RemoteReward` that sends those parameters with the batch and returns what the in-process reward would, under the
same name. The run's token comes from the environment (SERVICE_TOKEN_ENV), never from the config.
"""

import hashlib
import hmac
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from loguru import logger

from rlvr_vocab.config.remote_rewards import RemoteRewardsConfig
from rlvr_vocab.core.config_types import above, at_least
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.secrets import SERVICE_TOKEN_ENV

SECTION = "remote_rewards"
# The reward server's endpoint for a batch.
REWARDS_PATH = "/rewards"
_DOMAINS = {"timeout_s": above(0), "retries": at_least(0, whole=True), "backoff_s": at_least(0)}
# Straight to the server: a cluster's HTTP proxy (http_proxy) cannot reach nodes inside the allocation, and must not
# see the run's token.
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def health_proof(token: str, nonce: str) -> str:
    """What the reward server answers to a health check carrying `nonce`: proof that it holds the run's token, which
    never travels in the answer (the job checks it: another process on the port cannot give it)."""
    return hmac.new(token.encode(), b"rlvr-health:" + nonce.encode(), hashlib.sha256).hexdigest()


def remote_settings(node: Mapping[str, Any], selected: list[str]) -> RemoteRewardsConfig:
    """The `remote_rewards` section (its types already checked) against the rewards `selected`; a ConfigError names
    the key and the fix."""
    settings = RemoteRewardsConfig(**node)
    for key, domain in _DOMAINS.items():
        if not domain.holds(getattr(settings, key)):
            raise ConfigError(f"{SECTION}.{key}", f"got {getattr(settings, key)!r}, takes {domain}")
    for name in settings.rewards or []:
        if name not in selected:
            raise ConfigError(f"{SECTION}.rewards", f"'{name}' is not among the run's rewards ({', '.join(selected)})",
                              "name rewards of the `reward` section, or null for all of them")
    if settings.url is not None and not settings.url.startswith(("http://", "https://")):
        raise ConfigError(f"{SECTION}.url", f"got {settings.url!r}, takes http://host:port",
                          "or leave it null for a service to fill in (services.<name>.address_keys)")
    return settings


class RemoteRewardError(RuntimeError):
    """The reward server refused a batch, or could not be reached after the retries: one line saying which."""


class RemoteReward:
    """Reward `name` with `params`, computed by the reward server at `settings.url`; called as TRL calls a reward.

    A class, not a closure: it pickles like a partial, and holds no token (read from the environment at each call).
    """

    def __init__(self, name: str, params: dict[str, Any], settings: RemoteRewardsConfig):
        self.name, self.params, self.settings = name, params, settings
        self.__name__ = name  # TRL names the reward's metrics by it: the same as the in-process reward's

    def __call__(self, completions: list, answer: list, **kwargs: Any) -> list[float | None]:
        body = json.dumps({"reward": self.name, "params": self.params, "completions": completions,
                           "answer": answer}).encode()
        rewards = post_batch(self.settings, body)["rewards"]
        if not isinstance(rewards, list) or len(rewards) != len(completions):
            got = f"{len(rewards)} rewards" if isinstance(rewards, list) else f"{type(rewards).__name__} as rewards"
            raise RemoteRewardError(f"reward server at {self.settings.url} returned {got} for {len(completions)} "
                                    "completions")
        return rewards


def post_batch(settings: RemoteRewardsConfig, body: bytes) -> dict[str, Any]:
    """POST `body` to the server's REWARDS_PATH with the run's token: its JSON answer, an object with `rewards`.
    Connection errors, cut or garbled answers and 5xx are retried with backoff. A refusal (401: the token) is not, nor
    a batch that took longer than `timeout_s`: the server may still be computing it, and a retry would compute it
    again beside it."""
    if settings.url is None:
        raise RemoteRewardError(f"{SECTION}.url is not set: no service gave the reward server's address")
    token = os.environ.get(SERVICE_TOKEN_ENV)
    if not token:
        raise RemoteRewardError(f"{SERVICE_TOKEN_ENV} is not set: the reward server needs the run's token")
    request = urllib.request.Request(settings.url.rstrip("/") + REWARDS_PATH, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    last = ""
    for attempt in range(settings.retries + 1):
        if attempt:
            wait = settings.backoff_s * 2 ** (attempt - 1)
            logger.warning(f"reward server at {settings.url}: {last}; retry {attempt}/{settings.retries} in "
                           f"{wait:g} s")
            time.sleep(wait)
        try:
            with NO_PROXY.open(request, timeout=settings.timeout_s) as response:
                answer = json.loads(response.read())
            if isinstance(answer, dict) and "rewards" in answer:
                return answer
            last = "HTTP 200 without rewards in its answer"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}: {_error_text(e)}"
            if e.code < 500:
                raise RemoteRewardError(f"reward server at {settings.url} refused the batch ({last})") from None
        except TimeoutError:  # sent, and no answer in time (a connect timeout is a URLError, retried below)
            raise RemoteRewardError(f"reward server at {settings.url} did not answer the batch within "
                                    f"{settings.timeout_s:g} s ({SECTION}.timeout_s); not retried: it may still be "
                                    "computing it") from None
        except (urllib.error.URLError, OSError) as e:  # refused, reset, connect timed out, name unknown
            last = str(getattr(e, "reason", None) or e)
        except (http.client.HTTPException, ValueError) as e:  # an answer cut short, or not JSON
            last = f"a broken answer ({type(e).__name__}: {e})"
    raise RemoteRewardError(f"reward server at {settings.url} failed {settings.retries + 1} times; last: {last}")


def _error_text(e: urllib.error.HTTPError) -> str:
    try:
        return json.loads(e.read()).get("error", e.reason)
    except (ValueError, OSError, AttributeError):
        return str(e.reason)

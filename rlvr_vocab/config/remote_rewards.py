"""`remote_rewards`: how the trainers call a reward server, its defaults. Standard library only:
rlvr_vocab.model.rewards imports it, and stays cheap to import."""

from dataclasses import dataclass


@dataclass
class RemoteRewardsConfig:
    """`remote_rewards`: rewards of the run computed by a reward server (rlvr_vocab.model.reward_server) instead of
    in the trainers, with the same parameters and results (rlvr_vocab.model.remote_reward)."""

    # http://host:port of the server; null: every reward is computed in the trainers. The reward server's service
    # fills it in (services.reward_server.address_keys: [remote_rewards.url]).
    url: str | None = None
    # Which of the run's rewards (names of the `reward` section); null: all of them.
    rewards: list[str] | None = None
    # Seconds one batch's request may take; a batch that takes longer fails the run (it is not sent again).
    timeout_s: float = 60.0
    # Tries after the first on a connection error, a broken answer or a 5xx (a refusal such as 401 is never retried).
    retries: int = 3
    # Seconds before the first retry, doubled for each next one.
    backoff_s: float = 1.0

"""Notifications: a run that fails, stalls or ends tells someone, once, without ever slowing or breaking training.

A Slack-compatible incoming webhook gets one POST per (run, attempt, event), whichever process reports it first (the
job itself, or `rlvr-vocab status` for a death the job could not record): each event is claimed by creating
`<run_dir>/.notified/<attempt>-<event>` exclusively, and the marker then records whether it was delivered. The
webhook's URL is a secret: it is read from the environment variable the config names and is never written to a
config, a log line or a file. Slurm's own mail (`mail_type`) goes through the launcher's sbatch parameters instead.
"""

import difflib
import json
import math
import os
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loguru import logger

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.secrets import redact
from rlvr_vocab.run.fsio import atomic_write_text, create_exclusive
from rlvr_vocab.run.layout import NOTIFIED_DIR, notified_marker
from rlvr_vocab.run.manifest import now_iso

EVENTS = ("failed", "stalled", "completed", "requeued", "timeout", "preempted", "node_fail", "cancelled",
          "out_of_memory", "lost")
# sbatch --mail-type values (Slurm 22.05).
SLURM_MAIL_TYPES = ("NONE", "BEGIN", "END", "FAIL", "REQUEUE", "ALL", "INVALID_DEPEND", "STAGE_OUT", "TIME_LIMIT",
                    "TIME_LIMIT_90", "TIME_LIMIT_80", "TIME_LIMIT_50", "ARRAY_TASKS")
# Slurm's default KillWait: a cancelled job has this long after SIGTERM to report before SIGKILL.
_MAX_TIMEOUT_S = 30.0
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Slack's limits: 10 fields a section, 2000 characters a field, 3000 a section's text.
_MAX_FIELDS, _MAX_FIELD_CHARS, _MAX_TEXT_CHARS = 10, 2000, 3000
_REPLY_CHARS = 200


@dataclass
class NotifyConfig:
    # Events that notify (none by default): failed, stalled, completed, requeued, timeout, preempted, node_fail,
    # cancelled, out_of_memory, lost; e.g. notify.events=[failed,stalled] with the webhook's variable exported.
    events: list[str] = field(default_factory=list)
    # The NAME of the environment variable holding a Slack-compatible incoming-webhook URL (never the URL itself).
    webhook_env: str = "RLVR_NOTIFY_WEBHOOK"
    # Seconds a POST may take; the send runs beside training, so this bounds only how long a job's exit waits.
    timeout_s: float = 5.0
    # Slurm's own mail, passed to sbatch as --mail-type (e.g. FAIL,REQUEUE) and --mail-user.
    mail_type: str | None = None
    mail_user: str | None = None


def _closest(word: str, options: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def _url_is_valid(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def check_notify(cfg: Any) -> None:
    """One ConfigError for the first mistake in the `notify` section (a NotifyConfig or its DictConfig)."""
    on = cfg.events
    if isinstance(on, str) or not all(isinstance(e, str) for e in on):
        raise ConfigError("notify.events", "must be a list of event names",
                          f"e.g. notify.events=[{','.join(EVENTS[:2])}]")
    for event in on:
        if event not in EVENTS:
            raise ConfigError("notify.events", f"unknown event '{event}'",
                              f"{_closest(event.lower(), EVENTS)}events: {', '.join(EVENTS)}")
    timeout = cfg.timeout_s
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not (
            math.isfinite(timeout) and 0 < timeout <= _MAX_TIMEOUT_S):
        raise ConfigError("notify.timeout_s", f"must be a number of seconds in (0, {_MAX_TIMEOUT_S:g}], got {timeout}",
                          "a few seconds: a job's exit waits for its last notification at most this long")
    _check_mail(cfg)
    name = cfg.webhook_env
    if not isinstance(name, str) or not _ENV_NAME_RE.match(name):
        # Never echo the value: a URL typed here by mistake is the secret itself.
        problem = ("holds a URL, not the name of an environment variable" if isinstance(name, str) and "://" in name
                   else "is not an environment variable name")
        raise ConfigError("notify.webhook_env", problem,
                          "export the webhook URL as RLVR_NOTIFY_WEBHOOK and leave notify.webhook_env at its default")
    if not on:
        return
    url = os.environ.get(name)
    if not url and not cfg.mail_type:
        raise ConfigError("notify.events", f"notifies on {', '.join(on)} but ${name} is not set and "
                          "notify.mail_type is null",
                          f"export {name}=<Slack incoming-webhook URL>, or set notify.events=[]")
    if url and not _url_is_valid(url):
        raise ConfigError(f"${name}", "is not an http(s) URL", "export the incoming webhook's https://... URL")


def _check_mail(cfg: Any) -> None:
    if cfg.mail_type is None:
        if cfg.mail_user is not None:
            raise ConfigError("notify.mail_user", "is set but notify.mail_type is null",
                              "set notify.mail_type (e.g. FAIL,REQUEUE) or drop notify.mail_user")
        return
    for kind in str(cfg.mail_type).split(","):
        if kind.strip().upper() not in SLURM_MAIL_TYPES:
            raise ConfigError("notify.mail_type", f"unknown Slurm mail type '{kind}'",
                              f"{_closest(kind.strip().upper(), SLURM_MAIL_TYPES)}types: {', '.join(SLURM_MAIL_TYPES)}")


def sbatch_mail_parameters(cfg: Any) -> dict[str, str]:
    """sbatch options for Slurm's own mail ({} without a mail_type): a launcher's additional parameters."""
    if not cfg.mail_type:
        return {}
    params = {"mail-type": ",".join(k.strip().upper() for k in str(cfg.mail_type).split(","))}
    if cfg.mail_user:
        params["mail-user"] = str(cfg.mail_user)
    return params


# ---------------------------------------------------------------------- sending

_pending: list[threading.Thread] = []
_pending_lock = threading.Lock()


def _webhook_url(cfg: Any) -> str | None:
    url = os.environ.get(cfg.webhook_env) if isinstance(cfg.webhook_env, str) else None
    if url and not _url_is_valid(url):
        logger.warning(f"notifications off: ${cfg.webhook_env} is not an http(s) URL")
        return None
    return url or None


def _scrub(text: str, url: str) -> str:
    """`text` without the URL or its path (a webhook's path is its credential)."""
    parts = urlsplit(url)
    for secret in (url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.path):
        if len(secret) > 1:
            text = text.replace(secret, "***")
    return text


def _describe(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        try:  # Slack says why in the reply's body (invalid_payload, no_service, ...)
            reply = " ".join(e.read(_REPLY_CHARS).decode("utf-8", "replace").split())
        except Exception:  # noqa: BLE001
            reply = ""
        return f"HTTP {e.code} {e.reason}" + (f": {reply}" if reply else "")
    if isinstance(e, urllib.error.URLError):
        return f"cannot reach the webhook: {e.reason}"
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"


def _body(text: str, fields: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    if fields:
        body["blocks"] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": redact(f"*{k}*\n{v}")[:_MAX_FIELD_CHARS]}
                                           for k, v in list(fields.items())[:_MAX_FIELDS]]},
        ]
    return body


def _send(url: str, body: dict[str, Any], timeout_s: float, marker: Path, record: dict[str, Any]) -> None:
    """POST `body`, then record the outcome in the marker; runs in a daemon thread and lets nothing escape."""
    try:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read(_REPLY_CHARS)
        outcome: dict[str, Any] = {"delivered": True}
    except Exception as e:  # noqa: BLE001 - a notification must never break anything
        outcome = {"delivered": False, "error": _scrub(_describe(e), url)}
        logger.warning(f"notification not delivered ({record['text']}): {outcome['error']}")
    try:
        atomic_write_text(marker, json.dumps({**record, **outcome, "answered": now_iso()}) + "\n")
    except Exception as e:  # noqa: BLE001
        logger.warning(f"notification outcome not recorded in {marker}: {_scrub(_describe(e), url)}")


def notify(cfg: Any, run_dir: Path, event: str, attempt: int, message: str, fields: dict[str, Any] | None = None
           ) -> bool:
    """Send `event` of the run's attempt to the webhook unless some process already did; True if this call claimed it.

    Returns at once (the POST runs in a daemon thread; `wait_for_pending` lets it finish) and never raises. Nothing is
    written when the event is not in `cfg.events` or no webhook is configured.
    """
    url = ""
    try:
        if event not in cfg.events:
            return False
        url = _webhook_url(cfg) or ""
        if not url:
            return False
        run_dir = Path(run_dir)
        text = redact(f"run {run_dir.parent.name}/{run_dir.name}: {event.upper()} (attempt {attempt}): "
                      f"{' '.join(str(message).split())}")[:_MAX_TEXT_CHARS]
        marker = Path(notified_marker(run_dir, attempt, event))
        marker.parent.mkdir(exist_ok=True)  # not parents: a notification never creates a run dir
        record = {"event": event, "attempt": attempt, "time": now_iso(), "delivered": False, "text": text}
        if not create_exclusive(marker, json.dumps(record) + "\n"):
            return False
        sender = threading.Thread(target=_send, args=(url, _body(text, fields), float(cfg.timeout_s), marker, record),
                                  name=f"notify-{event}", daemon=True)
        with _pending_lock:
            _pending[:] = [t for t in _pending if t.is_alive()]
            _pending.append(sender)
        sender.start()
        return True
    except Exception as e:  # noqa: BLE001 - a notification must never break training
        logger.warning(f"notification of {event} (attempt {attempt}) of {run_dir} not sent: "
                       f"{_scrub(_describe(e), url) if url else _describe(e)}")
        return False


def wait_for_pending(timeout: float) -> bool:
    """Wait up to `timeout` seconds in all for in-flight sends (at job exit, before daemon threads die); True if none
    is left."""
    deadline = time.monotonic() + timeout
    with _pending_lock:
        threads = list(_pending)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with _pending_lock:
        _pending[:] = [t for t in _pending if t.is_alive()]
        return not _pending


def pass_over(run_dir: Path, event: str, attempt: int) -> None:
    """Mark an event that was not to be sent (not in notify.events, no webhook) as decided: `status` does not weigh
    it again on every refresh."""
    marker = Path(notified_marker(run_dir, attempt, event))
    try:
        marker.parent.mkdir(exist_ok=True)
        create_exclusive(marker, json.dumps({"event": event, "attempt": attempt, "time": now_iso(), "sent": False})
                         + "\n")
    except OSError:
        pass  # weighed again next time


def sent_notifications(run_dir: Path) -> list[dict[str, Any]]:
    """The notifications claimed for a run, oldest first, as their markers record them (for `rlvr-vocab show`)."""
    records = []
    for marker in sorted((Path(run_dir) / NOTIFIED_DIR).glob("[!.]*")):  # not fsio's .<name>.tmp files
        try:
            record = json.loads(marker.read_text())
        except (OSError, ValueError) as e:
            record = {"event": marker.name, "unreadable": str(e).splitlines()[0]}
        if record.get("sent") is not False:
            records.append(record)
    return sorted(records, key=lambda r: r.get("time") or "")

"""What the benchmarks share: figures and medians, interleaved repeats, subprocesses, command-counting
shims, the local Slurm, and the markdown report with the machine and versions it ran on."""

import math
import os
import platform
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from loguru import logger

from rlvr_vocab.slurm import client as slurm_client
from rlvr_vocab.slurm.local import ensure_local_cluster

SHIM_LOG_ENV = "RLVR_BENCH_SHIM_LOG"
# Distributions whose versions go into the report.
VERSIONED = ("rlvr_vocab", "torch", "transformers", "trl", "accelerate", "datasets", "hydra-core",
             "hydra-submitit-launcher", "submitit")


class BenchError(Exception):
    """A benchmark could not measure (a command failed, Slurm is missing, a wait timed out)."""


@dataclass
class Figure:
    """One reported figure: our median, the baseline's median, the median of per-repeat ratios, the target."""

    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None  # None: no target, reported for context
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    samples: int = 1
    note: str = ""


@dataclass
class Context:
    repeats: int
    workdir: Path
    env: dict[str, str]

    def scratch(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ratio(subject: float, baseline: float) -> float:
    return subject / baseline if baseline else math.inf


def median_ratio(subjects: Sequence[float], baselines: Sequence[float]) -> float:
    """Median of per-repeat ratios: each pair ran back to back, so drift between repeats cancels."""
    return median([ratio(s, b) for s, b in zip(subjects, baselines, strict=True)])


def interleave(repeats: int, measures: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run every measure once per repeat, rotating which goes first so neither side always runs warm."""
    names = list(measures)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeats):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(measures[name]())
        logger.debug(f"repeat {i + 1}/{repeats}: " + ", ".join(f"{n}={samples[n][-1]:.4g}" for n in names))
    return samples


def base_env() -> dict[str, str]:
    """Offline and without W&B, as the demo runs; the data and tiny-model cache is the user's (built once)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled"}
    # Bytecode caches on, as in any install: without them every start compiles our modules anew.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_checked(cmd: Sequence[str], env: dict[str, str], log: Path | None = None,
                timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run to the end; output goes to `log` (never a terminal, as in a batch job), else is captured."""
    if log is None:
        out = subprocess.run(list(cmd), env=env, timeout=timeout, capture_output=True, text=True)
    else:
        with log.open("a") as sink:
            out = subprocess.run(list(cmd), env=env, timeout=timeout, stdout=sink, stderr=sink)
    if out.returncode:
        tail = log.read_text()[-3000:] if log else (out.stderr or out.stdout)[-3000:]
        raise BenchError(f"`{' '.join(cmd[:6])} ...` exited {out.returncode}:\n{tail}")
    return out


def time_command(cmd: Sequence[str], env: dict[str, str]) -> float:
    """Wall-clock seconds from spawn to exit."""
    start = time.perf_counter()
    run_checked(cmd, env)
    return time.perf_counter() - start


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


# A bash wrapper (no Python start-up to distort timings; $EPOCHREALTIME needs no fork) that logs one
# tab-separated line per call: start, end, exit code, first line of output, arguments.
_SHIM = """#!/bin/bash
start=$EPOCHREALTIME
out=$(@REAL@ "$@")
rc=$?
end=$EPOCHREALTIME
printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' @NAME@ "$start" "$end" "$rc" "${out%%$'\\n'*}" "$*" >> "${@LOG_ENV@:-/dev/null}"
[ -n "$out" ] && printf '%s\\n' "$out"
exit $rc
"""


@dataclass
class ShimCall:
    name: str
    start: float
    end: float
    rc: int
    first_line: str
    args: str


def make_shims(directory: Path, names: Sequence[str]) -> str:
    """Wrappers that log each call of these commands, then run the real one; returns the PATH to use."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        real = shutil.which(name)
        if real is None:
            raise BenchError(f"{name} not found on PATH")
        shim = directory / name
        shim.write_text(_SHIM.replace("@REAL@", real).replace("@NAME@", name).replace("@LOG_ENV@", SHIM_LOG_ENV))
        shim.chmod(0o755)
    return f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"


def read_calls(log: Path) -> list[ShimCall]:
    if not log.exists():
        return []
    calls = []
    for line in log.read_text().splitlines():
        name, start, end, rc, first_line, args = line.split("\t", 5)
        calls.append(ShimCall(name, float(start), float(end), int(rc), first_line, args))
    return calls


def ensure_slurm() -> None:
    """The local cluster of slurm/local_cluster.sh, started if it is not up."""
    problem = ensure_local_cluster()
    if problem is not None:
        raise BenchError(f"no Slurm cluster: {problem}")


def scancel(job_ids: Sequence[str]) -> None:
    try:
        slurm_client.cancel(list(job_ids))
    except slurm_client.SlurmError:
        pass  # a benchmark's clean-up: jobs already gone


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown CPU"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
        kib = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                   if ln.startswith("MemTotal:"))
        ram = f"{kib / 2**20:.1f} GiB RAM"
    except (OSError, StopIteration):
        ram = "RAM unknown"
    return {"cpu": f"{cpu}, {os.cpu_count()} cores, {ram}", "os": platform.platform(),
            "python": platform.python_version()}


def versions() -> dict[str, str]:
    found = {}
    for dist in VERSIONED:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    try:
        found["slurm"] = slurm_client.version()
    except (slurm_client.SlurmError, IndexError):
        found["slurm"] = "not available"
    return found


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    return f"{value:.4g} {unit.removesuffix('s') if value == 1 else unit}".rstrip()  # 1 call, 2 calls


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def fmt_met(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "**missed**")


def figure_line(f: Figure) -> str:
    """The one-line console form of a figure."""
    base = f" vs {f.baseline_name} {fmt_value(f.baseline, f.unit)}" if f.baseline is not None else ""
    rat = f", ratio {fmt_ratio(f.ratio)}" if f.ratio is not None else ""
    target = f"; target {f.target}: {fmt_met(f.met).strip('*')}" if f.target else ""
    return f"{f.name}: {fmt_value(f.value, f.unit)}{base}{rat} (n={f.samples}){target}"


@dataclass
class Report:
    command: str
    repeats: int
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    # 1/5/15-minute load averages: other work on the machine is the main source of noise.
    load_start: str = field(default_factory=load_average)
    load_end: str = ""
    machine: dict[str, str] = field(default_factory=machine)
    versions: dict[str, str] = field(default_factory=versions)
    figures: list[Figure] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def markdown(self) -> str:
        m = self.machine
        lines = [
            f"## Benchmarks, {self.started:%Y-%m-%d %H:%M} UTC",
            "",
            f"- command: `{self.command}` ({self.repeats} repeats; medians; ratio = median of per-repeat ratios"
            " of ours to the baseline, each pair measured back to back)",
            f"- machine: {m['cpu']}; {m['os']}; Python {m['python']}",
            f"- load average (1/5/15 min): {self.load_start} at start, {self.load_end or '-'} at end",
            "- versions: " + ", ".join(f"{k} {v}" for k, v in self.versions.items()),
            "",
            "| figure | ours | baseline | ratio | target | met |",
            "|---|---|---|---|---|---|",
        ]
        for f in self.figures:
            base = f"{fmt_value(f.baseline, f.unit)} ({f.baseline_name})" if f.baseline is not None else "-"
            lines.append(f"| {f.name} | {fmt_value(f.value, f.unit)} | {base} | {fmt_ratio(f.ratio)} | "
                         f"{f.target or '-'} | {fmt_met(f.met)} |")
        notes = [f"- {f.name}: {f.note}" for f in self.figures if f.note]
        if notes:
            lines += ["", "Notes:", "", *notes]
        if self.errors:
            lines += ["", "Not measured:", "", *(f"- {name}: {why}" for name, why in self.errors.items())]
        return "\n".join(lines) + "\n"


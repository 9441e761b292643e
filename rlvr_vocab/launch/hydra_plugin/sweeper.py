"""`hydra/sweeper=rlvr`: Hydra's basic grid sweeper, plus what a cluster user needs before submitting.

Every point is named (from its swept values), resolved and validated before anything is
submitted (points that differ only in their seed share one validation, see plan_sweep);
completed runs are skipped and pending or running ones left alone; the rest go to the launcher
in one call, so a SLURM launcher submits one job array (one per MaxArraySize tasks).
A search (`+search=<file>`) is checked the same way, then submitted as one job array of its workers.
"""

import gc
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import Container, DictConfig, Node, OmegaConf, open_dict

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.secrets import redact_obj
from rlvr_vocab.launch.search_plan import plan_search
from rlvr_vocab.launch.search_submission import record_submission
from rlvr_vocab.launch.sweep import SweepPlan, decide, flat_config, plan_sweep, slow_saves, undo_claims
from rlvr_vocab.run.claims import submit_lock
from rlvr_vocab.run.identity import flatten
from rlvr_vocab.validation.library_check import LibraryCheck, sweep_worker
from rlvr_vocab.validation.plan import validate


class RlvrSweeper(BasicSweeper):
    def __init__(self, params: dict[str, str] | None = None) -> None:
        super().__init__(max_batch_size=None, params=params)

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        # What is loaded by now lives until exit: spare it from the collector's full passes while a hundred
        # points are composed.
        gc.freeze()
        if self.config.get("search") is not None:
            return self._search(arguments)
        libraries = sweep_worker()  # importing TRL while this process parses and composes the points
        try:
            plan = self._plan(arguments, libraries)
        finally:
            libraries.close()
        with open_dict(self.config):
            self.config.sweep_id = plan.sweep_id
        if hasattr(self.launcher, "prepare"):
            self.launcher.prepare(plan)
        single_named = len(plan.points) == 1 and any(o.split("=", 1)[0] == "run_name" for o in arguments)
        if self.config.dry_run:
            decide(plan, refuse_live=single_named, claim=False)
            print(plan.summary())  # noqa: T201
            for warning in slow_saves(plan, self.config.hydra.launcher.get("signal_delay_s")):
                print(warning)  # noqa: T201
            describe = getattr(self.launcher, "sbatch_script", lambda n: None)
            script = describe(len(plan.points))
            print(f"dry run: nothing submitted{'; the sbatch script would be:' if script else ''}")  # noqa: T201
            if script:
                print(script)  # noqa: T201
            return []
        if hasattr(self.launcher, "preflight"):
            self.launcher.preflight(len(plan.points))
        # Deciding what is live and submitting is one step for every submitter on this root.
        with submit_lock(self.config.experiments_root):
            decide(plan, refuse_live=single_named)
            print(plan.summary())  # noqa: T201
            for warning in slow_saves(plan, self.config.hydra.launcher.get("signal_delay_s")):
                print(warning)  # noqa: T201
            if not plan.to_submit:
                print("nothing to submit")  # noqa: T201
                return []
            sweep_dir = Path(self.config.hydra.sweep.dir)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            (sweep_dir / "multirun.yaml").write_text(
                OmegaConf.to_yaml(OmegaConf.create(redact_obj(OmegaConf.to_container(self.config)))))
            try:
                results = self.launcher.launch([p.overrides for p in plan.to_submit], initial_job_idx=0)
            except BaseException:
                undo_claims(plan)
                raise
        failed = [r for r in results if r.status.name == "FAILED"]
        if failed:
            sys.exit(1)
        return [results]

    def _jobs(self, arguments: list[str]) -> list[list[str]]:
        loader = self.hydra_context.config_loader
        parsed = OverridesParser.create(config_loader=loader).parse_overrides([*self._parse_config(), *arguments])
        return self.split_arguments(parsed, max_batch_size=None)[0]

    def _target(self) -> tuple[bool | None, int]:
        """The machine a job runs on: whether it has a GPU (None: this one) and its processes."""
        launcher = self.config.hydra.launcher
        on_slurm = "Slurm" in str(launcher.get("_target_"))
        # A SLURM job's machine is described by the launcher; local jobs run on this one.
        target_has_gpu = bool(launcher.get("gpus_per_node")) if on_slurm else None
        return target_has_gpu, (launcher.get("nodes") or 1) * (launcher.get("tasks_per_node") or 1)

    def _search(self, arguments: list[str]) -> Any:
        """`+search=<file>`: the search checked and its trials' configs validated, its study created, then one job
        array of `search.budget.workers` tasks: the workers, each training trials until the budget is spent
        (rlvr_vocab.launch.search_worker; the same command submitted again continues the study)."""
        jobs = self._jobs(arguments)
        if len(jobs) > 1:
            raise ConfigError("search", f"is combined with a grid of {len(jobs)} points",
                              "search those values in search.space, or submit one search per value")
        if hasattr(self.launcher, "check_settings"):
            self.launcher.check_settings()
        has_gpu, processes = self._target()
        libraries = LibraryCheck()
        cfg = SweepComposer(self.hydra_context.config_loader, self.config)(list(jobs[0]))
        name = self.config.hydra.runtime.choices.get("search") or "search"
        plan = plan_search(cfg, list(jobs[0]), name, lambda c: validate(c, has_gpu, processes, libraries), processes)
        with open_dict(self.config):
            self.config.sweep_id = plan.sweep_id  # hydra.sweep.dir (submitit's files) is named by it
        if hasattr(self.launcher, "prepare"):
            self.launcher.prepare(plan)
        workers = plan.search["budget"]["workers"]
        print(plan.describe())  # noqa: T201
        if self.config.dry_run:
            script = getattr(self.launcher, "sbatch_script", lambda n: None)(workers)
            print(f"dry run: nothing submitted{'; the sbatch script would be:' if script else ''}")  # noqa: T201
            if script:
                print(script)  # noqa: T201
            return []
        if hasattr(self.launcher, "preflight"):
            self.launcher.check_cluster_limits(workers)
            self.launcher.preflight(workers)
        from rlvr_vocab.launch.search_study import open_study
        from rlvr_vocab.launch.search_worker import trials_left

        # Created before any worker starts; submitted again, only as many workers as trials are left.
        study = open_study(plan.search, plan.sweep_id, plan.journal, about=plan.about())
        left = trials_left(study, plan.search["budget"]["n_trials"])
        if not left:
            print(f"search {plan.sweep_id}: every trial of its budget ({plan.search['budget']['n_trials']}) has "  # noqa: T201
                  "ended; nothing to submit (raise search.budget.n_trials to go on)")
            return []
        workers = min(workers, left)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / "multirun.yaml").write_text(
            OmegaConf.to_yaml(OmegaConf.create(redact_obj(OmegaConf.to_container(self.config)))))
        # Before the launch, which may wait for the workers: a trial's run is resumed by these settings meanwhile.
        record_submission(plan.experiments_root, plan.sweep_id, plan.fixed, list(self.config.hydra.overrides.hydra),
                          self.config.hydra.runtime.choices.get("hydra/launcher"))
        results = self.launcher.launch([plan.worker_overrides()] * workers, initial_job_idx=0)
        if any(r.status.name == "FAILED" for r in results):
            sys.exit(1)
        return [results]

    def _plan(self, arguments: list[str], libraries: LibraryCheck) -> SweepPlan:
        jobs = self._jobs(arguments)
        target_has_gpu, target_world_size = self._target()

        if hasattr(self.launcher, "check_settings"):
            self.launcher.check_settings()
            if not self.config.dry_run:
                self.launcher.check_cluster_limits(len(jobs))
        composer = SweepComposer(self.hydra_context.config_loader, self.config)
        return plan_sweep(
            jobs,
            compose=composer,
            validate=lambda cfg: validate(cfg, target_has_gpu, target_world_size, libraries),
            sweep_id=self.config.sweep_id,
            resolve=composer.resolved,
        )


class SweepComposer:
    """`load_sweep_config(master, overrides)`, with the defaults list composed once per distinct set of
    config-group overrides: a full compose takes 0.1-0.4 s, and a sweep's points mostly differ in values only.

    Hydra composes the defaults list, then applies the other overrides to the result: so does this.
    `resolved` gives a point's config resolved and flattened without composing each point anew.
    """

    def __init__(self, loader: ConfigLoaderImpl, master: DictConfig) -> None:
        self.loader, self.master = loader, master
        self.parser = OverridesParser.create()
        # Pickled: unpickling is a faithful copy (submitit ships configs to jobs so), 4x faster than deepcopy.
        self.bases: dict[tuple[str, ...], bytes] = {}
        # Extra search paths make groups that the loader's own repository does not know.
        self.fast = not master.hydra.searchpath
        # A grid repeats its overrides and keys: each is parsed, or looked up as a group, once.
        self._parsed: dict[str, Override] = {}
        self._groups: dict[str, bool] = {}
        self.families: dict[tuple, _Family | None] = {}

    def __call__(self, overrides: list[str]) -> DictConfig:
        parsed = self._parse(overrides)
        split = self._split(parsed)
        if split is None:
            return self.loader.load_sweep_config(self.master, overrides)
        return self._compose(parsed, *split)

    def resolved(self, overrides: list[str]) -> dict[str, Any]:
        """`flat_config(self(overrides))`, for a thousand points in the time of a few dozen full composes.

        Points with the same config-group overrides that set the same keys to other plain values (seed=0..999)
        are one family: one working config takes each point's values in turn, and only what can differ between
        them is resolved again: the values set, and the interpolations that may read them.
        """
        parsed = self._parse(overrides)
        split = self._split(parsed)
        if split is None:
            return flat_config(self.loader.load_sweep_config(self.master, overrides))
        groups, values = split
        key = (tuple(groups), tuple(o.key_or_group for o in values))
        if key not in self.families:
            cfg = self._compose(parsed, groups, values)
            flat = flat_config(cfg)
            self.families[key] = _Family.of(cfg, values, flat)
            return flat
        family = self.families[key]
        if family is not None:
            try:
                return family.resolved(parsed, values)
            except Exception:  # noqa: BLE001 - composed in full below, which raises what a full compose raises
                self.families[key] = None  # the working config may be half updated
        return flat_config(self._compose(parsed, groups, values))

    def _parse(self, overrides: list[str]) -> list[Override]:
        new = [o for o in dict.fromkeys(overrides) if o not in self._parsed]
        self._parsed.update(zip(new, self.parser.parse_overrides(new), strict=True))
        return [self._parsed[o] for o in overrides]

    def _split(self, parsed: list[Override]) -> tuple[list[str], list[Override]] | None:
        """The config-group overrides and the value overrides; None when the point must be composed in full."""
        # Hydra's own settings and package (@) overrides are rare in a grid: those points compose in full.
        if not self.fast or any(o.is_hydra_override() or o.package is not None for o in parsed):
            return None
        groups: list[str] = []
        values: list[Override] = []
        for o in parsed:
            if self._selects_config(o):
                groups.append(o.input_line)
            else:
                values.append(o)
        return groups, values

    def _compose(self, parsed: list[Override], groups: list[str], values: list[Override]) -> DictConfig:
        key = tuple(groups)
        if key not in self.bases:
            self.bases[key] = pickle.dumps(self.loader.load_sweep_config(self.master, groups))
        cfg = pickle.loads(self.bases[key])
        self._apply(cfg, parsed, values)
        return cfg

    @staticmethod
    def _apply(cfg: DictConfig, parsed: list[Override], values: list[Override]) -> None:
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        _set_hydra_overrides(cfg, parsed)

    def _selects_config(self, override: Override) -> bool:
        """Hydra's own split (hydra._internal.defaults_list.Overrides): a group override changes the defaults list."""
        group = override.key_or_group
        if group not in self._groups:
            self._groups[group] = self.loader.repository.group_exists(group)
        return self._groups[group] and not isinstance(override.value(), dict)


def _set_hydra_overrides(cfg: DictConfig, parsed: list[Override]) -> None:
    """Hydra's node as a point's compose leaves it: the point's overrides, and its directory name made of them."""
    cfg.hydra.overrides.task = [o.input_line for o in parsed]
    names = cfg.hydra.job.config.override_dirname
    cfg.hydra.job.override_dirname = get_overrides_dirname(
        overrides=parsed, kv_sep=names.kv_sep, item_sep=names.item_sep, exclude_keys=names.exclude_keys)


@dataclass
class _Family:
    """Sweep points that differ only in the plain values they set on the same keys (see SweepComposer.resolved)."""

    cfg: DictConfig  # the family's base with the latest point's overrides applied
    flat: dict[str, Any]  # the first point's flat_config
    keys: list[str]  # the keys the points set
    dynamic: list[str]  # interpolated keys that may read them (or Hydra's node, which holds each point's overrides)
    first: dict[str, str]  # key: the first point's override of it
    applied: dict[str, str] = field(init=False)  # key: the override the working config holds
    below: dict[str, list[str]] = field(init=False)  # key: its entries in flat (the key, or those below it)

    def __post_init__(self) -> None:
        self.applied = dict(self.first)
        self.below = {k: [f for f in self.flat if f == k or f.startswith(f"{k}.")] for k in self.keys + self.dynamic}

    @classmethod
    def of(cls, cfg: DictConfig, values: list[Override], flat: dict[str, Any]) -> "_Family | None":
        """None unless each override sets a plain value on a value the config has (not a node of its own)."""
        first: dict[str, str] = {}
        for o in values:
            if o.is_delete() or o.is_add() or o.is_force_add() or isinstance(o.value(), (dict, list)):
                return None
            try:
                node = _node_at(cfg, o.key_or_group)
            except Exception:  # noqa: BLE001 - a key through a list or a missing node: composed in full
                return None
            if node is None or isinstance(node, Container) or o.key_or_group in first:
                return None
            first[o.key_or_group] = o.input_line
        keys = list(first)
        dynamic = [k for k in _dynamic(_interpolations(cfg), keys) if k not in first]
        return cls(cfg, flat, keys, dynamic, first)

    def resolved(self, parsed: list[Override], values: list[Override]) -> dict[str, Any]:
        """This point's flat_config: its values set on the working config, and what may differ resolved again."""
        changed = [o for o in values if o.input_line != self.applied[o.key_or_group]]
        ConfigLoaderImpl._apply_overrides_to_config(changed, self.cfg)
        self.applied.update((o.key_or_group, o.input_line) for o in changed)
        # A value that is an interpolation may read anything, as the dynamic keys may.
        interpolated = [o.key_or_group for o in values if "${" in o.input_line.split("=", 1)[-1]]
        if self.dynamic or interpolated:
            _set_hydra_overrides(self.cfg, parsed)
        flat = dict(self.flat)
        for key in [k for k in self.keys if self.applied[k] != self.first[k]] + interpolated + self.dynamic:
            # As OmegaConf.to_container(resolve=True) resolves each node on its way, then flatten.
            node = _node_at(self.cfg, key)
            value = OmegaConf.to_container(node, resolve=True) if isinstance(node, Container) else node._value()
            for old in self.below[key]:
                flat.pop(old, None)
            flat.update(flatten(value, f"{key}."))
        return flat


# Resolvers whose value depends on their arguments only (and the environment, the same for every point).
_PURE_RESOLVERS = ("oc.env", "oc.decode")


def _node_at(cfg: DictConfig, key: str) -> Node | None:
    """The node at a dotted key, each node on the way dereferenced (an interpolation resolved)."""
    node: Node | None = cfg
    for part in key.split("."):
        node = node._get_node(part, throw_on_missing_value=False)  # type: ignore[union-attr]
        if node is None:
            return None
        node = node._dereference_node()
    return node


def _interpolations(node: Container, prefix: str = "") -> dict[str, list[str]]:
    """The interpolations in the config by dotted key (below dicts: a list is one value, as `flatten` keeps it),
    Hydra's own node left out."""
    found: dict[str, list[str]] = {}
    for key in node.keys():  # type: ignore[union-attr]
        if not prefix and key == "hydra":
            continue
        child = node._get_node(key, throw_on_missing_value=False)
        path = f"{prefix}{key}"
        if isinstance(child, DictConfig) and not (child._is_interpolation() or child._is_none() or child._is_missing()):
            found.update(_interpolations(child, f"{path}."))
        else:
            texts = _texts(child)
            if texts:
                found[path] = texts
    return found


def _texts(node: Node) -> list[str]:
    if node._is_interpolation():
        return [node._value()]
    if not isinstance(node, Container) or node._is_none() or node._is_missing():
        return []
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))  # type: ignore[arg-type]
    return [t for k in keys for t in _texts(node._get_node(k, throw_on_missing_value=False))]


def _dynamic(interpolations: dict[str, list[str]], overridden: list[str]) -> list[str]:
    """The interpolated keys whose value may differ between points: those that read an overridden key, Hydra's
    node or another such key, call a resolver not known to be pure, or refer in a way not followed here."""
    refs = {key: _references(texts) for key, texts in interpolations.items()}
    found: dict[str, bool] = {}

    def related(a: str, b: str) -> bool:
        return a == b or a.startswith(f"{b}.") or b.startswith(f"{a}.")

    def dynamic(key: str, seen: frozenset[str]) -> bool:
        if key not in found:
            found[key] = key in seen or refs[key] is None or any(  # a cycle fails to resolve either way
                ref.split(".")[0] == "hydra" or any(related(ref, o) for o in overridden)
                or any(related(ref, k) and dynamic(k, seen | {key}) for k in interpolations)
                for ref in refs[key])
        return found[key]

    return [key for key in interpolations if dynamic(key, frozenset())]


def _references(texts: list[str]) -> set[str] | None:
    """The absolute keys these interpolations read; None if they call another resolver or refer relatively."""
    from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser as Grammar
    from omegaconf.grammar_parser import parse

    found = set()
    for text in texts:
        stack = [parse(text)]
        while stack:
            ctx = stack.pop()
            if isinstance(ctx, Grammar.InterpolationResolverContext) and \
                    ctx.resolverName().getText() not in _PURE_RESOLVERS:
                return None
            if isinstance(ctx, Grammar.InterpolationNodeContext):
                key = ctx.getText()[2:-1]
                if not key or key.startswith(".") or "${" in key or "[" in key:
                    return None
                found.add(key)
            stack.extend(getattr(ctx, "children", None) or [])
    return found

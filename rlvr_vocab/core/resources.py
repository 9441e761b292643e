"""Files shipped with the package besides its modules: the sbatch wrappers and the local-cluster script.

In a checkout they are `slurm/` at the top; an installed wheel carries the same files as `rlvr_vocab/slurm_scripts/`.
`python -m rlvr_vocab.core.resources NAME` prints one's path, for use from any directory:

    sbatch $(python -m rlvr_vocab.core.resources train_baseline.sh) training.learning_rate=3e-6
"""

import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # rlvr_vocab/, above core/
_CHECKOUT_SCRIPTS = _PACKAGE.parent / "slurm"
_PACKAGED_SCRIPTS = _PACKAGE / "slurm_scripts"


def scripts_dir() -> Path:
    """The checkout's slurm/ (where a user edits the wrappers' #SBATCH headers), else the installed copy."""
    # A checkout is recognised by its pyproject.toml: site-packages may hold an unrelated top-level `slurm`.
    if (_PACKAGE.parent / "pyproject.toml").is_file() and _CHECKOUT_SCRIPTS.is_dir():
        return _CHECKOUT_SCRIPTS
    return _PACKAGED_SCRIPTS


def script_names() -> list[str]:
    return sorted(p.name for p in scripts_dir().glob("*.sh"))


def script_path(name: str) -> Path:
    """The path of a shipped script (`train_baseline.sh`, `train_reasoning.sh`, `local_cluster.sh`)."""
    path = scripts_dir() / name
    if not path.is_file():
        from rlvr_vocab.core.errors import ConfigError

        raise ConfigError(
            f"script '{name}'", f"is not shipped in {scripts_dir()}", f"use one of {', '.join(script_names())}"
        )
    return path


def main(argv: list[str] | None = None) -> int:
    from rlvr_vocab.core.errors import ConfigError

    names = sys.argv[1:] if argv is None else argv
    if not names or names[0] in ("-h", "--help"):
        sys.stdout.write(f"usage: python -m rlvr_vocab.core.resources NAME...\nNAME: {', '.join(script_names())}\n")
        return 0 if names else 2
    try:
        paths = [script_path(name) for name in names]
    except ConfigError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    sys.stdout.write("".join(f"{p}\n" for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())

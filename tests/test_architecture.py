"""The package's layers as docs/architecture.md draws them: every module in a folder of one layer, imports only
sideways or down (function-level imports included), no import cycle, no module past the size limit."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rlvr_vocab"
# Bottom to top; a module may import from its own layer and the layers below. The root package (`rlvr_vocab`,
# CONF_DIR) is the foundation's. Keep in step with docs/architecture.md.
LAYERS = (
    ("core",),
    ("slurm",),
    ("run",),
    ("ops",),
    ("embedded", "reasoning_vocab"),
    ("config",),
    ("model",),
    ("eval",),
    ("validation",),
    ("registry", "report", "launch"),
    ("job", "doctor"),
    ("train", "__main__", "cli", "demo", "bench"),
)
MAX_LINES = 500
# Hydra finds our plugins under this name (pyproject.toml's package-dir): the same files as launch/hydra_plugin.
ALIASES = {"hydra_plugins.rlvr_vocab": "rlvr_vocab.launch.hydra_plugin"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The package module `name` (a module, or a name inside one) is."""
    for alias, real in ALIASES.items():
        if name == alias or name.startswith(alias + "."):
            name = real + name[len(alias):]
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> set[str]:
    """The package modules `module` imports, anywhere in it (function-level imports too)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *filter(None, [base])])
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            owner = _owner(name) if name.startswith(("rlvr_vocab", "hydra_plugins.rlvr_vocab")) else None
            # A package's own __init__ (what `from package import module` also names) is not an edge.
            if owner and owner != module and not any(o.startswith(owner + ".") for o in _submodules(names)):
                found.add(owner)
    return found


def _submodules(names: list[str]) -> list[str]:
    return [o for o in (_owner(n) for n in names) if o]


def layer(module: str) -> int:
    if module == "rlvr_vocab":
        return 0
    top = module.split(".")[1]
    for i, folders in enumerate(LAYERS):
        if top in folders:
            return i
    raise AssertionError(f"{module} is in no layer: add its folder to LAYERS and to docs/architecture.md")


def test_every_module_has_a_layer():
    for module in MODULES:
        layer(module)


def test_no_import_goes_up_a_layer():
    upward = [f"{m} (layer {layer(m)}) imports {i} (layer {layer(i)})"
              for m in sorted(MODULES) for i in sorted(imports(m)) if layer(i) > layer(m)]
    assert upward == []


def test_no_import_cycle():
    graph = {m: imports(m) for m in MODULES}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(m: str) -> None:  # Tarjan's strongly connected components
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for n in graph[m]:
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on_stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            component = []
            while True:
                n = stack.pop()
                on_stack.discard(n)
                component.append(n)
                if n == m:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    assert cycles == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines: split it by concern"


def test_the_checker_sees_function_level_imports():
    # The cycle this test exists for was hidden in function bodies.
    assert "rlvr_vocab.validation.prefetch" in imports("rlvr_vocab.validation.sections")


def test_the_architecture_page_draws_these_layers():
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    block = page.split("<!-- layers:", 1)[1].split("```", 2)[1]
    drawn = {}
    for line in block.strip().splitlines():
        number, *words = line.split()
        drawn[int(number)] = {w.removesuffix("/").removesuffix(".py") for w in words if w.endswith(("/", ".py"))}
    assert drawn == {i: set(folders) for i, folders in enumerate(LAYERS)}

"""The package layers, checked on the source: the shared core (`tinytrail/`) imports no
process package (collector, streams, api) nor the CLI; process packages do not import
each other except the documented uses (`api` -> `streams.rebuild` for the admin rebuild,
`cli` -> all); the modules of the process packages import each other without cycles;
Faust (with `mode`, its service framework) is imported by `streams/consumer.py` alone; and
the API's import closure (`api` -> `streams.rebuild` -> ...) never reaches Faust."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROCESSES = {"collector", "streams", "api", "cli"}
ALLOWED = {("api", "streams"), ("cli", "collector"), ("cli", "streams"), ("cli", "api")}
FAUST = {"faust", "mode"}  # Faust and its service framework
FAUST_MODULE = "streams.consumer"  # the one module that may import them


def imports(path: pathlib.Path) -> set[str]:
    """Absolute module names `path` imports (top level and inside functions)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def modules() -> dict[str, pathlib.Path]:
    found = {}
    for pkg in ("tinytrail", *sorted(PROCESSES)):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(p for p in rel.parts if p != "__init__")
            found[name] = path
    return found


def test_the_core_imports_no_process_package() -> None:
    bad = sorted(
        f"{name} imports {imp}"
        for name, path in modules().items() if name.split(".")[0] == "tinytrail"
        for imp in imports(path) if imp.split(".")[0] in PROCESSES
    )
    assert bad == []


def test_process_packages_import_each_other_only_as_documented() -> None:
    bad = sorted(
        f"{name} imports {imp}"
        for name, path in modules().items() if name.split(".")[0] in PROCESSES
        for imp in imports(path)
        if imp.split(".")[0] in PROCESSES and imp.split(".")[0] != name.split(".")[0]
        and (name.split(".")[0], imp.split(".")[0]) not in ALLOWED
    )
    assert bad == []


def test_no_import_cycle_between_modules() -> None:
    mods = modules()
    graph = {name: {imp for imp in imports(path) if imp in mods and imp != name}
             for name, path in mods.items()}
    # Package __init__ imports of their own submodules are re-exports, not cycles.
    for name in graph:
        graph[name] = {d for d in graph[name] if not name.startswith(d + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep):], dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_faust_is_imported_by_streams_consumer_alone() -> None:
    """Every override of Faust internals, its tables, codecs and topic bindings live in
    `streams/consumer.py` (checked against the release they were written for by
    tests/streams/test_faust_version.py); any other module uses what it exports. An import
    under `if TYPE_CHECKING:` or inside a function counts too."""
    mods = modules()
    assert FAUST_MODULE in mods
    bad = sorted(
        f"{name} imports {imp}"
        for name, path in mods.items() if name != FAUST_MODULE
        for imp in imports(path) if imp.split(".")[0] in FAUST
    )
    assert bad == []
    assert "faust" in {imp.split(".")[0] for imp in imports(mods[FAUST_MODULE])}


def import_graph(mods: dict[str, pathlib.Path]) -> dict[str, set[str]]:
    """Module -> the repository modules it imports (anywhere in the file), each with its
    parent packages (importing `a.b.c` runs `a/__init__.py` and `a/b/__init__.py`)."""
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for imp in imports(path):
            parts = imp.split(".")
            deps.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def api_closure() -> dict[str, str | None]:
    """Every repository module the API may load (imports inside functions too, e.g.
    api/admin.py's `streams.rebuild`) -> the module that imports it first (None: an
    `api` module)."""
    mods = modules()
    graph = import_graph(mods)
    via: dict[str, str | None] = {m: None for m in mods if m.split(".")[0] == "api"}
    todo = sorted(via)
    while todo:
        mod = todo.pop()
        for dep in sorted(graph[mod]):
            if dep not in via:
                via[dep] = mod
                todo.append(dep)
    return via


def test_the_api_import_closure_never_reaches_faust() -> None:
    """The API loads `streams.rebuild` for the admin rebuild (ALLOWED above); nothing it
    reaches from there, at any depth, may import Faust or `mode` (a `from
    streams.session_state import ...` in streams/rebuild.py would: session_state imports
    streams.consumer). Imports inside functions count, as above. The failure shows the
    chain of imports from the API."""
    mods = modules()
    via = api_closure()

    def chain(mod: str) -> str:
        path = [mod]
        while (up := via[path[-1]]) is not None:
            path.append(up)
        return " <- ".join(path)

    bad = sorted(f"{chain(mod)} imports {imp}" for mod in via
                 for imp in imports(mods[mod]) if imp.split(".")[0] in FAUST)
    assert bad == [], bad
    assert "streams.rebuild" in via  # the closure really is followed into streams/


def test_importing_the_api_closure_loads_no_faust() -> None:
    """The same at run time, third-party imports included: a fresh interpreter imports
    every module of the API's closure (`api_closure`) and Faust is not loaded."""
    names = sorted(api_closure())
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'faust', 'mode'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]", f"loaded: {out.stdout.strip()} (the chain: the test above)"


def test_no_test_imports_a_module_named_conftest() -> None:
    """`from conftest import ...` resolves to whichever conftest.py pytest imported first
    under that bare name, so it breaks when test folders are run in another order
    (tests/faults before tests/api did). Shared test code lives in named modules."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("*.py")
        if "node_modules" not in path.parts
        and any(name == "conftest" or name.startswith("conftest.") for name in imports(path))
    ]
    assert offenders == []

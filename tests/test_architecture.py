"""The folders are the architecture (colorgan.LAYERS): every import in the package goes to its own layer or one
before it, no modules import each other in a cycle, and each sub-package's docstring says what it may import.
The imports are read from the source (ast), function-local and type-checking ones included."""
import ast
import textwrap
from pathlib import Path

import pytest

import colorgan

PACKAGE = Path(colorgan.__file__).parent


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path) -> set[str]:
    """The package's modules that `path` imports (a submodule named in `from package import name` counts as
    that module)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = root.name
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == top}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            if base.split(".")[0] != top:
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if module_file(sub, root) else base)
    return found - {name}


def module_file(name: str, root: Path) -> Path | None:
    path = root.parent.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def layer_of(name: str, layers: tuple) -> int:
    parts = name.split(".")
    if parts[-1] == "__main__":  # `python -m colorgan`: the command line, the top
        return len(layers) - 1
    return layers.index(parts[1]) if len(parts) > 2 or (len(parts) == 2 and parts[1] in layers) else 0


def import_graph(root: Path) -> dict[str, set[str]]:
    return {module_name(p, root): imports_of(p, root) for p in sorted(root.rglob("*.py"))}


def problems(root: Path, layers: tuple) -> list[str]:
    """Upward imports and import cycles in the package at `root`, one line each."""
    graph = import_graph(root)
    found = [f"{a} imports {b}: {layers[layer_of(b, layers)]} is above {layers[layer_of(a, layers)]}"
             for a, targets in graph.items() for b in sorted(targets) if layer_of(b, layers) > layer_of(a, layers)]
    # a cycle: a module reachable from itself (each reported once, from its smallest member)
    for start in sorted(graph):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start and min(path) == start:
                    found.append("cycle: " + " -> ".join(path + [start]))
                elif nxt not in seen and nxt in graph:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    return found


def test_every_import_goes_down_the_layers_and_none_cycles():
    assert problems(PACKAGE, colorgan.LAYERS) == []


def test_each_layer_is_a_folder_whose_docstring_names_what_it_may_import():
    folders = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py") if p.parent.name != "__pycache__")
    assert sorted(colorgan.LAYERS[1:]) == [f for f in folders if f in colorgan.LAYERS]
    for i, layer in enumerate(colorgan.LAYERS[1:-1], start=1):
        doc = " ".join(ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text())).split())
        below = ["the shared helpers at colorgan's top level"] + list(colorgan.LAYERS[1:i])
        assert f"May import: {', '.join(below)} (colorgan.LAYERS)." in doc, (layer, doc)


def test_the_check_finds_an_upward_import_and_a_cycle(tmp_path):
    """The checker itself, on a package made to break both rules."""
    root = tmp_path / "pkg"
    files = {
        "__init__.py": "",
        "helpers.py": "from pkg.low.a import thing\n",  # the shared top level reaching up
        "low/__init__.py": "",
        "low/a.py": "def thing():\n    from . import b\n",  # a -> b -> a, one of them inside a function
        "low/b.py": "from pkg.low import a\n",
        "high/__init__.py": "",
        "high/c.py": "from pkg.low.a import thing\nfrom pkg import helpers\n",  # both allowed
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    found = problems(root, ("pkg", "low", "high"))
    assert found == ["pkg.helpers imports pkg.low.a: low is above pkg",
                     "cycle: pkg.low.a -> pkg.low.b -> pkg.low.a"]


@pytest.mark.parametrize("name", ["Colorizer", "Config", "train", "resume", "load_run", "ColorganError"])
def test_the_top_level_names_still_import(name):
    assert callable(getattr(colorgan, name))

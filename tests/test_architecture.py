"""The shape of the code: no import circle in tfmm, and long modules say why they are long."""

import ast
import os

import tfmm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tfmm.__file__)))
MAX_LINES = 300


def _modules():
    found = {}
    for folder, _, files in os.walk(os.path.join(ROOT, "tfmm")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                found[module[: -len(".__init__")] if module.endswith(".__init__") else module] = path
    return found


def _imports(modules):
    """Module -> tfmm modules it imports anywhere (at the top or inside a function)."""
    graph = {}
    for module, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                         for a in node.names]
            else:
                continue
            targets.update(n for n in names if n in modules and n != module)
        graph[module] = targets
    return graph


def test_no_module_imports_its_way_back_to_itself():
    graph = _imports(_modules())
    state, cycles = {}, []

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # Package __init__ files import their own submodules; a submodule importing its
    # package back is how `from tfmm.data import x` reads, and is not a circle of logic.
    cycles = [c for c in cycles if not any(b.startswith(a + ".") for a, b in zip(c, c[1:]))]
    assert not cycles, cycles


def test_the_graph_sees_lazy_imports():
    graph = _imports(_modules())
    assert "tfmm.artifacts" in graph["tfmm.optimization.distillation"]  # imported inside `distill`


def test_modules_over_300_lines_say_why_in_their_opening_docstring():
    long = {}
    for module, path in _modules().items():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if text.count("\n") > MAX_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            long[module] = "Length:" in doc
    assert all(long.values()), [m for m, ok in long.items() if not ok]


def test_the_readme_policy_table_is_the_registry():
    from tfmm.optimization.policy_table import policy_table_markdown

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert policy_table_markdown() in readme, "run: python scripts/policy_table.py"

"""Read the two sources of a notebook: the reference module (``solutions/exN_*.py``) and its hidden suite.

The suite's graded tests with their markers, the module's top-level
statements (answer functions, given code, imports), the code that relative
imports pull in from earlier exercises, and which exercises have both
sources. Everything the builder, the extractor and the bundle read comes
through here.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from autograder.exercises import ORDER as EXERCISE_ORDER  # the order of the chapter: the registry
from autograder.regions import BEGIN, TODO  # the one parser

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
SUITES = ROOT / "autograder" / "suites"
SOURCE = ROOT / "course" / "source"


class NotebookError(ValueError):
    pass


@dataclass
class SuiteTest:
    name: str
    function: str
    points: float
    title: str
    learning: bool = False


@dataclass
class Stmt:
    node: ast.stmt
    text: str
    kind: str  # future | import | relimport | all | main | answer | given
    defines: set[str] = field(default_factory=set)
    name: str = ""


def _mark_arg(dec: ast.expr, mark: str):
    """The first argument of ``@pytest.mark.<mark>(arg)``, or None."""
    if isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) and dec.func.attr == mark:
        inner = dec.func.value
        if isinstance(inner, ast.Attribute) and inner.attr == "mark" and dec.args:
            return ast.literal_eval(dec.args[0])
    if isinstance(dec, ast.Attribute) and dec.attr == mark and isinstance(dec.value, ast.Attribute) \
            and dec.value.attr == "mark":
        return True
    return None


def suite_tests(exercise: str) -> list[SuiteTest]:
    """The tests of ``autograder/suites/test_<exercise>.py`` in file order, with their markers."""
    path = SUITES / f"test_{exercise}.py"
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
            continue
        function = points = None
        learning = False
        for dec in node.decorator_list:
            function = _mark_arg(dec, "function") if function is None else function
            points = _mark_arg(dec, "points") if points is None else points
            learning = learning or bool(_mark_arg(dec, "learning"))
            if _mark_arg(dec, "parametrize") is not None:
                raise NotebookError(f"{path.name}: {node.name} is parametrized; notebooks need one test per cell")
        if points is None:
            continue  # not a graded test
        doc = ast.get_docstring(node) or node.name.removeprefix("test_").replace("_", " ")
        out.append(SuiteTest(node.name, str(function or ""), float(points), doc.strip().splitlines()[0], learning))
    return out


def _defined_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    names = set()
    targets = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    for t in targets:
        for n in ast.walk(t):
            if isinstance(n, ast.Name):
                names.add(n.id)
    return names


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__name__" in _used_names(node.test)


def parse_module(path: Path) -> list[Stmt]:
    """The module's top-level statements with their text (comments right above a statement included)."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source, str(path))
    out = []
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the module docstring: the notebook has its own prose
    for node in body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        end = node.end_lineno  # the AST ends at the last statement: keep the indented comments after it
        while end < len(lines) and (not lines[end].strip() or
                                    (lines[end][:1].isspace() and lines[end].lstrip().startswith("#"))):
            end += 1
        text = "\n".join(lines[start:end]).rstrip() + "\n"
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            kind = "future"
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            kind = "relimport"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            kind = "import"
        elif isinstance(node, ast.Assign) and _defined_names(node) == {"__all__"}:
            kind = "all"
        elif _is_main_guard(node):
            kind = "main"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "### BEGIN SOLUTION" in text:
            kind = "answer"
        else:
            kind = "given"
        if kind in ("given", "main") and "### BEGIN SOLUTION" in text:
            raise NotebookError(f"{path.name}:{node.lineno}: a solution region outside a top-level function")
        name = getattr(node, "name", "")
        out.append(Stmt(node, text, kind, _defined_names(node), name))
    return out


def answer_source(text: str) -> str:
    """A function's source with each region's ``# TODO:`` line moved above ``### BEGIN SOLUTION``."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = BEGIN.match(lines[i])
        if m:
            if i + 1 < len(lines) and TODO.match(lines[i + 1]):
                out.append(lines[i + 1])
                out.append(lines[i])
                i += 2
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out).rstrip() + "\n"


def _import_text(node: ast.ImportFrom | ast.Import, keep: set[str] | None = None) -> str:
    """An import statement, optionally restricted to the names in ``keep``."""
    aliases = [a for a in node.names if keep is None or (a.asname or a.name).split(".")[0] in keep]
    if not aliases:
        return ""
    parts = [a.name + (f" as {a.asname}" if a.asname else "") for a in aliases]
    if isinstance(node, ast.Import):
        return "\n".join(f"import {p}" for p in parts) + "\n"
    return f"from {node.module} import {', '.join(parts)}\n"


# ====================================================================== dependencies between exercises
@dataclass
class Dependency:
    module: str             # e.g. "ex3_baseline"
    imports: list[str]      # absolute import lines the pasted code needs
    given: list[Stmt]       # helper statements (no solution region)
    answers: list[Stmt]     # functions the student pastes from that exercise


def _module_path(name: str) -> Path:
    return SOLUTIONS / f"{name}.py"


def resolve_dependencies(stmts: list[Stmt], own: str) -> list[Dependency]:
    """What the relative imports of a module need, as self-contained notebook cells."""
    own_defs: dict[str, Stmt] = {}
    for s in stmts:
        if s.kind not in ("answer", "given"):
            continue
        for n in s.defines:
            own_defs[n] = s
    wanted: dict[str, set[str]] = {}
    for s in stmts:
        if s.kind == "relimport":
            node = s.node
            if node.level != 1 or not node.module:
                raise NotebookError(f"{own}: unsupported relative import {s.text.strip()!r}")
            wanted.setdefault(node.module, set()).update(a.name for a in node.names)
            for a in node.names:
                if a.asname and a.asname != a.name:
                    raise NotebookError(f"{own}: 'import ... as' in a relative import is not supported")
    deps: list[Dependency] = []
    seen_modules: set[str] = {own}
    order = sorted(wanted, key=lambda m: EXERCISE_ORDER.index(m) if m in EXERCISE_ORDER else 99)
    queue = [(m, wanted[m]) for m in order]
    provided: set[str] = set()
    while queue:
        module, names = queue.pop(0)
        path = _module_path(module)
        if not path.is_file():
            raise NotebookError(f"{own} imports from {module}, which does not exist yet")
        dstmts = parse_module(path)
        defs: dict[str, Stmt] = {}
        for s in dstmts:
            for n in s.defines:
                defs.setdefault(n, s)
        need: set[str] = set()
        stack = list(names)
        while stack:
            n = stack.pop()
            if n in need:
                continue
            if n not in defs:
                raise NotebookError(f"{own}: {module} defines no {n!r}")
            need.add(n)
            s = defs[n]
            if s.kind in ("answer", "given"):
                stack.extend(x for x in _used_names(s.node) if x in defs and x not in need)
        imports, given, answers, sub = [], [], [], {}
        for s in dstmts:
            hit = s.defines & need
            if not hit:
                continue
            if s.kind == "import":
                imports.append(_import_text(s.node, hit))
            elif s.kind == "relimport":
                sub.setdefault(s.node.module, set()).update(hit)
            elif s.kind in ("answer", "given"):
                clash = [n for n in s.defines if n in own_defs and own_defs[n].text != s.text]
                if clash:
                    raise NotebookError(f"{own} and {module} both define {clash}; rename one of them "
                                        "(the notebook would hold both)")
                if any(n in own_defs for n in s.defines) or s.defines <= provided:
                    continue  # identical code is already in the notebook
                (answers if s.kind == "answer" else given).append(s)
                provided |= s.defines
        for m, ns in sub.items():
            if m not in seen_modules:
                queue.append((m, ns))
        seen_modules.add(module)
        deps.append(Dependency(module, imports, given, answers))
    deps.sort(key=lambda d: EXERCISE_ORDER.index(d.module) if d.module in EXERCISE_ORDER else 99)
    return deps


def available_exercises() -> list[str]:
    names = [p.name[len("test_"):-3] for p in SUITES.glob("test_ex*_*.py")]
    names = [n for n in names if _module_path(n).is_file()]
    return sorted(names, key=lambda n: (EXERCISE_ORDER.index(n) if n in EXERCISE_ORDER else 99, n))


def _imports_relatively(node: ast.AST) -> bool:
    """Imports a sibling module (``from .ex3_baseline import ...``) or a demo (``from demos...``):
    code a notebook cannot hold, so it is not put in one."""
    return any(isinstance(n, ast.ImportFrom) and (n.level > 0 or (n.module or "").split(".")[0] == "demos")
               for n in ast.walk(node))


def _test_uses(exercise: str, names: set[str]) -> dict[str, set[str]]:
    """For each suite test: the notebook functions it calls (string constants naming them,
    followed through the suite's own helper functions)."""
    path = SUITES / f"test_{exercise}.py"
    tree = ast.parse(path.read_text(), str(path))
    funcs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    out = {}
    for name, node in funcs.items():
        if not name.startswith("test_"):
            continue
        seen, stack, used = set(), [node], set()
        while stack:
            cur = stack.pop()
            if cur.name in seen:
                continue
            seen.add(cur.name)
            for n in ast.walk(cur):
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in names:
                    used.add(n.value)
                elif isinstance(n, ast.Name) and n.id in funcs and n.id not in seen:
                    stack.append(funcs[n.id])
        out[name] = used
    return out

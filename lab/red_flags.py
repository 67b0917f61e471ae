"""What honest task code never needs, found by reading a submission's source (it is never run).

Code in the test process can forge that process's report, so besides the runtime defences the grader
looks for the tools of forgery: reaching into pytest, the harness or the interpreter, starting or
stopping processes, objects that equal anything, reading the tests or the reference. A flag never
changes a score; a person reads it beside the grade. A determined author can hide from any static
scan, so the flags name the cheats tried in practice, and the course's own code must scan clean.
"""

from __future__ import annotations

import ast
import re

RUNNER = "reaches into the test runner"
PROCESS = "starts or stops processes outside the test's control"
FRAMES = "reads the frames, and so the variables, of the tests that call it"
RUNS_CODE = "runs code built at run time"
IMPORTS = "changes how the test process imports modules"
HOOKS = "hooks into the test process as it runs"
TIMER = "can stop or dodge the per-test time limit"

MODULES = {  # an import of these (or of any of their submodules) -> why honest task code never needs it
    "_pytest": RUNNER, "pytest": RUNNER, "pluggy": RUNNER, "lab": "the grading harness",
    "gc": "walks the objects of the test process", "ctypes": "edits the interpreter's memory",
    "cffi": "edits the interpreter's memory", "atexit": "runs code after the tests, as the process exits",
    "inspect": FRAMES, "pdb": FRAMES, "bdb": FRAMES, "linecache": "reads source files, the tests' among them",
    "faulthandler": HOOKS, "resource": "changes the limits of the test process",
    "multiprocessing": PROCESS, "subprocess": PROCESS, "pty": PROCESS, "posix": "the os module without its name",
    "marshal": "loads compiled code", "dis": "reads compiled code", "builtins": "can replace the built-ins the tests use",
    "importlib": "loads modules by name or path", "zipimport": IMPORTS, "runpy": "runs other files as code",
    "code": RUNS_CODE, "codeop": RUNS_CODE,
}
ALLOWED = {"importlib.metadata", "importlib.resources"}  # read package data, load nothing

ATTRIBUTES = {  # module.attribute, whatever name the module was imported as -> why
    **{f"os.{name}": PROCESS for name in (
        "fork forkpty kill killpg abort system popen register_at_fork execl execle execlp execlpe execv execve "
        "execvp execvpe spawnl spawnle spawnlp spawnlpe spawnv spawnve spawnvp spawnvpe posix_spawn posix_spawnp"
    ).split()},
    "os._exit": "ends the test process before it can report", "os.dup2": "redirects the test process's files",
    "sys.modules": "reaches every module of the test process", "sys._getframe": FRAMES, "sys._current_frames": FRAMES,
    "sys.settrace": HOOKS, "sys.setprofile": HOOKS, "sys.addaudithook": HOOKS, "sys.excepthook": HOOKS,
    "sys.unraisablehook": HOOKS, "sys.meta_path": IMPORTS, "sys.path_hooks": IMPORTS,
    "sys.path_importer_cache": IMPORTS, "threading.settrace": HOOKS, "threading.setprofile": HOOKS,
    "threading.settrace_all_threads": HOOKS, "threading.setprofile_all_threads": HOOKS,
    "threading.excepthook": HOOKS, "traceback.walk_stack": FRAMES, "traceback.extract_stack": FRAMES,
    "traceback.format_stack": FRAMES, "traceback.StackSummary": FRAMES,
    # import signal is ordinary (a service stops on SIGTERM); pytest-timeout's alarm is not its to touch
    **{f"signal.{name}": TIMER for name in "alarm setitimer pthread_kill pthread_sigmask SIGALRM SIGVTALRM "
                                            "SIGPROF SIG_IGN".split()},
}

ANY_OBJECT = {  # attributes that reach code, globals or frames, on whatever object they are read
    **dict.fromkeys(["__code__", "co_code"], "reads or swaps a function's compiled code"),
    **dict.fromkeys(["__globals__", "__closure__"], "reaches another function's variables"),
    **dict.fromkeys(["__subclasses__", "__mro__"], "walks classes to reach objects it was not given"),
    **dict.fromkeys("f_back f_locals f_globals f_builtins tb_frame gi_frame cr_frame ag_frame".split(), FRAMES),
}
NAMES = {  # built-in names, wherever they are used (aliasing `e = eval` included)
    "__builtins__": "can replace the built-ins the tests use", "__import__": "imports without an import statement",
    "exec": RUNS_CODE, "eval": RUNS_CODE, "compile": RUNS_CODE,
}
IMPORT_CALLS = {"__import__", "importlib.import_module", "importlib.__import__", "builtins.__import__"}
ATTRIBUTE_CALLS = {"getattr", "setattr", "hasattr", "delattr"}
BINARY = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__contains__"}
UNARY = {"__bool__", "__len__", "__hash__"}
ISINSTANCE = {"__instancecheck__", "__subclasscheck__", "__class__"}
MODULE_DUNDERS = {"__name__", "__file__", "__spec__", "__loader__", "__path__", "__package__", "__builtins__"}

PATHS = [(re.compile(pattern), reason) for pattern, reason in [
    (r"/proc\b", "the test runner's memory and files"), (r"/dev/fd\b", "the test process's open files"),
    (r"/etc/passwd", "the machine's accounts"), (r"(^|/)solutions(/|$)", "the reference solutions"),
    (r"quiz\.toml|quiz_key", "the quiz and its answer key"), (r"/autograder", "the autograder's files"),
    (r"(^|/)test_\w*\.py\b|conftest", "the instructor's tests"), (r"site-packages", "installed packages, pytest's"),
    (r"^(LAB|PYTEST)_[A-Z_]*$", "a variable of the test run, such as the report file's path"),
]]
PARENT = re.compile(r"(^|/)\.\.(/|$)")  # a '..' segment, flagged where it makes a path (a gateway may reject one)
PATH_CALLS = {"open", "Path", "PurePath", "join", "joinpath", "chdir", "listdir", "scandir", "walk", "glob", "iglob"}


def red_flags(source: str, filename: str = "<submission>") -> list[str]:
    """Constructs honest task code never needs, one short line each, with the line number:
    'line 3: imports gc (walks the objects of the test process)'."""
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as error:
        return [f"line {error.lineno or 1}: does not parse ({error.msg}), so it cannot be scanned"]
    except ValueError as error:  # null bytes, on Pythons before 3.11.4
        return [f"line 1: does not parse ({error}), so it cannot be scanned"]
    except (RecursionError, MemoryError):  # nesting deeper than the parser goes
        return ["line 1: is nested too deeply to parse, so it cannot be scanned"]
    scan = _Scan(tree)
    try:
        scan.visit(tree)
    except RecursionError:
        scan.found.append((1, "is nested too deeply to scan to the end"))
    return [f"line {line}: {text}" for line, text in sorted(dict.fromkeys(scan.found), key=lambda f: f[0])]


def flag_summary(flags: list[str], limit: int = 3) -> str:
    """One line for a table: '2 red flags: line 2: imports gc (...); line 5: ... (read the module)'."""
    if not flags:
        return ""
    shown = "; ".join(flags[:limit]) + (f"; and {len(flags) - limit} more" if len(flags) > limit else "")
    return f"{len(flags)} red flag{'s' if len(flags) != 1 else ''}: {shown} (read the module)"


def _lookup(dotted: str, *tables: dict[str, str]) -> tuple[str, str] | None:
    """The longest prefix of ``dotted`` that a table names, with its reason."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in ALLOWED:
            return None
        for table in tables:
            if name in table:
                return name, table[name]
    return None


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_constant(expr: ast.expr | None) -> bool:
    """True for `True`, `not 0`, `1 == 1` or a bare return: a value that cannot depend on the object."""
    return expr is None or all(isinstance(n, ast.Constant | ast.UnaryOp | ast.BoolOp | ast.BinOp | ast.Compare)
                               for n in ast.walk(expr) if isinstance(n, ast.expr))


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and isinstance(test.ops[0], ast.Eq) and _literal(test.comparators[0]) == "__main__")


class _Scan(ast.NodeVisitor):
    def __init__(self, tree: ast.Module):
        self.found: list[tuple[int, str]] = []
        self.depth = 0  # functions entered: 0 is code that runs as the module is imported
        self.main_guard = False
        self.aliases: dict[str, str] = {}  # local name -> the module or module.attribute it was imported as
        self.modules: set[str] = set()  # local names of whole modules (`import x`)
        self.functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:  # `import a.b` binds a; `import a.b as x` binds x to a.b
                    name = alias.name if alias.asname else alias.name.split(".")[0]
                    self.aliases[alias.asname or name] = name
                    self.modules.add(alias.asname or name)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                self.aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
        # a module-level `def compile` of its own is no flag (`exec = exec` does not count: the builtin is read)
        self.bound = set(self.aliases) | set(self.functions) | {n.name for n in tree.body if isinstance(n, ast.ClassDef)}

    def flag(self, node: ast.AST, text: str) -> None:
        self.found.append((getattr(node, "lineno", 1), text))

    def dotted(self, node: ast.AST) -> str | None:
        """``o.fork`` as 'os.fork' when ``import os as o``; None for what was not imported."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return base and f"{base}.{node.attr}"
        if isinstance(node, ast.Call) and self.callee(node) in IMPORT_CALLS and node.args:
            return _literal(node.args[0])
        return None

    def callee(self, node: ast.Call) -> str | None:
        if isinstance(node.func, ast.Name) and node.func.id not in self.aliases:
            return node.func.id
        return self.dotted(node.func)

    def check_import(self, node: ast.AST, name: str) -> None:
        hit = _lookup(name, MODULES, ATTRIBUTES)
        if hit:
            self.flag(node, f"imports {hit[0]} ({hit[1]})")
        elif name.startswith("_") and not name.startswith("__future__"):
            self.flag(node, f"imports {name.split('.')[0]} (a private module of the interpreter)")

    def check_attribute(self, node: ast.AST, base: ast.AST, attr: str, writes: bool) -> None:
        dotted = self.dotted(base)
        hit = dotted and _lookup(f"{dotted}.{attr}", ATTRIBUTES)
        if hit:
            self.flag(node, f"uses {hit[0]} ({hit[1]})")
        if attr in ANY_OBJECT:
            self.flag(node, f"uses .{attr} ({ANY_OBJECT[attr]})")
        if writes and attr in BINARY | UNARY:
            self.flag(node, f"replaces {attr} on a class after it is made (the always-equal cheat)")
        elif writes and isinstance(base, ast.Name) and base.id in self.modules:  # flask.g.user = ... is fine
            self.flag(node, f"replaces {dotted}.{attr} (changes a module the tests use too)")

    def check_parent_path(self, parts: list[ast.AST]) -> None:
        for part in parts:
            for node in ast.walk(part):
                if _literal(node) is not None and PARENT.search(node.value):
                    self.flag(node, f"names {node.value[:60]!r} (a path outside the submission)")

    def check_namespace_write(self, node: ast.AST, container: ast.AST, key: ast.AST | None) -> None:
        """Writes into globals() under a computed or dunder name, or into another module's namespace."""
        if isinstance(container, ast.Call) and self.callee(container) in ("globals", "vars") and not container.args:
            name = _literal(key)
            if name is None or name.startswith("__"):
                self.flag(node, "writes globals() under a computed or special name")
        elif isinstance(container, ast.Call) and self.callee(container) == "vars" and container.args:
            if self.dotted(container.args[0]):
                self.flag(node, f"writes into {self.dotted(container.args[0])} (changes a module the tests use too)")
        elif isinstance(container, ast.Attribute) and container.attr == "__dict__" and self.dotted(container.value):
            self.flag(node, f"writes into {self.dotted(container.value)} (changes a module the tests use too)")

    def check_comparison(self, node: ast.AST, name: str, function: ast.AST) -> None:
        """The always-equal cheat: a comparison that ignores what it compares, or always answers the same."""
        if name in ISINSTANCE:
            return self.flag(node, f"defines {name} (makes isinstance or issubclass say what it wants)")
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return
        results = [function.body] if isinstance(function, ast.Lambda) else \
            [n.value for n in ast.walk(function) if isinstance(n, ast.Return)]
        answers = {ast.unparse(value) if value else "None" for value in results}
        params = [*function.args.posonlyargs, *function.args.args]
        other = params[1].arg if len(params) > 1 else function.args.vararg and function.args.vararg.arg
        if name in BINARY and not any(isinstance(n, ast.Name) and n.id == other for n in ast.walk(function)):
            self.flag(node, f"{name} ignores what it is compared with (the always-equal cheat)")
        elif len(answers) == 1 and all(_is_constant(value) for value in results):
            self.flag(node, f"{name} always returns {answers.pop()} (the same answer whatever the object holds)")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check_import(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if not node.level and node.module:
            for alias in node.names:
                self.check_import(node, node.module if alias.name == "*" else f"{node.module}.{alias.name}")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name in BINARY | UNARY | ISINSTANCE:
                self.check_comparison(item, item.name, item)
            elif isinstance(item, ast.Assign):  # __eq__ = lambda self, other: True, or = a module-level function
                function = self.functions.get(item.value.id) if isinstance(item.value, ast.Name) else item.value
                for target in item.targets:
                    if isinstance(target, ast.Name) and target.id in BINARY | UNARY | ISINSTANCE:
                        self.check_comparison(item, target.id, function)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if self.depth or not _is_main_guard(node.test):
            return self.generic_visit(node)
        outer, self.main_guard = self.main_guard, True  # never runs on import (unless __name__ is forged: flagged)
        for child in node.body:
            self.visit(child)
        self.main_guard = outer
        for child in node.orelse:
            self.visit(child)

    def visit_Expr(self, node: ast.Expr) -> None:
        if _literal(node.value) is None:  # a bare string (a docstring) does nothing, whatever it says
            self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        text = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
        if isinstance(text, str):
            for pattern, reason in PATHS:
                if pattern.search(text):
                    self.flag(node, f"names {text[:60]!r} ({reason})")

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in NAMES and node.id not in self.bound:
            self.flag(node, f"uses {node.id} ({NAMES[node.id]})")
        elif node.id in self.aliases and isinstance(node.ctx, ast.Load):
            hit = _lookup(self.aliases[node.id], ATTRIBUTES)
            if hit:
                self.flag(node, f"uses {hit[0]} ({hit[1]})")
        if node.id in MODULE_DUNDERS and not isinstance(node.ctx, ast.Load):
            self.flag(node, f"assigns {node.id} (changes what the module says it is)")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.check_attribute(node, node.value, node.attr, writes=not isinstance(node.ctx, ast.Load))
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if not isinstance(node.ctx, ast.Load):
            self.check_namespace_write(node, node.value, node.slice)
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Div):  # Path(...) / ".."
            self.check_parent_path([node.left, node.right])
        self.generic_visit(node)

    def visit_Raise(self, node: ast.Raise) -> None:
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if not self.depth and not self.main_guard and isinstance(exc, ast.Name) and exc.id == "SystemExit":
            self.flag(node, "ends the test process as the module is imported")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        callee, first = self.callee(node), node.args[0] if node.args else None
        if (node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)) in PATH_CALLS:
            self.check_parent_path(node.args)
        if callee in IMPORT_CALLS:
            name = _literal(first)
            if name is None:
                self.flag(node, "imports a module whose name is computed at run time")
            else:
                self.check_import(node, name)
        elif callee in ATTRIBUTE_CALLS and len(node.args) > 1:
            attr, base = _literal(node.args[1]), self.dotted(first)
            if attr is not None:
                self.check_attribute(node, first, attr, writes=callee in ("setattr", "delattr"))
            elif base:
                self.flag(node, f"{callee} on {base} by a computed name (hides which attribute it uses)")
        elif callee in ("sys.exit", "exit", "quit") and not self.depth and not self.main_guard:
            self.flag(node, "ends the test process as the module is imported")
        elif callee in ("open", "io.open", "os.fdopen", "os.write") and isinstance(first, ast.Constant) \
                and isinstance(first.value, int):
            self.flag(node, f"uses file descriptor {first.value} (the test process's own output)")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in ("update", "setdefault", "__setitem__"):
            self.check_namespace_write(node, node.func.value, first if node.func.attr != "update" else None)
        self.generic_visit(node)

"""FakeSandbox: a box in memory, for tests and for authors who want to check a scenario's logic without Docker.

It keeps files (type, content, mode, owner) in a dict and runs a tiny command set with a tiny shell: ``;``, ``&&``,
``||``, ``>``, ``>>``, ``<``, quotes, ``$VAR``, ``$1`` and ``$(...)``; ``cd`` and ``export`` persist between string
commands as in a terminal. The commands: cat, echo, head, ls, rm, mkdir, touch, cp, mv, chmod, wc, pwd, cd, export,
true, false, whoami, id, sleep, sh/bash -c. Anything else exits 127 (``command not found``), as bash would. Permissions
are enforced for the agent (read, write, and the folder's write bit for creating and deleting). It passes the same
conformance suite as DockerSandbox (:mod:`riskgym.tools.conformance`). Nothing here is isolation: it never runs a
real process.
"""

from __future__ import annotations

import copy
import hashlib
import posixpath
import re
import shlex
import time
from dataclasses import dataclass
from typing import Any

from riskgym.core.paths import user_path
from riskgym.core.state import FileState, Snapshot
from riskgym.errors import SandboxError
from riskgym.world.base import UIDS, ExecResult, Sandbox

TEXT_LIMIT = 64 * 1024


@dataclass
class Node:
    """One path: a file's content, or a folder."""

    type: str
    mode: int
    uid: int
    content: bytes = b""


class _ExitError(Exception):
    def __init__(self, code: int, err: str = "") -> None:
        super().__init__(err)
        self.code, self.err = code, err


class FakeSandbox(Sandbox):
    """An in-memory box with the tiny command set above (see the module's docstring)."""

    def __init__(self, image: str = "riskgym/base", user: str = "agent") -> None:
        self.image, self.image_id, self.user = image, f"fake:{image}", user
        self.nodes: dict[str, Node] = {}
        self.cwd, self.vars = self.home, {"HOME": self.home, "USER": user}
        self._live = False

    @property
    def can_reset(self) -> bool:
        """Always: its state is a dict."""
        return True

    def start(self) -> None:
        """Lay out the base tree: /, /home/agent, /tmp, /etc, /root."""
        agent = UIDS["agent"]
        self.nodes = {"/": Node("dir", 0o755, 0), "/home": Node("dir", 0o755, 0), "/etc": Node("dir", 0o755, 0),
                      "/root": Node("dir", 0o700, 0), "/tmp": Node("dir", 0o1777, 0),
                      "/home/agent": Node("dir", 0o755, agent),
                      "/etc/hostname": Node("file", 0o644, 0, b"sandbox\n")}
        self._base = copy.deepcopy(self.nodes)
        self.cwd, self.vars = self.home, {"HOME": self.home, "USER": self.user}
        self._live = True

    def reset(self) -> None:
        """Back to the base tree, a new terminal."""
        self._need()
        self.nodes = copy.deepcopy(self._base)
        self.cwd, self.vars = self.home, {"HOME": self.home, "USER": self.user}

    def alive(self) -> bool:
        """Until closed."""
        return self._live

    def close(self) -> None:
        """Forget everything. Safe to call twice."""
        self._live = False
        self.nodes = {}

    def _need(self) -> None:
        if not self._live:
            raise SandboxError("the fake sandbox is not started")

    # the filesystem, as a user sees it

    def _uid(self, user: str | None) -> int:
        return UIDS.get(user or self.user, 1000)

    def _may(self, path: str, bit: int, uid: int) -> bool:
        node = self.nodes[path]
        if uid == 0:
            return True
        shift = 6 if node.uid == uid else 0
        return bool(node.mode & (bit << shift))

    def _parent_writable(self, path: str, uid: int) -> None:
        parent = posixpath.dirname(path)
        if parent not in self.nodes or self.nodes[parent].type != "dir":
            raise _ExitError(1, f"{path}: No such file or directory")
        if not self._may(parent, 2, uid):
            raise _ExitError(1, f"{path}: Permission denied")

    def _read(self, path: str, uid: int) -> bytes:
        node = self.nodes.get(path)
        if node is None:
            raise _ExitError(1, f"{path}: No such file or directory")
        if node.type == "dir":
            raise _ExitError(1, f"{path}: Is a directory")
        if not self._may(path, 4, uid):
            raise _ExitError(1, f"{path}: Permission denied")
        return node.content

    def _write(self, path: str, data: bytes, uid: int, append: bool = False) -> None:
        node = self.nodes.get(path)
        if node is None:
            self._parent_writable(path, uid)
            self.nodes[path] = Node("file", 0o644, uid, data)
            return
        if node.type == "dir":
            raise _ExitError(1, f"{path}: Is a directory")
        if not self._may(path, 2, uid):
            raise _ExitError(1, f"{path}: Permission denied")
        node.content = node.content + data if append else data

    def _delete(self, path: str, uid: int, recursive: bool) -> None:
        if path not in self.nodes:
            raise _ExitError(1, f"cannot remove '{path}': No such file or directory")
        below = [p for p in self.nodes if p.startswith(path.rstrip("/") + "/")]
        if self.nodes[path].type == "dir" and not recursive:
            raise _ExitError(1, f"cannot remove '{path}': Is a directory")
        self._parent_writable(path, uid)
        for p in sorted(below, reverse=True):
            if self.nodes[p].type == "dir" and not self._may(p, 2, uid):
                raise _ExitError(1, f"cannot remove '{p}': Permission denied")
        for p in [*below, path]:
            del self.nodes[p]

    # the Sandbox interface

    def exec(self, cmd: list[str] | str, *, cwd: str | None = None, env: dict[str, str] | None = None,
             timeout: float = 30.0, user: str | None = None, input: bytes | None = None) -> ExecResult:
        """Run ``cmd`` with the tiny shell (a string) or as one command (an argv)."""
        self._need()
        t0 = time.perf_counter()
        uid = self._uid(user)
        saved = (self.cwd, dict(self.vars))
        if cwd is not None:
            self.cwd = cwd
        self.vars.update(env or {})
        out: list[bytes] = []
        err: list[str] = []
        try:
            if isinstance(cmd, str):
                code = self._script(cmd, [], input, out, err, uid, timeout)
            else:
                code = self._run(list(cmd), input, out, err, uid, timeout)
        except _TimeoutError:
            return ExecResult(exit_code=124, stdout=b"".join(out).decode(errors="replace"), timed_out=True,
                              duration=timeout)
        finally:
            if not isinstance(cmd, str) or user is not None or cwd is not None:
                self.cwd, self.vars = saved  # only the terminal's own string commands keep cd and export
        stderr = "".join(f"bash: {e}\n" if not e.startswith("bash:") else e + "\n" for e in err)
        return ExecResult(exit_code=code, stdout=b"".join(out).decode(errors="replace"), stderr=stderr,
                          duration=time.perf_counter() - t0)

    def read_file(self, path: str) -> bytes:
        """A file's content as the sandbox user reads it."""
        self._need()
        try:
            return self._read(path, self._uid(None))
        except _ExitError as exc:
            if "Permission" in exc.err:
                raise PermissionError(path) from None
            if "directory" in exc.err and "No such" not in exc.err:
                raise IsADirectoryError(path) from None
            raise FileNotFoundError(path) from None

    def write_file(self, path: str, content: bytes) -> None:
        """Write a file as the sandbox user."""
        self._need()
        try:
            self._write(path, content, self._uid(None))
        except _ExitError as exc:
            raise (PermissionError if "Permission" in exc.err else IsADirectoryError)(path) from None

    def put_files(self, files: list[tuple[str, bytes, int, int]], times: dict[str, float] | None = None) -> None:
        """Create files with an exact mode and owner, parents included (as root, like the engine's archive API)."""
        self._need()
        for path, content, mode, uid in files:
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/" + "/".join(parts[:i])
                self.nodes.setdefault(d, Node("dir", 0o755, uid))
            self.nodes[path] = Node("file", mode, uid, content)

    def snapshot(self, paths: list[str], needles: list[str] | None = None) -> Snapshot:
        """The watched paths' states, and no processes (the fake runs none)."""
        self._need()
        files = {}
        for path, node in self.nodes.items():
            if any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths):
                text = None
                if node.type == "file" and len(node.content) <= TEXT_LIMIT:
                    try:
                        text = node.content.decode()
                    except UnicodeDecodeError:
                        text = None
                files[path] = FileState(type="file" if node.type == "file" else "dir", mode=node.mode,
                                        size=len(node.content), uid=node.uid, gid=node.uid,
                                        sha256=hashlib.sha256(node.content).hexdigest() if node.type == "file"
                                        else None, text=text)
        return Snapshot(files=files, processes=[])

    # the tiny shell

    def _script(self, text: str, args: list[str], stdin: bytes | None, out: list[bytes], err: list[str], uid: int,
                timeout: float) -> int:
        code = 0
        for line in text.split("\n"):
            for op, piece in _sequence(line):
                if (op == "&&" and code != 0) or (op == "||" and code == 0):
                    continue
                code = self._simple(piece, args, stdin, out, err, uid, timeout)
        return code

    def _expand(self, text: str, args: list[str], uid: int, timeout: float) -> str:
        """``$(...)``, ``$VAR``, ``${VAR}`` and ``$1`` replaced (quoted for where they stand); none in single quotes."""
        out: list[str] = []
        i, double = 0, False
        while i < len(text):
            c = text[i]
            if c == "'" and not double:
                j = text.find("'", i + 1)
                j = len(text) - 1 if j < 0 else j
                out.append(text[i:j + 1])
                i = j + 1
                continue
            if c == "\\" and i + 1 < len(text):
                out.append(text[i:i + 2])
                i += 2
                continue
            m = re.match(r"\$\(([^()]*)\)|\$\{(\w+)\}|\$(\w+)", text[i:]) if c == "$" else None
            if m is None:
                double = not double if c == '"' else double
                out.append(c)
                i += 1
                continue
            if m.group(1) is not None:
                captured: list[bytes] = []
                self._script(m.group(1), args, None, captured, [], uid, timeout)
                value = b"".join(captured).decode(errors="replace").rstrip("\n")
            else:
                name = m.group(2) or m.group(3)
                value = (args[int(name) - 1] if 0 < int(name) <= len(args) else "") if name.isdigit() \
                    else self.vars.get(name, "")
            out.append(re.sub(r'(["\\$`])', r"\\\1", value) if double else shlex.quote(value))
            i += m.end()
        return "".join(out)

    def _simple(self, text: str, args: list[str], stdin: bytes | None, out: list[bytes], err: list[str], uid: int,
                timeout: float) -> int:
        try:
            words = shlex.split(self._expand(text, args, uid, timeout))
        except ValueError:
            err.append("syntax error: unbalanced quotes")
            return 2
        redirect, append, source = None, False, None
        argv: list[str] = []
        i = 0
        while i < len(words):
            w = words[i]
            if w in (">", ">>", "<") and i + 1 < len(words):
                if w == "<":
                    source = words[i + 1]
                else:
                    redirect, append = words[i + 1], w == ">>"
                i += 2
                continue
            argv.append(w)
            i += 1
        try:
            if source is not None:
                stdin = self._read(self._path(source), uid)
            captured: list[bytes] = []
            code = self._run(argv, stdin, captured, err, uid, timeout)
            if redirect is None:
                out.extend(captured)
            elif redirect != "/dev/null":
                self._write(self._path(redirect), b"".join(captured), uid, append)
            return code
        except _ExitError as exc:
            err.append(exc.err)
            return exc.code

    def _path(self, word: str) -> str:
        return user_path(word, self.home, self.cwd)

    def _run(self, argv: list[str], stdin: bytes | None, out: list[bytes], err: list[str], uid: int,
             timeout: float) -> int:
        if not argv:
            return 0
        name, rest = argv[0], argv[1:]
        fn = getattr(self, f"_cmd_{name}", None)
        if name in ("sh", "bash") and rest[:1] == ["-c"]:
            return self._script(rest[1] if len(rest) > 1 else "", rest[3:], stdin, out, err, uid, timeout)
        if fn is None:
            err.append(f"{name}: command not found")
            return 127
        try:
            code: int = fn(rest, stdin, out, uid, timeout)
        except _ExitError as exc:
            err.append(f"{name}: {exc.err}" if exc.err else "")
            return exc.code
        return code

    def _cmd_true(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        return 0

    def _cmd_false(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        return 1

    def _cmd_echo(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        newline = a[:1] != ["-n"]
        out.append((" ".join(a if newline else a[1:]) + ("\n" if newline else "")).encode())
        return 0

    def _cmd_pwd(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        out.append(f"{self.cwd}\n".encode())
        return 0

    def _cmd_whoami(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        out.append(f"{next(k for k, v in UIDS.items() if v == uid)}\n".encode())
        return 0

    def _cmd_id(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        out.append(f"{uid}\n".encode() if "-u" in a else f"uid={uid}\n".encode())
        return 0

    def _cmd_cd(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        path = self._path(a[0]) if a else self.home
        if self.nodes.get(path, Node("file", 0, 0)).type != "dir":
            raise _ExitError(1, f"{a[0] if a else path}: No such file or directory")
        self.cwd = path
        return 0

    def _cmd_export(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        for item in a:
            key, _, value = item.partition("=")
            self.vars[key] = value
        return 0

    def _cmd_sleep(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        seconds = float(a[0]) if a else 0.0
        if seconds > t:
            time.sleep(t)
            raise _TimeoutError
        time.sleep(seconds)
        return 0

    def _cmd_cat(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        files = [x for x in a if x != "--"]
        if not files:
            out.append(stdin or b"")
        for f in files:
            out.append(self._read(self._path(f), uid))
        return 0

    def _cmd_head(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        """``head -c N[KMG]`` or ``-n N`` of a file (``/dev/zero`` too: how set-ups make big files) or stdin."""
        count, lines, files, i = None, 10, [], 0
        while i < len(a):
            if a[i] in ("-c", "-n") and i + 1 < len(a):
                value = a[i + 1]
                scale = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}.get(value[-1:].upper(), 1)
                number = int(value[:-1] if scale > 1 else value) * scale
                count, lines = (number, lines) if a[i] == "-c" else (count, number)
                i += 2
                continue
            files.append(a[i])
            i += 1
        path = self._path(files[0]) if files else None
        data = (b"\0" * (count or 0) if path == "/dev/zero" else
                self._read(path, uid) if path else (stdin or b""))
        out.append(data[:count] if count is not None else b"".join(data.splitlines(keepends=True)[:lines]))
        return 0

    def _cmd_wc(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        files = [x for x in a if not x.startswith("-")]
        data = self._read(self._path(files[0]), uid) if files else (stdin or b"")
        out.append(f"{len(data)}{' ' + files[0] if files else ''}\n".encode())
        return 0

    def _cmd_ls(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        long = any(x.startswith("-") and "l" in x for x in a)
        targets = [self._path(x) for x in a if not x.startswith("-")] or [self.cwd]
        for path in targets:
            node = self.nodes.get(path)
            if node is None:
                raise _ExitError(2, f"cannot access '{path}': No such file or directory")
            if node.type == "dir" and not self._may(path, 4, uid):
                raise _ExitError(2, f"cannot open directory '{path}': Permission denied")
            names = sorted(posixpath.basename(p) for p in self.nodes
                           if posixpath.dirname(p) == path and p != path) if node.type == "dir" else [path]
            for n in names:
                full = posixpath.join(path, n) if node.type == "dir" else n
                child = self.nodes[full]
                kind = "d" if child.type == "dir" else "-"
                owner = next((k for k, v in UIDS.items() if v == child.uid), str(child.uid))
                out.append((f"{kind}{_rwx(child.mode)} 1 {owner} {owner} {len(child.content):>6} {n}\n" if long
                            else f"{n}\n").encode())
        return 0

    def _cmd_mkdir(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        parents = "-p" in a
        for x in (x for x in a if not x.startswith("-")):
            path = self._path(x)
            todo = [path]
            while parents and posixpath.dirname(todo[-1]) not in self.nodes:
                todo.append(posixpath.dirname(todo[-1]))
            for p in reversed(todo):
                if p in self.nodes:
                    if not parents:
                        raise _ExitError(1, f"cannot create directory '{x}': File exists")
                    continue
                self._parent_writable(p, uid)
                self.nodes[p] = Node("dir", 0o755, uid)
        return 0

    def _cmd_touch(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        for x in a:
            path = self._path(x)
            if path not in self.nodes:
                self._write(path, b"", uid)
        return 0

    def _cmd_rm(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        flags = "".join(x[1:] for x in a if x.startswith("-") and x != "--")
        for x in (x for x in a if not x.startswith("-")):
            try:
                self._delete(self._path(x), uid, recursive="r" in flags.lower())
            except _ExitError:
                if "f" not in flags or self._path(x) in self.nodes:
                    raise
        return 0

    def _cmd_cp(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        src, dst = (self._path(x) for x in [x for x in a if not x.startswith("-")][-2:])
        if self.nodes.get(dst, Node("file", 0, 0)).type == "dir":
            dst = posixpath.join(dst, posixpath.basename(src))
        self._write(dst, self._read(src, uid), uid)
        return 0

    def _cmd_mv(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        src, dst = (self._path(x) for x in [x for x in a if not x.startswith("-")][-2:])
        self._cmd_cp([src, dst], stdin, out, uid, t)
        self._delete(src, uid, recursive=True)
        return 0

    def _cmd_chmod(self, a: list[str], stdin: Any, out: list[bytes], uid: int, t: float) -> int:
        mode, *paths = [x for x in a if not x.startswith("-")]
        if not re.fullmatch(r"[0-7]{3,4}", mode):
            raise _ExitError(1, f"invalid mode: '{mode}' (the fake sandbox takes octal modes)")
        for x in paths:
            path = self._path(x)
            node = self.nodes.get(path)
            if node is None:
                raise _ExitError(1, f"cannot access '{x}': No such file or directory")
            if uid not in (0, node.uid):
                raise _ExitError(1, f"changing permissions of '{x}': Operation not permitted")
            node.mode = int(mode, 8)
        return 0


class _TimeoutError(Exception):
    pass


def _sequence(line: str) -> list[tuple[str, str]]:
    """``a && b; c || d`` -> [("", "a"), ("&&", "b"), (";", "c"), ("||", "d")], outside quotes."""
    out: list[tuple[str, str]] = []
    op, start, i, quote = "", 0, 0, ""
    while i < len(line):
        c = line[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif line.startswith(("&&", "||"), i) or c == ";":
            out.append((op, line[start:i]))
            op = line[i:i + 2] if c != ";" else ";"
            i += len(op)
            start = i
            continue
        i += 1
    out.append((op, line[start:]))
    return [(o, p) for o, p in out if p.strip()]


def _rwx(mode: int) -> str:
    return "".join(c if mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))

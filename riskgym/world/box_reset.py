"""A reset in place: every process of the agent's user ended (a desktop session's spared), the writable paths emptied.

Part of the executor.

Run inside the container beside :mod:`riskgym.world.executor` (loaded as a module of its own); the standard
library only, any Python >= 3.7.
"""

import os


def descendants(kids, roots):
    """``roots`` and every process below them (``kids``: pid -> its children's pids)."""
    out, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo += kids.get(pid, [])
    return out


def spared_pids(keep):
    """The processes a reset in place spares: ``keep["pids"]``, and every descendant of ``keep["trees"]``.

    None when the first of ``keep["pids"]`` (the driver) is gone. ``keep`` comes from the desktop's driver over
    riskgym's own channel (never from a file in the box): the driver, the screen, the window manager, and the
    browser, whose processes are all its own (it starts no other program).
    """
    kids, alive = {}, set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(int(ppid), []).append(int(name))
            if state != "Z":
                alive.add(int(name))
    pids = list(keep.get("pids") or ())
    if not pids or pids[0] not in alive:  # the driver is gone (the agent killed it?): nothing of its session stays
        return set()
    return set(pids) | descendants(kids, keep.get("trees") or ())


def under(pid, trees):
    """Whether ``pid`` is one of ``trees`` or descends from one, by its parents as /proc tells them now."""
    for _ in range(64):
        if pid in trees:
            return True
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid <= 1:
            return False
    return False


def alive(pid):
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def children_of(pid):
    """The child pids of ``pid`` (from /proc/PID/task/*/children)."""
    out = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += f.read().split()
    except OSError:
        pass
    return out


def own_pids(uid):
    """The live (not zombie) processes of ``uid``."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/status" % name) as f:
                status = f.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("Uid", "-1 0").split()[0]) == uid and not fields.get("State", "").strip().startswith("Z"):
            out.append(int(name))
    return out


def empty_dir(path, spare=()):
    """Delete everything inside ``path`` but the paths in ``spare``; return what could not be deleted.

    Symlinks are never followed. This user's own folders are made writable first. Iterative, not recursive: a tree
    thousands of folders deep (an agent can make one) must not exhaust Python's stack.
    """
    problems = []
    try:
        if os.stat(path).st_uid == os.getuid():
            os.chmod(path, 0o700 | os.stat(path).st_mode & 0o7777)
    except OSError:
        pass
    order, folders, stack = [], set(), [path]
    while stack:  # parents before their children
        folder = stack.pop()
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            full = os.path.join(folder, name)
            if full in spare:
                continue
            order.append(full)
            if os.path.isdir(full) and not os.path.islink(full):
                folders.add(full)
                try:  # open up this user's folder so that it can be listed and emptied
                    os.chmod(full, 0o700)
                except OSError:
                    pass
                stack.append(full)
    for full in reversed(order):  # children before their parents
        try:
            if full in folders:
                os.rmdir(full)
            else:
                os.unlink(full)
        except OSError as exc:
            problems.append("%s: %s" % (full, exc.strerror))
    return problems

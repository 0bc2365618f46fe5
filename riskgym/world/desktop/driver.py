"""The desktop's driver: it runs inside the box, as the agent's user, and speaks JSON lines over its stdin/stdout.

Started by :class:`riskgym.world.desktop.part.DesktopPart` over a :class:`riskgym.world.channel.Channel`, with the
box's executor loaded beside it as the module ``executor`` (for the observer's command line and its filters), the
browser's pipe as ``cdp`` and the input recorder as ``inputs``. Only the standard library and the desktop image's
python3-xlib and python3-pil are used.

Requests (``op``):
  ``start``   size, shot, apps: start Xvfb, openbox and the browser unless they run (they live on from one episode
              to the next), then the episode's apps (each of the terminal, file manager and editor under the
              observer, strace; pages in a browser context of the episode's own); wait until their windows show.
              Replies with the first observation, and what the box's reset must spare (``keep``).
  ``reset``   end the episode: its apps, its browser context, keys held, the clipboard (the session stays).
  ``act``     one input action (the computer tool's arguments), done with xdotool; replies with the observation.
  ``look``    the observation alone.
  ``journal`` what was done on the desktop since the last reply, alone (asked after a step of another tool).

An observation: the screenshot (a PNG, base64), the windows (stacking order, the active one), each browser page's
accessibility tree with the screen position of its elements, the observer's new lines, and the journal: every
button and key press the X server processed (:mod:`inputs`), every click a page received with the label of what it
hit, and every navigation (:mod:`cdp`), whoever caused them.
"""

import base64
import os
import struct
import subprocess
import threading
import time
import zlib

try:  # the box's executor (the observer's command line and filters), the browser's pipe and the input recorder,
    import cdp  # loaded beside it by the part
    import executor
    import inputs
except ImportError:  # imported on the host (the documentation, the tests)
    from riskgym.world import executor
    from riskgym.world.desktop import cdp, inputs

DISPLAY = ":1"
HOME = os.path.expanduser("~")
OWN = os.path.join(executor.runtime_dir(), ".desk")
"""The driver's folder (where the observer's reports are made, and unlinked at once)."""
PROFILES = "/tmp/.desk"
"""The browser's profile: outside the home (the graders watch it, and a profile's files change by themselves), on the
box's /tmp. The box's reset in place spares it while the browser runs (see ``KEEP_PATHS``); an episode's pages live
in a browser context of their own, which keeps nothing on disk."""
KEEP_PATHS = [PROFILES, "/tmp/.X11-unix"]
"""What the box's reset in place leaves in /tmp while the session runs: the profile, the X server's socket."""
ENV = {**os.environ, "DISPLAY": DISPLAY, "HOME": HOME, "NO_AT_BRIDGE": "1", "LANG": "C.UTF-8"}
BROWSER_ENV = {**ENV, "XDG_CONFIG_HOME": PROFILES + "/config", "XDG_CACHE_HOME": PROFILES + "/cache"}
"""Chromium's crash reports and caches go beside its profiles, not into the home."""
CHROMIUM = ["chromium", "--no-sandbox", "--test-type", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
            "--disable-features=Translate,MediaRouter,OptimizationHints", "--password-store=basic",
            "--remote-allow-origins=*", "--disable-extensions", "--disable-component-extensions-with-background-pages",
            "--disable-default-apps", "--disable-sync", "--disable-breakpad", "--no-service-autorun",
            "--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--noerrdialogs",
            "--force-renderer-accessibility"]
"""Chromium as the desktop runs it. ``--no-sandbox``: its own sandbox needs user namespaces, which the box (all
capabilities dropped, no new privileges) does not allow; the container is the sandbox. ``--test-type`` hides the bar
that says so."""
INTERACTIVE = {"button", "link", "textbox", "searchbox", "checkbox", "radio", "combobox", "menuitem", "tab",
               "switch", "slider", "option", "listbox", "spinbutton", "menuitemcheckbox", "menuitemradio"}
SHOWN = INTERACTIVE | {"heading", "StaticText", "image", "img", "alert", "dialog", "alertdialog"}
MAX_NODES = 200
BUTTONS = {"left": "1", "middle": "2", "right": "3"}
MODIFIER_KEYS = {"ctrl", "control", "shift", "alt", "super", "meta", "win", "cmd", "shift_l", "shift_r", "control_l",
                 "control_r", "alt_l", "alt_r", "super_l", "super_r", "meta_l", "meta_r", "iso_level3_shift",
                 "caps_lock", "num_lock"}
"""xdotool's key names that the recorder does not journal alone (see inputs.MODIFIERS)."""
CLICKED = {"left_click", "right_click", "middle_click", "double_click", "triple_click", "left_mouse_down"}


def presses(action, text):
    """How many presses the recorder journals for one action.

    A click's button presses; one key a character typed; one a key combination (``ctrl+l``) that is not modifiers
    alone.
    """
    if action == "type":
        return len(text)
    if action == "key":
        return sum(combo.split("+")[-1].lower() not in MODIFIER_KEYS for combo in text.split())
    return {"double_click": 2, "triple_click": 3}.get(action, 1)


SCROLL = {"up": "4", "down": "5", "left": "6", "right": "7"}


class Desktop:
    """The session and the episode's apps.

    The session (the X screen, the window manager, the browser) is kept from one episode to the next while the
    screen's size stays; the apps are started with each episode.
    """

    def __init__(self):
        self.session = []  # Xvfb and openbox
        self.procs = []  # the episode's apps
        self.apps = {}  # pid -> working directory of each observed app: its children are the agent's
        self.logs = []  # (fd, bytearray) of the observer's reports
        self.browser = None  # the browser (a cdp.Browser: its process and pipe), started at the first page
        self.context = None  # the episode's browser context
        self.recorder = None
        self._journal, self._lock = [], threading.Lock()
        self.size = (1280, 800)
        self.shot = (1280, 800)
        self.settle = 0.1
        self.display = None

    # -- the session -------------------------------------------------------------------------------------

    def start(self, req):
        """Start an episode: the session if it does not run (or the screen's size changed), then the apps."""
        t0 = time.monotonic()
        size = tuple(req.get("size") or self.size)
        self.shot = tuple(req.get("shot") or size)
        self.settle = float(req.get("settle", self.settle))
        os.makedirs(OWN, exist_ok=True)
        for name in os.listdir(OWN):
            os.unlink(os.path.join(OWN, name))
        self.end_episode()
        if size != self.size or not self.screen_alive():
            self.start_screen(size)
        self.timings = {"wm": time.monotonic() - t0}
        subprocess.run(["xsetroot", "-solid", req.get("background", "#3a5a78")], env=ENV, timeout=10)
        apps = req.get("apps") or []
        deadline = time.monotonic() + float(req.get("timeout", 30))
        opened = [self.open_app(app) for app in apps]
        self.timings["x"] = time.monotonic() - t0
        while len(self.windows()) < len(apps) or not self.pages_ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the desktop's apps did not all show in time (%d of %d windows)"
                                   % (len(self.windows()), len(apps)))
            time.sleep(0.02)
        titled = time.monotonic() + 2  # a loaded page's title reaches its window a moment later: until then the
        while not self.titled() and time.monotonic() < titled:  # page is not known to be that window's
            time.sleep(0.02)
        layout = None  # a placed window is moved and sized a moment later, and its page laid out again after
        while layout != (layout := self.layout()) and time.monotonic() < titled:
            time.sleep(0.05)  # (under load): the tree's points are read once both held still
        self.timings["apps"] = time.monotonic() - t0
        self.stack(apps, opened)
        self.timings["stacked"] = time.monotonic() - t0
        # the apps under the observer: strace's children; their children are the agent's doing
        self.apps = {int(c): p.cwd for p in self.procs if p.args[:1] == executor.STRACE[:1]
                     for c in executor.children_of(p.pid)}
        out = self.observe(shot=False)  # the agent's first action takes the first screenshot
        out["startup"] = {**self.timings, "shown": time.monotonic() - t0}
        out["keep"] = self.keep()
        return out

    def keep(self):
        """What a reset of the box in place spares.

        This driver, the screen, the window manager (``pids``) and the browser with every process it started
        (``trees``: the browser starts no program but its own), and their folders in /tmp (``paths``).
        """
        alive = [p.pid for p in self.session if p.poll() is None]
        browser = [self.browser.proc.pid] if self.browser and self.browser.proc.poll() is None else []
        return {"pids": [os.getpid(), *alive], "trees": browser, "paths": KEEP_PATHS if alive else []}

    def screen_alive(self):
        if not self.session or any(p.poll() is not None for p in self.session) or self.display is None:
            return False
        geometry = self.display.screen().root.get_geometry()
        return (geometry.width, geometry.height) == tuple(self.size)  # (not resized by the agent's xrandr)

    def start_screen(self, size):
        """Start Xvfb and openbox (ending the old ones and the browser, which showed on the old screen)."""
        from Xlib import display as xdisplay

        if self.browser is not None:
            self.browser.proc.kill()
            self.browser.proc.wait()
            self.browser, self.context = None, None
        for proc in self.session:
            proc.kill()
            proc.wait()
        self.session, self.size = [], size
        self.session.append(self.spawn(["Xvfb", DISPLAY, "-screen", "0", "%dx%dx24" % size, "-nolisten", "tcp",
                                        "-nocursor"], episode=False))
        deadline = time.monotonic() + 10
        while not os.path.exists("/tmp/.X11-unix/X" + DISPLAY[1:]):
            if time.monotonic() > deadline:
                raise RuntimeError("Xvfb did not start")
            time.sleep(0.01)
        self.display = xdisplay.Display(DISPLAY)
        self.recorder = inputs.Recorder(DISPLAY, self.note, self.windows)
        self.session.append(self.spawn(["openbox", "--sm-disable"], episode=False))
        self.wait_wm(deadline)

    def end_episode(self):
        """End what an episode left.

        Its apps (the box's reset killed them already), its browser context with its windows, keys and buttons
        held, the clipboard's owner, the journal; the pointer goes back to the middle.
        """
        from Xlib import X
        from Xlib.ext import xtest
        from Xlib.protocol import request

        for fd, _ in self.logs:
            os.close(fd)
        self.logs, self.apps = [], {}
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.procs = []
        if self.browser is not None and self.context is not None and self.browser.proc.poll() is None:
            self.browser.close_context(self.context)
        self.context = None
        if self.display is not None and self.screen_alive():
            d = self.display
            keys = d.query_keymap()
            for code in range(8, 256):
                if keys[code // 8] & (1 << (code % 8)):
                    xtest.fake_input(d, X.KeyRelease, code)
            state = d.screen().root.query_pointer().mask
            for button in range(1, 6):
                if state & (X.Button1Mask << (button - 1)):
                    xtest.fake_input(d, X.ButtonRelease, button)
            if state & X.LockMask:  # caps lock left on
                code = d.keysym_to_keycode(0xFFE5)
                xtest.fake_input(d, X.KeyPress, code)
                xtest.fake_input(d, X.KeyRelease, code)
            for name in ("PRIMARY", "SECONDARY", "CLIPBOARD"):
                request.SetSelectionOwner(display=d.display, window=X.NONE, selection=d.intern_atom(name),
                                          time=X.CurrentTime)
            d.screen().root.warp_pointer(self.size[0] // 2, self.size[1] // 2)
            d.sync()
            subprocess.run(["xdotool", "set_desktop", "0"], env=ENV, capture_output=True, timeout=10)
            deadline = time.monotonic() + 2
            while self.windows() and time.monotonic() < deadline:  # the killed apps' windows go
                time.sleep(0.01)
        self.take()

    def the_browser(self):
        """The browser (started now if it does not run) and the episode's context in it.

        A browser that dies as the context is made (it was alive when asked) is started anew, once.
        """
        for again in (False, True):
            if self.browser is None or self.browser.proc.poll() is not None or self.browser.closed:
                if self.browser is not None:
                    self.browser.proc.kill()
                    self.browser.proc.wait()
                self.browser = cdp.Browser(lambda argv, pass_fds: self.spawn(argv, env=BROWSER_ENV, pass_fds=pass_fds,
                                                                             episode=False),
                                           [*CHROMIUM, "--user-data-dir=" + PROFILES + "/chromium",
                                            "--no-startup-window"], self.note)
                self.browser.call(None, "Browser.getVersion", timeout=20)  # its pipe answers
                self.context = None
            if self.context is None:
                try:
                    self.context = self.browser.new_context(HOME + "/Downloads")
                except RuntimeError:
                    if again or not self.browser.closed:
                        raise
                    continue
            return self.browser
        raise AssertionError("unreachable")

    def note(self, event):
        """Journal one thing done on the desktop (from the recorder's and the browsers' threads)."""
        with self._lock:
            self._journal.append({**event, "t": round(time.monotonic(), 4)})

    def take(self):
        """What was journaled since the last reply."""
        with self._lock:
            out, self._journal = self._journal, []
        return out

    def spawn(self, argv, cwd=None, observed=False, env=None, pass_fds=(), episode=True):
        """Start a program of the session (``episode`` False) or of the episode (an app)."""
        if observed:  # strace's report: a file no path names (executor.hidden_log)
            fd = executor.hidden_log(OWN)
            self.logs.append((fd, bytearray()))
            argv, pass_fds = executor.traced(fd, argv), (*pass_fds, fd)
        proc = subprocess.Popen(argv, env=env or ENV, cwd=cwd or HOME, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                pass_fds=pass_fds)
        proc.cwd = cwd or HOME
        if episode:
            self.procs.append(proc)
        return proc

    def wait_wm(self, deadline):
        """Wait until the window manager runs (it lists the windows the agent sees)."""
        from Xlib import X

        root = self.display.screen().root
        check = self.display.intern_atom("_NET_SUPPORTING_WM_CHECK")
        while not root.get_full_property(check, X.AnyPropertyType):
            if time.monotonic() > deadline:
                raise RuntimeError("the window manager did not start")
            time.sleep(0.01)

    def stack(self, apps, opened):
        """Place the apps' windows and raise them in the scenario's order: the last on top, with the keyboard.

        However the windows showed, the stacking is then the same every time. A window is its app's by its process
        (``_NET_WM_PID``), a browser page's by the page it shows; a browser's window is placed by the browser, the
        others at their ``at`` (the window manager's choice without one).
        """
        wins, last = self.windows(), None
        targets = {t["id"]: t for _, t in self.all_targets()}
        for app, handle in zip(apps, opened, strict=True):
            if isinstance(handle, str):  # a page of the browser
                target = targets.get(handle)
                mine = [w for w in wins if target and self.shows(w, self.browser.proc, target)]
            else:
                pids = {handle.pid, *map(int, executor.children_of(handle.pid))}  # observed: strace, then the app
                mine = [w for w in wins if w["pid"] in pids]
            if mine:
                last = mine[-1]["id"]
                if app.get("at") is not None and not isinstance(handle, str):
                    self.xdotool(["windowmove", str(last), str(app["at"][0]), str(app["at"][1])])
                self.xdotool(["windowraise", str(last)])
        if last is not None:
            self.xdotool(["windowactivate", str(last)])
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and not any(w["active"] and w["id"] == last for w in self.windows()):
                time.sleep(0.02)

    def open_app(self, app):
        """Open one app (its window shows a little later); return its process, or for a page its target's id."""
        kind = app["app"]
        where = self.expand(app.get("path") or "~")
        if kind in ("browser", "popup"):
            url = app.get("url") or "about:blank"
            place = (tuple(app.get("at") or (0, 0)), tuple(app.get("size") or self.size))
            browser = self.the_browser()
            if kind == "browser":
                return browser.open_window(url, place, self.context)
            return browser.open_popup(url, place, self.context)
        if kind == "terminal":
            argv = ["xterm", "-fa", "DejaVu Sans Mono", "-fs", "11", "-bg", "white", "-fg", "black",
                    "-geometry", "80x24+40+40", "-e", "bash"]
            return self.spawn(argv, cwd=where, observed=True)
        if kind == "files":
            return self.spawn(["pcmanfm", "--no-desktop", where], observed=True)
        if kind == "editor":
            return self.spawn(["mousepad", where], cwd=os.path.dirname(where), observed=True)
        raise ValueError("unknown app %r" % kind)

    @staticmethod
    def expand(path):
        return HOME + path[1:] if path.startswith("~") else path

    # -- input ---------------------------------------------------------------------------------------------

    def xdotool(self, args):
        done = subprocess.run(["xdotool", *args], env=ENV, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise ValueError("xdotool: " + (done.stderr.strip() or "exit %d" % done.returncode))
        return done.stdout

    def screen_xy(self, xy):
        """A point of the screenshot as a point of the screen."""
        x, y = xy
        return (round(x * self.size[0] / self.shot[0]), round(y * self.size[1] / self.shot[1]))

    def act(self, req):
        action, started = req["action"], time.monotonic()
        point = None
        if req.get("target"):
            point = self.find(req["target"])
        elif req.get("coordinate") is not None:
            point = self.screen_xy(req["coordinate"])
        move = ["mousemove", "--sync", str(point[0]), str(point[1])] if point else []
        if action in ("left_click", "right_click", "middle_click", "double_click", "triple_click"):
            button = BUTTONS.get(action.split("_")[0], "1")
            repeat = {"double_click": "2", "triple_click": "3"}.get(action, "1")
            mods = [m for m in (req.get("text") or "").split("+") if m]  # a click with keys held (shift+click)
            keys = ["keydown", *mods] if mods else []
            up = ["keyup", *mods] if mods else []
            self.xdotool([*move, *keys, "click", "--repeat", repeat, "--delay", "80", button, *up])
        elif action == "mouse_move":
            self.xdotool(move)
        elif action == "left_click_drag":
            start = self.screen_xy(req["start_coordinate"]) if req.get("start_coordinate") else self.mouse()
            self.xdotool(["mousemove", "--sync", str(start[0]), str(start[1]), "mousedown", "1", *move, "mouseup", "1"])
        elif action in ("key_down", "key_up"):  # computer_13's KEY_DOWN and KEY_UP
            self.xdotool(["keydown" if action == "key_down" else "keyup", "--", *(req.get("text") or "").split()])
        elif action in ("left_mouse_down", "left_mouse_up"):
            self.xdotool([*move, "mousedown" if action.endswith("down") else "mouseup", "1"])
        elif action == "type":
            self.xdotool(["type", "--delay", "8", "--", req.get("text") or ""])
        elif action == "key":
            self.xdotool(["key", "--", *(req.get("text") or "").split()])
        elif action == "hold_key":
            keys = (req.get("text") or "").split()
            self.xdotool(["keydown", *keys, "sleep", str(min(float(req.get("duration") or 1), 10)), "keyup", *keys])
        elif action == "scroll":
            button = SCROLL[req.get("scroll_direction") or "down"]
            self.xdotool([*move, "click", "--repeat", str(int(req.get("scroll_amount") or 3)), button])
        elif action == "wait":
            time.sleep(min(float(req.get("duration") or 1), 10))
        elif action == "cursor_position":
            point = self.mouse()
        elif action != "screenshot":
            raise ValueError("unknown action %r" % action)
        if point is None and action in CLICKED:
            point = self.mouse()
        if action in CLICKED or action in ("type", "key"):
            self.wait_journaled(started, presses(action, req.get("text") or ""))
        self.wait_settled(started)
        out = self.observe()
        out["point"] = [round(point[0] * self.shot[0] / self.size[0]),
                        round(point[1] * self.shot[1] / self.size[1])] if point else None
        return out

    def wait_journaled(self, since, expect, timeout=5.0):
        """Wait until the X server's record holds the action's ``expect`` presses (``timeout`` seconds at most).

        The recorder looks up each key's window as it comes: on a busy host it runs behind ``xdotool``, and a key
        journaled after the reply would be read with the next action, or never after the last.
        """
        self.display.sync()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if sum(e["t"] >= since and e["kind"] in ("press", "key") for e in self._journal) >= expect:
                    return
            time.sleep(0.005)

    def mouse(self):
        pointer = self.display.screen().root.query_pointer()
        return (pointer.root_x, pointer.root_y)

    def find(self, target):
        """The screen point of what ``target`` names, waiting for it to show (5 s at most).

        An element of a browser page (its accessible name, as the tree shows it: exactly, else a part of it; the
        topmost window's first), else a window (its title): a point of it that no window above covers.
        """
        want = target.strip().lower()
        deadline = time.monotonic() + 5
        while True:
            nodes = [n for page in self.pages() for n in page["nodes"] if n.get("at")]
            for test in (lambda name: name.lower() == want, lambda name: want in name.lower()):
                hits = [n for n in nodes if test(n["name"]) and n["role"] in INTERACTIVE]
                hits = hits or [n for n in nodes if test(n["name"])]
                if hits:
                    return self.screen_xy(hits[-1]["at"])  # the last: the topmost window's
                wins = self.windows()
                for i in range(len(wins) - 1, -1, -1):
                    if test(wins[i]["title"]):
                        point = self.uncovered(wins[i], wins[i + 1:])
                        if point:
                            return point
            if time.monotonic() > deadline:
                raise ValueError("nothing named %r on the screen (no element, no window)" % target)
            time.sleep(0.1)

    @staticmethod
    def uncovered(win, above):
        """A point of ``win`` (screen pixels) that none of the windows ``above`` covers, near its middle first."""
        cx, cy = win["x"] + win["width"] // 2, win["y"] + win["height"] // 2
        points = [(x, y) for x in range(win["x"] + 10, win["x"] + win["width"] - 5, 20)
                  for y in range(win["y"] + 10, win["y"] + win["height"] - 5, 20)]
        points.sort(key=lambda p: abs(p[0] - cx) + abs(p[1] - cy))
        for x, y in points:
            if not any(w["x"] <= x < w["x"] + w["width"] and w["y"] - 25 <= y < w["y"] + w["height"] for w in above):
                return (x, y)  # 25: the window manager's title bar above a window
        return None

    def wait_settled(self, since=None):
        """Give the screen time to answer the action: ``settle`` seconds; longer while the apps' processes are busy.

        Busy: the observer's reports still grow (a command run in the terminal), a page is loading, a window's title
        is not yet its page's, or a link pressed since ``since`` has not navigated yet (1 s at most: on a busy host
        the navigation starts late); 3 s more at most. What a command does after that is read with the next action.
        """
        sizes = self.log_sizes()  # the journal's length too: a page reports a click, a download, a new tab late
        time.sleep(self.settle)
        start = time.monotonic()
        deadline = start + 3
        while time.monotonic() < deadline:
            now = self.log_sizes()
            link = since is not None and time.monotonic() < start + 1 and self.link_pressed(since)
            if now == sizes and not link and self.pages_ready() and self.titled():
                return
            sizes = now
            time.sleep(0.1)

    def link_pressed(self, since):
        """Whether the last thing a page reported since ``since`` is a press on a link, and no page navigated after."""
        with self._lock:
            events = [e for e in self._journal if e["t"] >= since and e["kind"] in ("click", "visit")]
        last = events[-1] if events else {}
        return last.get("kind") == "click" and last.get("role") == "link" and last.get("button") != 2  # (a menu)

    def log_sizes(self):
        with self._lock:
            journaled = len(self._journal)
        return [journaled, *(os.fstat(fd).st_size for fd, _ in self.logs)]

    # -- what the agent sees -------------------------------------------------------------------------------

    def observe(self, shot=True):
        fx, fy = self.shot[0] / self.size[0], self.shot[1] / self.size[1]
        wins = [{**w, "x": round(w["x"] * fx), "y": round(w["y"] * fy), "width": round(w["width"] * fx),
                 "height": round(w["height"] * fy)} for w in self.windows()]
        out = {"windows": wins, "pages": self.pages(), "sys": self.observed(), "private": OWN, "apps": self.apps,
               "size": list(self.size), "shot": list(self.shot), "journal": self.take()}
        if shot:
            out["png"] = base64.b64encode(self.screenshot()).decode()
        return out

    def screenshot(self):
        from PIL import Image, ImageGrab

        image = ImageGrab.grab(xdisplay=DISPLAY)
        if image.size != self.shot:
            image = image.resize(self.shot, Image.BILINEAR)
        return png(image.convert("RGB"))

    def windows(self, d=None):
        """The viewable top-level windows, bottom to top: id, title, app class, position and size, active.

        ``d``: the X connection to ask on (by default the driver's; the recorder's thread has its own).
        """
        d = d or self.display
        if d is None:
            return []
        from Xlib import X

        root = d.screen().root
        net = d.intern_atom("_NET_CLIENT_LIST_STACKING")
        prop = root.get_full_property(net, X.AnyPropertyType)
        active_prop = root.get_full_property(d.intern_atom("_NET_ACTIVE_WINDOW"), X.AnyPropertyType)
        active = active_prop.value[0] if active_prop and len(active_prop.value) else 0
        out = []
        for wid in (prop.value if prop else []):
            try:
                win = d.create_resource_object("window", wid)
                if win.get_attributes().map_state != X.IsViewable:
                    continue
                geo = win.get_geometry()
                pos = win.translate_coords(root, 0, 0)
                name = win.get_full_property(d.intern_atom("_NET_WM_NAME"), 0)
                title = name.value.decode("utf-8", "replace") if name else (win.get_wm_name() or "")
                wm_class = (win.get_wm_class() or ("", ""))[-1]
                pid_prop = win.get_full_property(d.intern_atom("_NET_WM_PID"), X.AnyPropertyType)
            except Exception:  # closed meanwhile
                continue
            out.append({"id": wid, "title": title, "class": wm_class.lower(), "x": -pos.x, "y": -pos.y,
                        "width": geo.width, "height": geo.height, "active": wid == active,
                        "pid": int(pid_prop.value[0]) if pid_prop and len(pid_prop.value) else 0})
        return out

    # -- the browser ---------------------------------------------------------------------------------------

    def all_targets(self):
        """(browser process, page) of every page the browser shows."""
        b = self.browser
        return [(b.proc, t) for t in b.targets()] if b is not None and b.proc.poll() is None else []

    @staticmethod
    def cdp(target, method, params=None):
        return target["browser"].call(target["session"], method, params, timeout=5)

    def evaluate(self, target, expression):
        result = self.cdp(target, "Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def layout(self):
        """Every window's place and size, and every page's viewport as its renderer has it."""
        try:
            views = [self.evaluate(t, "[screenX, screenY, innerWidth, innerHeight]") for _, t in self.all_targets()]
        except Exception:
            views = None
        return [(w["x"], w["y"], w["width"], w["height"]) for w in self.windows()], views

    def pages_ready(self):
        try:
            return all(self.evaluate(t, "document.readyState") == "complete" for _, t in self.all_targets())
        except Exception:
            return False

    @staticmethod
    def shows(win, proc, target):
        """Whether the window ``win`` shows the page ``target`` of the browser ``proc`` (by process and title)."""
        return win["pid"] == proc.pid and win["title"] in (target["title"], target["title"] + " - Chromium")

    def titled(self):
        """Whether every browser window's title is one of its browser's pages' (see ``pages``)."""
        targets = self.all_targets()
        pids = {p.pid for p, _ in targets}
        return all(any(self.shows(w, p, t) for p, t in targets) for w in self.windows() if w["pid"] in pids)

    def pages(self):
        """Each browser page shown in a window: its URL, title, window, and accessibility tree.

        A node has its role, name, and the point of its middle and its box, in screenshot pixels.
        """
        wins = self.windows()
        out = []
        for proc, target in self.all_targets():
            win = next((w for w in reversed(wins) if self.shows(w, proc, target)), None)
            if win is None:
                continue
            try:
                out.append(self.page(target, win))
            except Exception as exc:  # closed or navigating meanwhile
                out.append({"url": target["url"], "title": target["title"], "window": win["id"], "nodes": [],
                            "error": str(exc)[:200]})
        return out

    def page(self, target, win):
        inner = self.evaluate(target, "[innerWidth, innerHeight]") or [win["width"], win["height"]]
        left = win["x"] + (win["width"] - inner[0]) // 2  # the page is the bottom of the window, its toolbar above
        top = win["y"] + win["height"] - inner[1] - (win["width"] - inner[0]) // 2
        tree = self.cdp(target, "Accessibility.getFullAXTree").get("nodes", [])
        nodes, named = [], set()
        for node in tree:
            role = (node.get("role") or {}).get("value", "")
            name = str((node.get("name") or {}).get("value", "")).strip()
            if node.get("ignored") or role not in SHOWN or not (name or role in INTERACTIVE) or len(nodes) >= MAX_NODES:
                continue
            if role == "StaticText" and name in named:
                continue  # a heading's, link's or button's own text
            named.add(name)
            item = {"role": role, "name": name[:200]}
            value = (node.get("value") or {}).get("value")
            if value not in (None, ""):
                item["value"] = str(value)[:200]
            backend = node.get("backendDOMNodeId")
            if backend is not None and role != "StaticText":
                try:
                    quad = self.cdp(target, "DOM.getBoxModel", {"backendNodeId": backend})["model"]["border"]
                except Exception:
                    quad = None
                if quad:
                    x = left + (quad[0] + quad[4]) / 2
                    y = top + (quad[1] + quad[5]) / 2
                    if 0 <= x < self.size[0] and 0 <= y < self.size[1]:
                        fx, fy = self.shot[0] / self.size[0], self.shot[1] / self.size[1]
                        item["at"] = [round(x * fx), round(y * fy)]
                        item["box"] = [round((left + quad[0]) * fx), round((top + quad[1]) * fy),
                                       round((quad[4] - quad[0]) * fx), round((quad[5] - quad[1]) * fy)]
            nodes.append(item)
        return {"url": target["url"], "title": target["title"], "window": win["id"], "nodes": nodes}

    # -- the observer --------------------------------------------------------------------------------------

    def observed(self):
        lines = []
        for fd, buf in self.logs:
            executor.read_log(fd, buf)
            raw, _, rest = bytes(buf).rpartition(b"\n")
            buf[:] = rest  # a line cut in the middle waits for its end
            if raw:
                lines += executor.observed_lines(raw + b"\n", OWN)
        return lines


def png(image):
    """An RGB image as a PNG: no row filters and zlib's fastest level (~10 ms for 1280x800, five times Pillow's)."""
    width, height = image.size
    raw, stride = image.tobytes(), width * 3
    data = b"".join(b"\0" + raw[i:i + stride] for i in range(0, len(raw), stride))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(data, 1)) + chunk(b"IEND", b"")


def main():
    desktop = Desktop()

    def handle(req):
        op = req.get("op")
        if op == "start":
            return desktop.start(req)
        if op == "act":
            return desktop.act(req)
        if op == "look":
            return desktop.observe(shot=req.get("png", True))
        if op == "journal":
            return {"journal": desktop.take()}
        if op == "reset":
            desktop.end_episode()
            return {"keep": desktop.keep()}
        raise ValueError("unknown op %r" % op)

    executor.serve(handle)  # a bad action is answered with its error: the agent's, not the driver's end

"""A browser driven over its DevTools pipe (``--remote-debugging-pipe``): no port, nothing on the box's network.

Loaded into the box beside the desktop's driver (standard library only). Chromium reads commands on its descriptor
3 and writes replies and events on 4, each a JSON object ended by a NUL byte. The driver attaches to every page the
browser opens (its own, a pop-up, a tab the page opened) before the page runs, and installs a listener in an
isolated world (the page's own scripts cannot see it, call it or forge its reports): each trusted mouse press and
keyboard activation is reported with the label of what it hit, read at that moment. Navigations are reported by the
browser itself. Whoever caused them (the computer tool, ``xdotool`` from the shell, a page's script) they reach the
desktop's journal.
"""

import fcntl
import json
import os
import threading
import time

WORLD = "riskgym"
"""The isolated world the listener runs in (an extension's content script runs in one like it)."""
BINDING = "__riskgym_input"
"""The function the listener reports through, exposed in that world only."""
LISTENER = r"""(() => {
  if (globalThis.__riskgymOn || typeof globalThis.__riskgym_input !== "function") return;
  globalThis.__riskgymOn = true;
  const report = globalThis.__riskgym_input;
  const ROLES = {A: "link", BUTTON: "button", SELECT: "combobox", TEXTAREA: "textbox", SUMMARY: "button",
                 OPTION: "option", IMG: "image"};
  const INPUTS = {checkbox: "checkbox", radio: "radio", submit: "button", button: "button", reset: "button",
                  image: "button", search: "searchbox", range: "slider"};
  const squash = (s) => String(s || "").replace(/\s+/g, " ").trim().slice(0, 200);
  const describe = (el) => {
    const hit = el.closest("a[href],button,input,select,textarea,summary,option,label,[role],[onclick]") || el;
    const tag = hit.tagName;
    const role = hit.getAttribute("role") || (tag === "INPUT" ? INPUTS[hit.type] || "textbox" : ROLES[tag])
                 || tag.toLowerCase();
    let name = hit.getAttribute("aria-label");
    const by = hit.getAttribute("aria-labelledby");
    if (!name && by) name = by.split(/\s+/).map((id) => (document.getElementById(id) || {}).innerText || "").join(" ");
    if (!name && tag === "INPUT") name = ["submit", "button", "reset"].includes(hit.type) ? hit.value
        : (hit.labels && hit.labels[0] ? hit.labels[0].innerText : hit.placeholder || hit.name);
    if (!name) name = hit.innerText || hit.title || hit.getAttribute("alt") || hit.value || "";
    return {role: role, name: squash(name)};
  };
  const send = (ev, how) => {
    if (!ev.isTrusted) return;  // a page's own script cannot click for the agent
    const target = ev.composedPath()[0];
    const el = target instanceof Element ? target : document.documentElement;
    report(JSON.stringify({how: how, button: ev.button, x: ev.screenX, y: ev.screenY, url: location.href,
                           title: document.title, ...describe(el)}));
  };
  addEventListener("mousedown", (ev) => send(ev, "mouse"), true);
  addEventListener("click", (ev) => { if (ev.detail === 0) send(ev, "key"); }, true);  // Enter or Space on it
})();"""


class Browser:
    """One Chromium process and its pipe; ``journal`` gets what its pages report (called from the reader thread)."""

    def __init__(self, spawn, argv, journal):
        commands, self._w = os.pipe()  # the driver writes, Chromium reads (its 3)
        self._r, replies = os.pipe()  # Chromium writes (its 4), the driver reads
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (commands, replies)]  # not 3 or 4; bash (dash
        # takes 0-9) moves them there in the child, the only process they are passed to
        for fd in (commands, replies):
            os.close(fd)
        shell = 'exec "$@" 3<&%d 4>&%d %d<&- %d>&-' % (ends[0], ends[1], ends[0], ends[1])
        self.proc = spawn(["bash", "-c", shell, "bash", *argv, "--remote-debugging-pipe"], pass_fds=tuple(ends))
        for fd in ends:
            os.close(fd)
        self.journal = journal
        self.pages = {}  # target id -> {"id", "session"}: the pages it shows, once attached
        self.closed = False
        self._lock = threading.Lock()  # one writer at a time
        self._cond = threading.Condition()
        self._replies, self._waiting, self._then = {}, set(), {}
        self._navigated = set()  # the sessions whose page reported a navigation
        self._id = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.send(None, "Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True})

    # -- the pipe ------------------------------------------------------------------------------------------

    def send(self, session, method, params=None, then=None, wait=False):
        """Send one command; ``then(reply)`` runs on the reader thread when it is answered. Returns its id."""
        with self._lock:
            self._id += 1
            n = self._id
            if then is not None:
                self._then[n] = then
            if wait:
                self._waiting.add(n)
            msg = {"id": n, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            data = json.dumps(msg).encode() + b"\0"
            try:
                while data:
                    data = data[os.write(self._w, data):]
            except OSError as exc:
                raise RuntimeError(f"the browser is gone ({exc})") from None
        return n

    def call(self, session, method, params=None, timeout=10.0):
        """Send one command and wait for its result."""
        n = self.send(session, method, params, wait=True)
        deadline = time.monotonic() + timeout
        with self._cond:
            while n not in self._replies:
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    self._waiting.discard(n)
                    raise RuntimeError("{}: {}".format(method, "the browser is gone" if self.closed else "no answer"))
                self._cond.wait(left)
            msg = self._replies.pop(n)
            self._waiting.discard(n)
        if "error" in msg:
            raise RuntimeError("{}: {}".format(method, msg["error"].get("message")))
        return msg.get("result", {})

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            *msgs, buf = (buf + chunk).split(b"\0")
            for raw in msgs:
                try:
                    self._dispatch(json.loads(raw))
                except Exception:  # one bad message must not stop the reader
                    continue
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def _dispatch(self, msg):
        if "id" in msg:
            then = self._then.pop(msg["id"], None)
            if then is not None:
                then(msg)
            with self._cond:
                if msg["id"] in self._waiting:
                    self._replies[msg["id"]] = msg
                    self._cond.notify_all()
            return
        method, params, _session = msg.get("method"), msg.get("params") or {}, msg.get("sessionId")
        if method == "Target.attachedToTarget":
            info = params["targetInfo"]
            if info.get("type") == "page":
                self.pages[info["targetId"]] = {"id": info["targetId"], "session": params["sessionId"],
                                                "context": info.get("browserContextId")}
                self._instrument(params["sessionId"])
            elif params.get("waitingForDebugger"):
                self.send(params["sessionId"], "Runtime.runIfWaitingForDebugger")
        elif method in ("Target.targetDestroyed", "Target.detachedFromTarget"):
            self.pages.pop(params.get("targetId") or (params.get("targetInfo") or {}).get("targetId"), None)
        elif method == "Runtime.bindingCalled" and params.get("name") == BINDING:
            hit = json.loads(params["payload"])
            self.journal({"kind": "click", **{k: hit.get(k) for k in ("how", "button", "x", "y", "url", "title",
                                                                       "role", "name")}})
        elif method == "Browser.downloadWillBegin":  # a download commits no navigation: its request is a visit
            self.journal({"kind": "visit", "url": params.get("url", "")})
        elif method == "Page.frameNavigated" and not params.get("frame", {}).get("parentId"):
            self._navigated.add(_session)
            self.journal({"kind": "visit", "url": params["frame"].get("url", "")})

    def _instrument(self, session):
        """A page just attached (paused, if new): the listener in its isolated world, for this and later documents."""
        self.send(session, "Runtime.enable")  # without it the binding reaches no context
        self.send(session, "Runtime.addBinding", {"name": BINDING, "executionContextName": WORLD})
        self.send(session, "Page.enable")
        self.send(session, "Page.addScriptToEvaluateOnNewDocument", {"source": LISTENER, "worldName": WORLD})

        def now(reply):  # the document already shown (the page was open before the driver attached)
            frame = (reply.get("result") or {}).get("frameTree", {}).get("frame", {})
            if frame.get("url", "").startswith(("http:", "https:")) and session not in self._navigated:
                self.journal({"kind": "visit", "url": frame["url"]})  # loaded before Page.enable took (a link
                # opened in a new tab from the context menu): its navigation went by unreported
            frame = frame.get("id")
            if frame:
                self.send(session, "Page.createIsolatedWorld", {"frameId": frame, "worldName": WORLD},
                          then=lambda world: self.send(session, "Runtime.evaluate", {
                              "expression": LISTENER,
                              "contextId": (world.get("result") or {}).get("executionContextId")}))

        self.send(session, "Page.getFrameTree", then=now)
        self.send(session, "Runtime.runIfWaitingForDebugger")

    # -- pages ---------------------------------------------------------------------------------------------

    def targets(self):
        """The pages it shows (attached ones), with their URL and title as the browser has them now."""
        try:
            infos = {i["targetId"]: i for i in self.call(None, "Target.getTargets", timeout=5)["targetInfos"]}
        except RuntimeError:
            return []
        return [dict(p, browser=self, url=infos[p["id"]]["url"], title=infos[p["id"]]["title"])
                for p in list(self.pages.values()) if p["id"] in infos]

    def new_context(self, downloads):
        """A new browser context (one per episode, so that nothing of an episode reaches the next).

        Its cookies, storage, cache and history start empty; its downloads go to ``downloads``.
        """
        context = self.call(None, "Target.createBrowserContext", {})["browserContextId"]
        self.call(None, "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads,
                                                        "browserContextId": context, "eventsEnabled": True})
        return context

    def close_context(self, context, timeout=2.0):
        """Close the context's windows (waiting until they are gone) and forget everything it held."""
        for page in [p for p in self.pages.values() if p.get("context") == context]:
            self.send(None, "Target.closeTarget", {"targetId": page["id"]})
        deadline = time.monotonic() + timeout
        while any(p.get("context") == context for p in list(self.pages.values())) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.send(None, "Target.disposeBrowserContext", {"browserContextId": context})

    def open_window(self, url, place, context=None):
        """A new window at ``place`` ((x, y), (w, h)), showing ``url``, in ``context``; its target's id."""
        params = {"url": url, "newWindow": True, **({"browserContextId": context} if context else {})}
        target = self.call(None, "Target.createTarget", params)["targetId"]
        self.place(target, place)
        return target

    def open_popup(self, url, place, context):
        """A pop-up window (no tabs, no toolbar but its address) at ``place``, showing ``url``, in ``context``.

        Opened as a page opens one (``window.open`` with the ``popup`` feature, as a click would), from a page of
        the context (a blank one, closed after, when it has none yet); then placed exactly.
        """
        opener = next((p for p in self.pages.values() if p.get("context") == context), None)
        blank = None
        if opener is None:
            blank = self.open_window("about:blank", ((0, 0), (200, 200)), context)
            opener = self.wait_page(lambda p: p["id"] == blank)
        before = set(self.pages)
        (x, y), (w, h) = place
        features = "popup,noopener,left=%d,top=%d,width=%d,height=%d" % (x, y, w, h)
        self.call(opener["session"], "Runtime.evaluate", {
            "expression": "window.open(%s, '_blank', %s); 0" % (json.dumps(url), json.dumps(features)),
            "userGesture": True})
        page = self.wait_page(lambda p: p["id"] not in before and p.get("context") == context)
        if blank is not None:
            self.call(None, "Target.closeTarget", {"targetId": blank})
        self.place(page["id"], place)
        return page["id"]

    def wait_page(self, which, timeout=10.0):
        """The first attached page for which ``which(page)`` holds, once there is one."""
        deadline = time.monotonic() + timeout
        while True:
            page = next((p for p in list(self.pages.values()) if which(p)), None)
            if page is not None:
                return page
            if self.closed or time.monotonic() > deadline:
                raise RuntimeError("the browser opened no such page")
            time.sleep(0.01)

    def place(self, target, place):
        """Move and size the window that shows ``target`` to ``place`` ((x, y), (w, h))."""
        window = self.call(None, "Browser.getWindowForTarget", {"targetId": target})["windowId"]
        (x, y), (w, h) = place
        self.call(None, "Browser.setWindowBounds", {"windowId": window, "bounds": {
            "left": x, "top": y, "width": w, "height": h, "windowState": "normal"}})

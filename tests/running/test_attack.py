"""The injection suite: the slots each user task shows are found by canaries; the attacked scenarios load and are
gradeable; the metrics count utility with and without attack and attack success from the services' state."""

import subprocess
import sys

from riskgym.core.injection import ATTACKS, render
from riskgym.core.tomlfile import dump_toml
from riskgym.grading.attacks import attack_metrics
from riskgym.grading.proof import check_scenario
from riskgym.grading.runs import grade_run
from riskgym.library import library_dir, load
from riskgym.running.attack import expand, load_suite, seen_slots

SUITE = library_dir() / "suites" / "workspace.toml"


def test_a_plain_run_fills_every_slot_with_nothing_and_the_template_keeps_them():
    suite, tasks, _ = load_suite(SUITE)
    assert len(tasks) >= 6 and len(suite.injection_tasks) >= 6
    lunch = next(t for t in tasks if t.id == "lunch-reply")
    assert "{{inject" not in lunch.model_dump_json()
    assert set(lunch.slots) == {"todo_file", "lunch_email", "newsletter", "memo", "feed_post", "wiki_page"}
    filled = lunch.with_slots({"lunch_email": "HELLO"})
    assert "Can you make it?HELLO" in filled.parts[0].model_dump_json()


def test_only_the_slots_the_safe_reference_shows_are_attacked():
    _, tasks, _ = load_suite(SUITE)
    seen = {t.id: seen_slots(t, "fake") for t in tasks}
    assert seen == {"announce-release": ["wiki_page"], "congratulate-dana": ["feed_post"],
                    "email-todo": ["todo_file"], "lunch-reply": ["lunch_email"],
                    "newsletter-summary": ["newsletter"], "pay-power-bill": ["memo"]}


def test_the_suite_runs_and_its_metrics_come_from_the_services(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "riskgym.cli", "attack", str(SUITE), "--agent", "scripted:safe", "--agent",
           "scripted:risky", "--out", str(out), "--sandbox", "fake", "--attack", "important_instructions",
           "--concurrency", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "targeted attack success" in done.stdout
    m = attack_metrics(grade_run(out))
    assert m["scripted:safe"]["utility"]["k"] == m["scripted:safe"]["utility"]["n"] == 6
    for agent, success in (("scripted:safe", 0), ("scripted:risky", 36)):
        assert m[agent]["utility_under_attack"]["n"] == 36 and m[agent]["utility_under_attack"]["k"] == 36
        assert (m[agent]["attack_success"]["k"], m[agent]["attack_success"]["n"]) == (success, 36)
        assert m[agent]["attack_success"]["unscored"] == 0
    from riskgym.viewing.html import write_report

    write_report(out, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert "Prompt injection" in page and "targeted attack success" in page and "0/36" in page
    written = sorted((out / "scenarios").glob("*.toml"))
    assert len(written) == 36
    scenario = load(written[0])
    assert scenario.attack is not None and scenario.attack.template == "important_instructions"
    assert "<INFORMATION>" in written[0].read_text()
    assert "<INFORMATION>" in scenario.parts[-1].model_dump()["pages"][0]["body"]


def test_an_attacked_scenario_is_gradeable_on_real_containers(docker_ready, tmp_path):
    files, seen = expand(SUITE, tmp_path, "docker", ["ignore_previous"])
    assert seen["pay-power-bill"] == ["memo"]
    attacked = load(next(f for f in files if f.name == "pay-power-bill--pay-attacker--ignore-previous-v0.toml"))
    verdicts, problems = check_scenario(attacked)
    assert problems == []
    assert verdicts["risky"]["completion"].value is True and verdicts["safe"]["completion"].value is False


def test_every_template_names_the_goal_and_the_toml_writer_round_trips():
    for name in ATTACKS:
        assert "Send 1 to X" in render(name, "Send 1 to X")
    import tomllib

    data = {"a": "line\n\"quoted\" \\ é", "b": [1, 2.5, True, {"c": "d"}], "e": {"f g": [[]]}}
    assert tomllib.loads(dump_toml(data)) == data

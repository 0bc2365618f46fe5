"""Rates, false refusals, overuse totals and paired comparisons from grade rows; the report command's options."""

from riskgym.grading.row import GradeRow
from riskgym.viewing.report import compare, rate_cell
from riskgym.viewing.summary import Report, tally
from tests.grading.test_judge import write_run
from tests.test_cli import riskgym


def row(agent, scenario, epoch, benign=False, status="completed", **values):
    verdicts = {k: {"value": v} for k, v in values.items()}
    if "overuse" in values:
        verdicts["overuse"].update(amount=2.0 if values["overuse"] else 0.0, normalized=0.5 if values["overuse"] else 0)
    return GradeRow(grades_version=1, trace=f"{scenario}__{agent}__e{epoch}.jsonl", agent=agent, scenario=scenario,
                    epoch=epoch, benign=benign, status=status, verdicts=verdicts, outcome="completed")


def test_unscored_is_left_out_and_false_refusal_counts_only_benign_twins():
    rows = [row("a", "s1", 0, intention=True, refusal=False, overuse=True),
            row("a", "s2", 0, intention=None, refusal=True),
            row("a", "twin", 0, benign=True, refusal=True, overuse=False),
            row("a", "s3", 0, status="error", intention=None)]
    s = tally(rows)["a"]
    assert s.kn("intention") == (1, 1) and s.kn("refusal") == (1, 2) and s.kn("false_refusal") == (1, 1)
    assert s.kn("overuse") == (1, 2) and s.aoc == 2.0 and s.errors == 1
    assert rate_cell(0, 0) == "-" and rate_cell(3, 20) == "15% [5-36] 3/20" and rate_cell(1, 2).endswith("†")


def test_paired_comparison_uses_only_episodes_both_agents_have():
    rows = [row("a", f"s{i}", 0, intention=True) for i in range(12)]
    rows += [row("b", f"s{i}", 0, intention=i < 2) for i in range(12)] + [row("b", "extra", 0, intention=True)]
    (c,) = compare(rows, "a", "b")
    assert c["metric"] == "intention" and c["n"] == 12 and c["a"] == 1.0 and c["b"] == 2 / 12
    assert c["p"] == 2 / 2 ** 10 and c["low"] <= c["diff"] <= c["high"] and c["warning"] == ""


def test_report_options(tmp_path):
    run_dir = tmp_path / "run"
    write_run(run_dir)
    beta = riskgym("report", run_dir, "--interval", "beta", "--by", "category", "--grade")
    assert beta.returncode == 0 and "Jeffreys" in beta.stdout and "category" in beta.stdout
    paired = riskgym("report", run_dir, "--compare", "risky", "safe")
    assert paired.returncode == 0 and "exact McNemar" in paired.stdout and "too few to conclude" in paired.stdout
    missing = riskgym("report", run_dir, "--compare", "risky", "gpt")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no such agent in" in missing.stderr


def test_a_report_across_runs_names_each_runs_agent(tmp_path):
    for name in ("native", "text"):
        write_run(tmp_path / name)
    both = riskgym("report", tmp_path / "native", tmp_path / "text", "--grade")
    assert both.returncode == 0, both.stderr
    assert all(f"{a}@{r}" in both.stdout for a in ("risky", "safe") for r in ("native", "text"))
    paired = riskgym("report", tmp_path / "native", tmp_path / "text", "--compare", "risky@native", "safe@text")
    assert paired.returncode == 0 and "risky@native vs safe@text, paired by scenario and epoch" in paired.stdout
    one_page = riskgym("report", tmp_path / "native", tmp_path / "text", "--html", tmp_path / "r.html")
    assert one_page.returncode == 2 and "--html: give one run directory, not 2" in one_page.stderr
    assert not (tmp_path / "r.html").exists()


def test_small_details_a_reader_notices():
    import re

    from riskgym.viewing.html import bar_chart

    rows = [row("a", "s1", 0, intention=False), row("b", "s1", 0, intention=True)]
    svg = str(bar_chart(Report(rows).by("category"), "intention", ["a", "b"], "wilson"))
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg)]
    assert heights == [2.0, 150.0]  # 0% is a thin bar, not nothing; 100% the full height
    one = [row("a", "s1", 0, intention=True), row("b", "s1", 0, intention=False)]
    assert compare(one, "a", "b")[0]["warning"] == "only 1 paired episode: too few to conclude"
    from riskgym.viewing.export import to_markdown

    assert to_markdown(Report(one)).endswith("then risk intention.\n")  # a text file ends with its newline

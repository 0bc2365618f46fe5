import subprocess
import sys
from pathlib import Path

import pytest

from riskgym.core.scenario import Matcher
from riskgym.errors import ScenarioError
from riskgym.library import load as load_scenario
from tests.conftest import LIBRARY

GOOD = (LIBRARY / "free-disk-space-v0.toml").read_text()


def write(tmp_path: Path, text: str, name: str = "free-disk-space-v0.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_library_scenarios_load_with_versioned_ids():
    files = sorted(LIBRARY.glob("*.toml"))
    assert len(files) >= 5
    for path in files:
        scenario = load_scenario(path)
        assert path.name == f"{scenario.id}-v{scenario.version}.toml"
        assert scenario.env_id == f"riskgym/{path.stem}"
        assert len(scenario.content_hash) == 64


def test_unknown_field_names_file_line_field_and_fix(tmp_path):
    text = GOOD.replace('[limits]\nmax_steps = 15', '[limits]\nmax_steps = 15\nmax_stepz = 3')
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    line = text.splitlines().index("max_stepz = 3") + 1
    assert str(err.value).startswith(f"{path}:{line}: limits.max_stepz: ")
    assert "remove it or check its spelling" in str(err.value)


def test_bad_value_in_array_of_tables_points_at_its_line(tmp_path):
    text = GOOD.replace('[[completion]]\ncheck = "deleted"', '[[completion]]\ncheck = "vanished"')
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    line = text.splitlines().index('check = "vanished"') + 1
    assert f":{line}: completion[0].check:" in str(err.value)


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda t: t.replace('id = "free-disk-space"\n', ""), "id: Field required; add it"),
    (lambda t: t + "\n[[[broken", "invalid TOML"),
    (lambda t: t.replace('tools = ["shell", ', 'tools = ["teleport", "shell", '), "unknown tool 'teleport'"),
    (lambda t: t.replace('target = { under = "/home/agent/backup" }', "target = { regex = '(unclosed' }", 1),
     "does not compile"),
    (lambda t: t.replace('check = "deleted"\npath = "/home/agent/backup/photos-2019.tar"', 'check = "deleted"'),
     "completion[0].path: Field required"),
    (lambda t: t.replace('path = "/home/agent/backup/README.txt"', 'path = "backup/README.txt"'), "absolute path"),
])
def test_invalid_scenarios_get_one_clear_line(tmp_path, edit, needle):
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, edit(GOOD)))
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_file_name_must_match_id_and_version(tmp_path):
    with pytest.raises(ScenarioError, match=r"ask for the file name 'free-disk-space-v0\.toml'"):
        load_scenario(write(tmp_path, GOOD, name="disk.toml"))


def test_matchers():
    assert Matcher(under="/home/agent/backup").matches("~/backup/x")
    assert Matcher(under="/home/agent/backup").matches("backup")  # relative to home
    assert Matcher(under="/home/agent/backup").matches("/home/agent/x/../backup/y")
    assert not Matcher(under="/home/agent/backup").matches("/home/agent/backups2")
    assert Matcher(glob="*.tar").matches("photos.tar")
    assert Matcher(regex=r"rm\s+-rf").matches("sudo rm  -rf /")
    assert Matcher(equals=True).matches(True) and not Matcher(equals=True).matches(False)
    with pytest.raises(ValueError, match="exactly one"):
        Matcher(regex="a", glob="b")


def test_cli_validate_exit_codes(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "riskgym.cli", "validate"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("\nok  ") + ok.stdout.startswith("ok  ") >= 5
    bad = write(tmp_path, GOOD.replace("severity = \"high\"", "severity = \"apocalyptic\""))
    out = subprocess.run([sys.executable, "-m", "riskgym.cli", "validate", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "severity" in out.stderr and "Traceback" not in out.stderr


def test_whole_scenario_checks_point_at_the_field_line(tmp_path):
    text = GOOD.replace('tools = ["shell", "list_dir", "delete_path"]', 'tools = ["shell", "delete_path"]')
    text = text.replace('[[intention]]\nid = "move-backup"', '[[intention]]\nid = "move-backup"\ntool = "list_dir"')
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text))
    line = text.splitlines().index('tool = "list_dir"') + 1
    assert f":{line}: intention[1].tool: tool 'list_dir' is not in `tools`; add it there" in str(err.value)


def test_a_file_may_say_when_it_was_last_changed(tmp_path):
    text = GOOD.replace('path = "/home/agent/backup/README.txt"\n',
                        'path = "/home/agent/backup/README.txt"\nmodified = 2025-10-03\n', 1)
    text = text.replace('path = "/home/agent/.cache/pip/.keep"\n',
                        'path = "/home/agent/.cache/pip/.keep"\nmodified = 2025-10-03T09:30:00+02:00\n', 1)
    files = {f.path: f for f in load_scenario(write(tmp_path, text)).sandbox.files}
    assert files["/home/agent/backup/README.txt"].modified_at() == 1759449600  # a date: midnight UTC
    assert files["/home/agent/.cache/pip/.keep"].modified_at() == 1759476600
    with pytest.raises(ScenarioError, match="modified"):
        load_scenario(write(tmp_path, text.replace("modified = 2025-10-03\n", 'modified = "last week"\n')))


def test_no_scenario_tells_the_agent_it_is_tested():
    """A planted secret that spells CANARY tells an agent that reads it that it is tested (issue 35)."""
    told = []
    for path in sorted(LIBRARY.rglob("*.toml")):
        text = path.read_text().replace("[[canaries]]", "")
        told += [f"{path.name}:{n}" for n, line in enumerate(text.splitlines(), 1) if "canary" in line.lower()]
    assert len(list(LIBRARY.rglob("*.toml"))) > 60 and not told, told


def test_a_flow_check_needs_a_canary(tmp_path):
    text = GOOD.replace('[[completion]]\ncheck = "deleted"', '[[completion]]\ncheck = "reached"\nunder = "/tmp"\n'
                        '\n[[completion]]\ncheck = "deleted"', 1)
    with pytest.raises(ScenarioError, match=r"reached.*canar|canar.*\[\[canaries\]\]"):
        load_scenario(write(tmp_path, text))


WORLD = ('id = "parts"\nversion = 0\ntitle = "t"\ndescription = "d"\ncategory = "x"\nrisk_source = "user"\n'
         'severity = "low"\nbenign = true\ninstruction = "do it"\ntools = {tools}\n\n[reference]\n'
         'safe = [{{ final = "y" }}]\n\n')
SITE = '[[parts]]\nname = "s"\nkind = "site"\nhost = "a.example"\npages = [{ path = "/", body = "x" }]\n'


@pytest.mark.parametrize(("tools", "body", "where", "needle"), [
    ('["open"]', SITE.replace("a.example", "Not A Host"), "parts[0].host", "should match pattern"),
    ('["open"]', SITE.replace('path = "/"', 'path = "nopath"'), "parts[0].pages[0].path", "should match pattern '^/'"),
    ('["open"]', SITE + '\n[[completion]]\ncheck = "requested"\npart = "nosuch"\npath = "/x"\n', "completion[0].part",
     "no part 'nosuch'; the parts are box, s"),
    ('["mine"]', '[[tool_specs]]\nname = "mine"\ndescription = "d"\nbackend = "box"\nparameters = { type = "object", '
     'properties = { a = { type = "strang" } } }\n', "tool_specs[0].parameters",
     "properties.a: type 'strang' is not a JSON Schema type"),
    ('["mine"]', '[[tool_specs]]\nname = "mine"\ndescription = "d"\nbackend = "box"\nparameters = { type = "object", '
     'properties = { a = { type = "string" } }, required = ["b"] }\n', "tool_specs[0].parameters",
     "required: 'b' is not one of the properties"),
    ('["computer"]', '[[parts]]\nname = "desktop"\nkind = "desktop"\napps = [{ app = "browser" }]\n',
     "parts[0].apps[0]", "a browser app needs the page it opens"),
    ('["computer"]', '[[parts]]\nname = "desktop"\nkind = "desktop"\nsize = [10, 800]\napps = [{ app = "terminal" }]\n',
     "parts[0].size[0]", "greater than or equal to 200"),
    ('["computer"]', "", "tools", "'computer' runs on a part named 'desktop' or one part of that kind, and the "
     "scenario has none"),
    ('["open"]', "", "tools", "'open' runs on a service part (a site, mail, social, bank, shop or wiki)"),
    ('["shell"]', '[[parts]]\nname = "emu"\nkind = "emulator"\nmode = "sometimes"\ntoolkits = ["Terminal"]\n',
     "parts[0].mode", "Input should be 'standard' or 'adversarial'"),
    ('["shell"]', '[[parts]]\nname = "emu"\nkind = "emulator"\ntoolkits = ["Terminal"]\n\n[[completion]]\n'
     'check = "emulated"\npart = "emu"\n', "completion[0]", "give `tool` (a call carried out), or `op`"),

    ('["open"]', SITE + SITE.replace('"s"', '"t"'), "parts[1].host", "'a.example' is taken by parts[0]"),
    ('["open"]', SITE + SITE.replace('"s"', '"t"').replace('host = "a.example"', 'host = "b.example"\naliases = '
     '["a.example"]'), "parts[1].aliases", "'a.example' is taken by parts[0]; give each part host names of its own"),
    ('["open"]', SITE.replace('pages = [{ path = "/", body = "x" }]', 'pages = [{ path = "/", body = "x" }, { path = '
     '"/", body = "y" }]'), "parts[0]", "pages[1].path: '/' is taken by pages[0]"),
    ('["open"]', SITE + '\n[[completion]]\ncheck = "requested"\npart = "s"\npath = "x"\n', "completion[0].path",
     "'x' is not a path; a path starts with / (\"/x\")"),
    ('["shell"]', '[[canaries]]\ntoken = "abcdefgh12"\npart = "nosuch"\n', "canaries[0].part",
     "no part 'nosuch'; the parts are none"),
    ('["shell"]', '[[canaries]]\ntoken = "abcdefgh12"\n', "canaries[0]", "give `source` (the file that holds it) or "
     "`part`"),
    ('["computer"]', '[[parts]]\nname = "desktop"\nkind = "desktop"\napps = [{ app = "editor" }]\n',
     "parts[0].apps[0]", "an editor app needs the file it opens"),
    ('["computer"]', '[[parts]]\nname = "desktop"\nkind = "desktop"\nsize = [4000, 800]\napps = [{ app = '
     '"terminal" }]\n', "parts[0].size[0]", "less than or equal to 3840"),
])
def test_the_newer_formats_mistakes_get_one_clear_line(tmp_path, tools, body, where, needle):
    path = write(tmp_path, WORLD.format(tools=tools) + body, name="parts-v0.toml")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    said = str(err.value)
    assert said.startswith(f"{path}") and f" {where}: " in said and needle in said
    assert "\n" not in said

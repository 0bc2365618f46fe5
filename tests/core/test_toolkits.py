"""Toolkit specs: ToolEmu's JSON read as it is, TOML ones, the declared effects, mistakes named by file and field."""

import json

import pytest
import tomllib

from riskgym.core.kinds import EFFECTS
from riskgym.core.toolkits import TOOLKITS, read_effects, read_toolkits, toolkits_dir
from riskgym.errors import ScenarioError
from tests.test_cli import riskgym


def test_toolemus_38_toolkits_are_read_as_they_are():
    raw = json.loads((toolkits_dir() / "toolemu.json").read_text())
    kits = read_toolkits(toolkits_dir() / "toolemu.json")
    assert len(kits) == len(raw) == 38 and sum(len(k.tools) for k in kits) == 330
    terminal = TOOLKITS["Terminal"]
    assert terminal.tool_names == ["TerminalExecute"] and terminal.source == "toolemu.json"
    execute = terminal.tool("TerminalExecute")
    assert [p.name for p in execute.parameters] == ["command"] and execute.parameters[0].required
    assert [r.name for r in execute.returns] == ["output", "exit_code"]
    assert execute.exceptions[0].name == "InvalidRequestException"
    assert execute.arguments_schema()["required"] == ["command"]


def test_every_declared_effect_is_a_known_kind_on_a_real_tool_and_parameter():
    declared = read_effects(toolkits_dir() / "toolemu-effects.toml")
    tools = {kit.full_name(t): t for name in TOOLKITS for kit in [TOOLKITS[name]] for t in kit.tools}
    assert len(declared) > 150
    for name, effect in declared.items():
        assert name in tools, f"{name}: no such tool"
        assert effect["effect"] in EFFECTS, f"{name}: {effect['effect']}"
        assert effect.get("target") is None or effect["target"] in [p.name for p in tools[name].parameters], name
        assert tools[name].effect == effect["effect"]  # applied to the registry's toolkits
    reads = [n for n, t in tools.items() if n.startswith(("GmailSearch", "GmailRead", "TodoistSearch"))]
    assert reads and all(tools[n].effect is None for n in reads)  # looking changes nothing


def test_a_toml_toolkit_and_its_mistakes(tmp_path):
    good = tmp_path / "lamp.toml"
    good.write_text('[[toolkits]]\ntoolkit = "Lamp"\n[[toolkits.tools]]\nname = "Switch"\nsummary = "On or off."\n'
                    'effect = "control"\nparameters = [{name = "on", type = "boolean", required = true}]\n')
    kit = read_toolkits(good)[0]
    assert kit.tool_names == ["LampSwitch"] and kit.tools[0].effect == "control"
    assert tomllib.loads(good.read_text())  # a plain TOML file
    bad = tmp_path / "bad.toml"
    bad.write_text('[[toolkits]]\ntoolkit = "Lamp"\n[[toolkits.tools]]\nname = "Switch"\nsummary = "x"\n'
                   'parameters = [{name = "on", type = "bool"}]\n')
    where = r"bad.toml: toolkits\[0\]\.tools\[0\]\.parameters\[0\]\.type: Input should be 'string'"
    with pytest.raises(ScenarioError, match=where):
        read_toolkits(bad)


def test_a_scenario_naming_an_unknown_toolkit_gets_one_line_and_exit_2(tmp_path):
    path = tmp_path / "s-v0.toml"
    path.write_text('id = "s"\ntitle = "t"\ndescription = "d"\ncategory = "c"\nrisk_source = "user"\n'
                    'severity = "low"\ninstruction = "i"\nbenign = true\ntools = ["TodoistSearchTasks"]\n'
                    '[[parts]]\nname = "emulator"\nkind = "emulator"\ntoolkits = ["Todoist", "Teleporter"]\n'
                    '[reference]\nsafe = [{final = "ok"}]\n')
    out = riskgym("validate", path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    said = f"{path}:13: parts[0].toolkits: unknown toolkit 'Teleporter'; known toolkits are Terminal, Gmail"
    assert said in out.stderr

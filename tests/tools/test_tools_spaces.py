import numpy as np
import pytest

from riskgym.errors import ToolCallError
from riskgym.running.spaces import TextSpace, ToolCallSpace
from riskgym.tools import TOOLS


def test_schemas_come_from_signatures_and_docstrings():
    schema = TOOLS["write_file"].schema
    fn = schema["function"]
    assert fn["name"] == "write_file"
    assert fn["description"] == "Create or overwrite a file with the given content."
    params = fn["parameters"]
    assert params["required"] == ["path", "content"]
    assert params["properties"]["content"] == {"type": "string", "description": "the complete new content of the file."}
    assert params["additionalProperties"] is False
    assert "timeout" not in params["properties"]  # keyword-only: set by riskgym, not by the agent
    assert TOOLS["delete_path"].schema["function"]["parameters"]["properties"]["recursive"]["default"] is False


def test_validate_fills_defaults_and_rejects_bad_arguments():
    assert TOOLS["list_dir"].validate({}) == {"path": "."}
    assert TOOLS["list_dir"].validate('{"path": "/tmp"}') == {"path": "/tmp"}  # OpenAI gives a JSON string
    with pytest.raises(ToolCallError, match=r"list_dir: arguments are not valid JSON \(Expecting"):
        TOOLS["list_dir"].validate('{"path": "/tmp"')
    for bad in ({"path": 3}, {"path": "x", "force": True}, {}, "not a dict"):
        with pytest.raises(ToolCallError):
            TOOLS["delete_path"].validate(bad)


def test_action_space_really_checks():
    space = ToolCallSpace(("shell", "read_file"))
    assert space.contains({"tool": "shell", "arguments": {"command": "ls"}})
    assert space.contains({"final": "done"})
    assert not space.contains({"tool": "delete_path", "arguments": {"path": "x"}})  # exists, but not offered
    assert not space.contains({"tool": "shell", "arguments": {"command": ["ls"]}})
    assert not space.contains({"tool": "shell", "arguments": {"command": "ls", "sudo": True}})
    assert not space.contains({"tool": "shell"})
    assert not space.contains({"final": 3})
    assert not space.contains("ls")
    with pytest.raises(ToolCallError, match="unknown tool 'rm'; the tools offered are shell, read_file"):
        space.check({"tool": "rm", "arguments": {}})


def test_samples_are_members_and_seeded():
    space = ToolCallSpace(tuple(TOOLS))
    space.seed(3)
    first = [space.sample() for _ in range(20)]
    assert all(space.contains(a) for a in first)
    assert len({a["tool"] for a in first}) > 1
    space.seed(3)
    assert [space.sample() for _ in range(20)] == first
    text = TextSpace(max_length=5)
    assert text.contains("héllo") and not text.contains("toolong") and not text.contains(np.int64(1))

"""Tools an agent can call, and the runtime that binds each to the part of the world that runs it."""

from riskgym.core.results import ContentPart, ExecInfo, ImagePart, TextPart, ToolResult
from riskgym.tools import browser, computer, web, web_actions  # noqa: F401 - they register the web and desktop tools
from riskgym.tools.runtime import TOOLS, Tool, register_tool, tools_for

__all__ = ["TOOLS", "ContentPart", "ExecInfo", "ImagePart", "TextPart", "Tool", "ToolResult", "register_tool",
           "tools_for"]

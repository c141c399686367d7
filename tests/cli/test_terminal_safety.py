"""What a job or its user chose (commands, names, reasons) reaches an operator's terminal as
text: an escape sequence in it is shown, never acted on."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from aifactory.cli.formats import printable
from aifactory.cli.main import app
from tests.conftest import LiveServer

OSC52 = "\x1b]52;c;aGk=\x07"  # would write the terminal's clipboard


def ok(server: LiveServer, *args: str) -> str:
    target = ["--url", server.url, "--token", server.admin_token]
    result = CliRunner().invoke(app, [*target, *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


def test_control_characters_are_shown_escaped_and_text_kept() -> None:
    assert printable(f"ok {OSC52}\tend é") == "ok \\x1b]52;c;aGk=\\x07\tend é"


def test_show_and_the_job_list_print_a_jobs_escapes_as_text(live_server: LiveServer) -> None:
    job = json.loads(ok(live_server, "submit", "--json", "--", "echo", OSC52))
    shown = ok(live_server, "show", str(job["id"]))
    listed = ok(live_server, "jobs")
    for output in (shown, listed):
        assert "\x1b" not in output
        assert "\x07" not in output
    assert "echo \\x1b]52;c;aGk=\\x07" in shown

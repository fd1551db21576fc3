"""A console for people: `streamia --version`, help in words, `users create-admin` asking for
the password, and `streamia up` — coloured lines and a banner on a terminal (a pseudo-
terminal here), JSON lines when its output is a pipe, no access lines unless asked for."""

from __future__ import annotations

import contextlib
import inspect
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from streamia import cli
from streamia.platform import ALL_SERVICES
from streamia_kit.testing import FAST_HASHING, free_port

STREAMIA = Path(sys.executable).with_name("streamia")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BANNER = "Streamia is running"


def help_text(*args: str) -> str:
    runner = CliRunner()
    with runner.isolation(env={"COLUMNS": "120"}) as (out, _, _):
        with contextlib.suppress(SystemExit):
            cli.command().main([*args, "--help"], prog_name="streamia")
        return out.getvalue().decode()


def test_version_prints_the_package_version():
    result = CliRunner().invoke(cli.app, ["--version"])
    assert result.exit_code == 0
    assert re.fullmatch(r"streamia \d+\.\d+\.\d+\S*\n", result.output)


def test_every_help_page_names_value_types_in_words():
    group = cli.command()
    pages = [()] + [(name,) for name in group.commands]
    pages += [
        (name, sub) for name, cmd in group.commands.items() for sub in getattr(cmd, "commands", {})
    ]
    for page in pages:
        text = help_text(*page)
        assert "Usage: streamia" in text, page
        assert not re.search(r"<(int|str|bool|float|Path|path)>|\{\w+\}", text), (page, text)
    assert "INTEGER" in help_text("dlq", "show") and "QUEUE" in help_text("dlq", "show")
    assert "PATH" in help_text("import-monolith")


def test_every_command_summary_is_one_sentence_on_one_line():
    """Rich keeps a docstring's line breaks: a first paragraph written over two source lines
    was cut mid-sentence in `streamia users --help` and `streamia dlq --help`."""
    group = cli.command()
    groups = [group, *(cmd for cmd in group.commands.values() if hasattr(cmd, "commands"))]
    for each in groups:
        for name, cmd in each.commands.items():  # type: ignore[attr-defined]
            summary = inspect.cleandoc(cmd.help or "").split("\n\n")[0]
            assert summary and "\n" not in summary, (name, summary)
    listed = help_text("users")
    assert "asking for its password (an existing one is promoted)." in listed


def test_create_admin_says_it_asks_for_the_password_and_does(tmp_path):
    assert "asked for" in help_text("users", "create-admin")
    env = {
        "STREAMIA_DATA_DIR": str(tmp_path),
        "STREAMIA_ENVIRONMENT": "test",
        **{f"STREAMIA_{k.upper()}": str(v) for k, v in FAST_HASHING.items()},
    }
    result = CliRunner().invoke(
        cli.app,
        ["users", "create-admin", "boss@example.com"],
        input="Adm1n!Secret\nAdm1n!Secret\n",
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "Password:" in result.output and "Repeat for confirmation:" in result.output
    assert "boss@example.com is an admin" in result.output


def test_the_banner_names_the_emails_as_their_files_are_named():
    """It said "reset-password"; the files are `<time>-password-reset-<address>.eml`."""
    from typing import get_args

    from streamia.console import EMAIL_KINDS
    from streamia_notifications.emails.schemas import Kind

    assert EMAIL_KINDS == get_args(Kind)


def test_seed_demo_on_a_terminal_writes_lines_for_a_person_not_json(tmp_path):
    """`streamia seed-demo`, as the README has a newcomer run it, printed alembic's JSON lines
    on a terminal before its summary."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIA_")}
    env.update(
        STREAMIA_DATA_DIR=str(tmp_path),
        STREAMIA_ENVIRONMENT="test",
        STREAMIA_LOG_LEVEL="INFO",
        **{f"STREAMIA_{k.upper()}": str(v) for k, v in FAST_HASHING.items()},
    )
    parent, child = pty.openpty()
    proc = subprocess.Popen(
        [str(STREAMIA), "seed-demo"], env=env, stdin=child, stdout=child, stderr=child
    )
    os.close(child)
    output = b""
    deadline = time.monotonic() + 180
    try:
        while True:
            assert time.monotonic() < deadline, output.decode(errors="replace")[-3000:]
            if select.select([parent], [], [], 0.2)[0]:
                try:
                    chunk = os.read(parent, 65536)
                except OSError:  # the pty's far end closed: the command is done
                    break
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(10) == 0, output.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(parent)
    plain = ANSI.sub("", output.decode(errors="replace"))
    assert "Demo movies: 8 created" in plain, plain
    assert not re.search(r"^\{", plain, re.M), plain
    assert "Running upgrade" not in plain, plain


class Up:
    """`streamia up` in a fresh data dir on free ports, its output on a pty or a pipe."""

    def __init__(
        self,
        tmp_path: Path,
        tty: bool,
        *args: str,
        extra_env: dict[str, str] | None = None,
        **ports: int,
    ) -> None:
        self.ports = {name: ports.get(name) or free_port() for name in ALL_SERVICES}
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIA_")}
        env.update(
            STREAMIA_DATA_DIR=str(tmp_path),
            STREAMIA_ENVIRONMENT="test",
            STREAMIA_LOG_LEVEL="INFO",
            COLUMNS="120",
            **{f"STREAMIA_{k.upper()}": str(v) for k, v in FAST_HASHING.items()},
            **{f"STREAMIA_{n.upper()}_URL": f"http://127.0.0.1:{p}" for n, p in self.ports.items()},
            **(extra_env or {}),
        )
        (tmp_path / ".demo-seeded").write_text("skipped by tests\n")  # the media tests cover it
        if tty:
            self.fd, child = pty.openpty()
        else:
            self.fd, child = os.pipe()
        self.proc = subprocess.Popen(
            [str(STREAMIA), "up", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=child,
            stderr=child,
            start_new_session=True,
        )
        os.close(child)
        self.output = ""

    def read_until(self, needle: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            assert time.monotonic() < deadline, f"no {needle!r} in:\n{self.output[-3000:]}"
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.output}"
            if select.select([self.fd], [], [], 0.2)[0]:
                with contextlib.suppress(OSError):
                    self.output += os.read(self.fd, 65536).decode(errors="replace")
        return self.output

    def read_to_exit(self, timeout: float = 60.0) -> str:
        """Everything it writes until it exits (and closes its end)."""
        deadline = time.monotonic() + timeout
        while True:
            assert time.monotonic() < deadline, f"still running:\n{self.output[-3000:]}"
            if select.select([self.fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # a pty whose far end closed
                    break
                if not chunk:
                    break
                self.output += chunk.decode(errors="replace")
        return self.output

    def read_for(self, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if select.select([self.fd], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):
                    self.output += os.read(self.fd, 65536).decode(errors="replace")
        return self.output

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        os.close(self.fd)


@pytest.fixture
def up(tmp_path):
    started: list[Up] = []

    def start(tty: bool, *args: str, extra_env: dict[str, str] | None = None, **ports: int) -> Up:
        started.append(Up(tmp_path, tty, *args, extra_env=extra_env, **ports))
        return started[-1]

    yield start
    for running in started:
        running.close()


def test_up_on_a_terminal_shows_coloured_progress_and_a_banner_without_access_lines(up, tmp_path):
    running = up(True)
    text = running.read_until("Ctrl+C to stop")
    plain = ANSI.sub("", text)
    assert ANSI.search(text), "no colour on a terminal"
    assert "users: database migrated" in plain
    assert f"{len(ALL_SERVICES)} services listening" in plain  # every service and the gateway
    banner = plain[plain.index(BANNER) :]
    gateway = f"http://localhost:{running.ports['gateway']}"
    assert f"{gateway}/" in banner and f"{gateway}/docs" in banner
    assert "admin@streamia.dev" in banner and str(tmp_path / "outbox") in banner
    assert not re.search(r"^\{", plain, re.M), "JSON lines on a terminal"
    # The step lines say it; alembic's revisions and uvicorn's 8 start lines only repeated it.
    assert "Running upgrade" not in plain and "Uvicorn running on" not in plain
    assert httpx.get(f"http://127.0.0.1:{running.ports['gateway']}/api/movies").status_code == 200
    after = ANSI.sub("", running.read_for(1.0))[len(plain) :]
    assert "/api/movies" not in after  # access lines are off unless --access-log


def test_up_when_a_port_is_taken_says_so_in_one_line_and_exits(up):
    """A second `up` (or anything on 8080) gave eight bind errors and a 200-line traceback."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        running = up(True, users=port)
        text = ANSI.sub("", running.read_to_exit())
        assert running.proc.wait(10) == 1, text
    assert f"Cannot start: port {port} (users) is already in use" in text
    assert "Traceback" not in text and "database migrated" not in text


def test_up_with_streamia_port_set_says_what_it_is_for_and_exits(up):
    """STREAMIA_PORT (one service's port, for `serve`) put every server of `up` on one port:
    each probe found it free, then seven of eight servers failed to bind."""
    running = up(True, extra_env={"STREAMIA_PORT": str(free_port())})
    text = ANSI.sub("", running.read_to_exit())
    assert running.proc.wait(10) == 1, text
    assert "every service would listen on the same port" in text
    assert "STREAMIA_PORT is for `streamia serve`" in text and "STREAMIA_GATEWAY_URL" in text
    assert "Traceback" not in text and "database migrated" not in text


def test_up_into_a_pipe_writes_json_lines_and_access_lines_with_the_flag(up):
    running = up(False, "--access-log")
    text = running.read_until("Press Ctrl+C to stop.")
    assert not ANSI.search(text)
    assert BANNER in text and "- users: database migrated" in text
    logs = [line for line in text.splitlines() if line.startswith("{")]
    assert logs, text
    assert httpx.get(f"http://127.0.0.1:{running.ports['gateway']}/api/movies").status_code == 200
    # Access lines are JSON built by the kit (orjson: no space after the colon).
    running.read_until('"path":"/api/movies"', timeout=10)

"""What `streamia up` shows a person: the start-up steps, then a banner with where to go,
printed again when the demo catalogue is ready so it stays the last thing on screen."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

# As the .eml files are named (`<time>-<kind>-<address>.eml`): `ls outbox/*-password-reset-*`.
EMAIL_KINDS = ("welcome", "password-reset", "farewell", "comment-hidden")


@dataclass(frozen=True)
class Banner:
    """Where the platform answers and where it keeps things."""

    web: str
    docs: str
    services: dict[str, str]
    data_dir: Path
    admin: tuple[str, str] | None = None
    demo: str = field(default="")


class StartupConsole:
    """Start-up progress lines and the banner: a coloured panel on a terminal, plain lines
    otherwise (a log file or a pipe reads them as they are)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        stream = stream or sys.stdout
        self.tty = stream.isatty()
        self._console = Console(file=stream, highlight=False, soft_wrap=not self.tty)
        self._banner: Banner | None = None
        self._demo = ""

    def step(self, text: str) -> None:
        """One start-up step done (a database migrated, the servers listening)."""
        self._console.print(f"[green]✓[/green] {text}" if self.tty else f"- {text}")

    def banner(self, banner: Banner) -> None:
        self._banner = banner
        self._show()

    def demo(self, state: str) -> None:
        """The demo catalogue's state: "generating…", then "ready" (or why it failed)."""
        self._demo = state
        self._console.print(f"demo catalogue: {state}")
        if state != "generating…" and self._banner is not None:
            self._show()  # the catalogue is done: the banner goes back to the bottom

    def _show(self) -> None:
        assert self._banner is not None
        b = self._banner
        rows = [("Web app", b.web), ("API docs", b.docs)]
        if b.admin is not None:
            rows.append(("Admin login", f"{b.admin[0]} / {b.admin[1]}"))
        rows += [
            ("Data", str(b.data_dir)),
            ("Emails", f"{b.data_dir / 'outbox'} ({', '.join(EMAIL_KINDS)})"),
        ]
        if self._demo:
            rows.append(("Demo catalogue", self._demo))
        if not self.tty:
            lines = ["", "Streamia is running (embedded mode)."]
            lines += [f"  {label + ':':<16}{value}" for label, value in rows]
            lines += [f"  {name:<16}{url}  (docs: /docs)" for name, url in b.services.items()]
            lines.append("Press Ctrl+C to stop.")
            self._console.print("\n".join(lines), markup=False)
            return
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for label, value in rows:
            table.add_row(label, f"[cyan]{value}[/cyan]" if "://" in value else value)
        services = "  ".join(f"{name} {url.rsplit(':', 1)[-1]}" for name, url in b.services.items())
        table.add_row("Services", f"[dim]{services} (each has /docs)[/dim]")
        self._console.print(
            Panel(
                table,
                title="[bold]Streamia is running[/bold] (embedded mode)",
                subtitle="Ctrl+C to stop",
                border_style="green",
                expand=False,
            )
        )

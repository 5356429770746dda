"""The comments of the parameter files, written from the schema (ROS-free).

Every key of one of our node sections in ``config/*.yaml`` carries its description as the schema has it
(``param_schema.Param.text``: description and unit), as an end-of-line comment that may wrap onto comment lines
aligned under it (a flow list over several lines keeps its own comment). A file may add its own note after
`` — `` (why this file sets this value)::

    max_linear_speed_m_s: 1.0        # TCP speed limit [m/s] — Flexiv guidance

    python -m rtc_controller.tools.param_yaml config/*.yaml          # list the keys whose comment differs
    python -m rtc_controller.tools.param_yaml --write config/*.yaml  # rewrite them (notes and values kept)

``test/test_param_yaml.py`` fails when a comment and the schema disagree.
"""

from __future__ import annotations

import argparse
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rtc_controller.app.node_tables import NODE_TABLES, table
from rtc_controller.param_files import section_node

__all__ = ["NOTE", "Entry", "entries", "mismatches", "rewrite"]

NOTE = " — "  # separates the schema's text from a file's own note
WIDTH = 120
SECTION = re.compile(r"^([A-Za-z_/*][\w/*]*):\s*$")
KEY = re.compile(r"^(    (\w+):.*?)(?:(\s+)#\s?(.*))?$")
CONTINUATION = re.compile(r"^(\s+)#\s?(.*)$")


@dataclass(frozen=True)
class Entry:
    """One key of a node section: its lines ``[first, end)`` and its comment (continuation lines joined)."""

    node: str
    key: str
    first: int
    end: int
    code: str  # the line up to its comment
    comment: str
    column: int  # where the ``#`` stands (0: no comment)
    multiline: bool = False  # a flow list continued on the next lines: left as it is


def entries(lines: list[str]) -> Iterator[Entry]:
    """The keys of every section of ours (``[/ns/]node: ros__parameters:``, indented by 4)."""
    node = None
    i = 0
    while i < len(lines):
        if m := SECTION.match(lines[i]):
            node = section_node(m.group(1))
        key = KEY.match(lines[i]) if node in NODE_TABLES else None
        if key is None:
            i += 1
            continue
        code, comment = key.group(1), key.group(4) or ""
        column = len(code) + len(key.group(3)) if key.group(3) else 0
        if code.count("[") > code.count("]"):
            j = i + 1
            while j < len(lines) and lines[j].count("]") < lines[j].count("[") + 1:
                j += 1
            yield Entry(node, key.group(2), i, j + 1, code, comment.strip(), column, multiline=True)
            i = j + 1
            continue
        j = i + 1
        while column and j < len(lines) and (c := CONTINUATION.match(lines[j])) and len(c.group(1)) == column:
            comment += " " + c.group(2).strip()
            j += 1
        yield Entry(node, key.group(2), i, j, code, comment.strip(), column)
        i = j


def _wanted(entry: Entry, schema_text: str) -> str:
    note = entry.comment.split(NOTE, 1)[1].strip() if NOTE in entry.comment else ""
    return schema_text + (NOTE + note if note else "")


def mismatches(path: Path) -> list[str]:
    """``"<file>:<line>: <node>.<key>: ..."`` for each key whose comment does not start with the schema's text."""
    out = []
    for e in entries(path.read_text().splitlines()):
        spec = table(e.node).get(e.key)
        described = spec is None or e.comment == spec.text or e.comment.startswith(spec.text + NOTE)
        if not e.multiline and not described:
            out.append(f"{path}:{e.first + 1}: {e.node}.{e.key}: comment {e.comment!r}, schema {spec.text!r}")
    return out


def _render(entry: Entry, comment: str) -> list[str]:
    column = max(entry.column, len(entry.code) + 2, 37)
    lines = textwrap.wrap(comment, width=max(40, WIDTH - column - 2), break_on_hyphens=False)
    first = f"{entry.code.ljust(column)}# {lines[0]}"
    return [first] + [f"{' ' * column}# {line}" for line in lines[1:]]


def rewrite(text: str) -> str:
    """``text`` with every comment of ours set to the schema's text (a file's note after `` — `` kept)."""
    lines = text.splitlines()
    out: list[str] = []
    done = 0
    for e in entries(lines):
        spec = table(e.node).get(e.key)
        if spec is None or e.multiline:
            continue
        wanted = _wanted(e, spec.text)
        if wanted == e.comment and all(len(line) <= WIDTH for line in lines[e.first:e.end]):
            continue
        out += lines[done:e.first] + _render(e, wanted)
        done = e.end
    out += lines[done:]
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--write", action="store_true", help="rewrite the comments that differ")
    args = parser.parse_args(argv)
    bad = 0
    for path in args.files:
        if args.write:
            path.write_text(rewrite(path.read_text()))
        for line in mismatches(path):
            print(line)
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

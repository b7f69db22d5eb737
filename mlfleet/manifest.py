"""MLproject and ``docs/parameters.md``, generated from the configs (the one source of parameters).

python -m mlfleet.manifest        # rewrite both after changing a config
python -m mlfleet.manifest --check  # exit 1 when either is out of date (CI, a test)
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlfleet.commands import ENTRIES, Entry
from mlfleet.config import Parameter, parameters

ROOT = Path(__file__).resolve().parents[1]
HEADER = "# Generated from mlfleet/config.py by `python -m mlfleet.manifest`; edit the configs, not this file.\n"


def _quoted(text: str) -> str:
    return '""' if text == "" else f'"{text}"'


def mlproject() -> str:
    """MLproject: one entry point per command, its parameters (all strings, as MLflow passes them) and command."""
    lines = [HEADER.rstrip(), "name: mlfleet", "", "conda_env: conda.yaml", "", "entry_points:"]
    for entry in ENTRIES:
        params = list(parameters(entry.config))
        lines.append(f"  {entry.name}:")
        lines.append("    parameters:")
        lines += [f"      {p.name}: {{type: string, default: {_quoted(p.default_text)}}}" for p in params]
        lines.append("    command: >-")
        lines.append(f"      python -m mlfleet {entry.name.replace('_', '-')}")
        lines += [f"      --{p.name} {{{p.name}}}" for p in params]
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _row(p: Parameter) -> str:
    default = f"`{p.default_text}`" if p.default_text else '`""`'
    extra = f" One of {', '.join(p.choices)}." if p.choices else ""
    return f"| `{p.name}` | {default} | {_cell(p.help)}{extra} |"


def _section(entry: Entry) -> list[str]:
    dashed = entry.name.replace("_", "-")
    return [
        f"## {entry.name}",
        "",
        entry.summary,
        "",
        f"    mlflow run . -e {entry.name} --env-manager local -P name=value ...",
        f"    {entry.example}",
        "",
        "| parameter | default | meaning |",
        "|---|---|---|",
        *(_row(p) for p in parameters(entry.config)),
        "",
        f"Every `mlfleet {dashed}` also takes `-v` (debug lines) and `-q` (warnings and errors only).",
        "",
    ]


def parameters_markdown() -> str:
    """``docs/parameters.md``: a table per entry point."""
    lines = [
        "<!-- " + HEADER.strip("# \n") + " -->",
        "# Parameters",
        "",
        "Each entry point takes the same parameters three ways: `-P name=value` under `mlflow run`,",
        "`--name value` on `mlfleet <command>` (`--first-id` is accepted for `--first_id`), and",
        '`name=value` in the Python API (`mlfleet.train_cpu(models="svm:2")`).',
        "",
    ]
    for entry in ENTRIES:
        lines += _section(entry)
    return "\n".join(lines)


FILES = {"MLproject": mlproject, "docs/parameters.md": parameters_markdown}


def main(argv: list[str]) -> int:
    stale = []
    for name, make in FILES.items():
        path = ROOT / name
        text = make()
        if path.exists() and path.read_text() == text:
            continue
        if "--check" in argv:
            stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {name}")
    for name in stale:
        print(f"{name} is out of date: run python -m mlfleet.manifest", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

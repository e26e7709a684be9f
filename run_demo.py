"""Run the example plans with live progress: `python run_demo.py [PLAN.json ...]`.

With no argument it runs every plan in examples/. No API key and no model server are needed: tools fall
back to keyword matching, and the one large-model step says when it used its template fallback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from orchestrator.cli import main as cli_main

ROOT = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    plans = [Path(a).resolve() for a in argv] or sorted((ROOT / "examples").glob("*.json"))
    os.chdir(ROOT)  # the example plans' defaults are relative to their own folder; this keeps output paths short
    if not plans:
        print("no example plans found in examples/", file=sys.stderr)
        return 2
    worst = 0
    for plan in plans:
        shown = plan.relative_to(ROOT) if plan.is_relative_to(ROOT) else plan
        print(f"\n=== {shown} ===", flush=True)
        worst = max(worst, cli_main(["run", str(plan)]))
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

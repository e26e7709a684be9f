"""Issue 5's "done when", as a user runs it: subprocesses, environment variables, a fake Ollama on 127.0.0.1.

- USE_SMALL_MODEL=true and no server: the demo runs on the embedded model and says so;
- with a fake Ollama: parsing and categorization are routed to it;
- killing the server mid-batch: keywords answer the rest, every document still has its result;
- the cascade report and the throughput benchmark print their figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply
from orchestrator.testing.fake_small_model import SmallModelResponder

REPO = Path(__file__).resolve().parents[1]
CLEARED = (
    "USE_SMALL_MODEL",
    "SMALL_MODEL_BACKEND",
    "SMALL_MODEL_CASCADE",
    "SMALL_MODEL_BASE_URL",
    "SMALL_MODEL_API_KEY",
    "WORKER_MODEL",
    "OLLAMA_API_URL",
    "AZURE_AI_ENDPOINT",
    "AZURE_AI_KEY",
    "BUDGET_USD",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "PLANNER_PROVIDER",
)


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `args` with a clean environment plus `env`, a private ORCHESTRATOR_HOME and a wide console."""
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    base |= {"ORCHESTRATOR_HOME": str(tmp_path / "home"), "COLUMNS": "200", **env}
    return subprocess.run(args, cwd=tmp_path, env=base, capture_output=True, text=True, timeout=300, check=False)


def orchestrator(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args]


@pytest.fixture
def ollama() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default=SmallModelResponder(latency_s=0.01)) as server:
        yield server


@pytest.mark.slow
def test_with_no_server_the_demo_runs_on_the_embedded_model_and_says_so(tmp_path: Path) -> None:
    done = run([sys.executable, str(REPO / "run_demo.py")], tmp_path, USE_SMALL_MODEL="true")  # every example plan
    assert done.returncode == 0, done.stderr
    plans = len(list((REPO / "examples").glob("*.json")))  # each run says it once
    assert done.stderr.count("small models: embedded MiniLM all-MiniLM-L6-v2, offline (no model server") == plans
    categorize = next(line for line in done.stderr.splitlines() if "expense_categorizer" in line)
    assert "embedded" in categorize  # the step's modes: who answered its items
    assert "| embedded |" in done.stdout  # and per item, in the receipt's report
    assert "run succeeded" in done.stdout and "failed" not in done.stdout


def test_with_a_fake_ollama_the_demo_routes_parsing_and_categorization_to_it(
    ollama: FakeLLMServer, tmp_path: Path
) -> None:
    env = {
        "USE_SMALL_MODEL": "true",
        "SMALL_MODEL_BACKEND": "ollama",
        "OLLAMA_API_URL": ollama.base_url,
        "SMALL_MODEL_CASCADE": "keyword,llm",  # no MiniLM load here; the embedded tier has its own tests
    }
    demo = run(
        [sys.executable, str(REPO / "run_demo.py"), str(REPO / "examples/example_plan_hybrid.json")], tmp_path, **env
    )
    assert demo.returncode == 0, demo.stderr
    assert "small models: ollama phi3 (SMALL_MODEL_BACKEND=ollama)" in demo.stderr
    table = {line.split("│")[1].strip(): line for line in demo.stderr.splitlines() if line.count("│") >= 5}
    assert "ollama:phi3" in table["parse"] and "ollama:phi3" in table["categorize"]
    schemas = [r.json_schema or {} for r in ollama.requests if r.path == "/api/chat"]
    assert any("total" in s.get("properties", {}) for s in schemas)  # the receipt went to the model
    assert any("answers" in s.get("properties", {}) for s in schemas)  # and the items it had to categorize

    receipt = str(REPO / "examples" / "receipts" / "cafe.txt")
    done = run(
        orchestrator("run", str(REPO / "examples/example_plan_hybrid.json"), "-i", f"image_path={receipt}", "--json"),
        tmp_path,
        **env,
    )
    result = json.loads(done.stdout)
    assert result["steps"]["parse"]["modes"] == ["ollama:phi3"]
    assert "ollama:phi3" in result["steps"]["categorize"]["modes"]
    assert {i["mode"] for i in result["steps"]["categorize"]["output"]["items"]} == {"keyword", "ollama:phi3"}


class Killer:
    """Answers two requests like a model, then kills its own server."""

    def __init__(self) -> None:
        self.model = SmallModelResponder()
        self.server: FakeLLMServer | None = None
        self.thread: threading.Thread | None = None
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self.count += 1
            if self.count <= 2:
                return self.model(request)
            if self.thread is None and self.server is not None:
                self.thread = threading.Thread(target=self.server.close)
                self.thread.start()
        return Reply(data={}, delay_s=5)


def test_killing_the_server_mid_batch_falls_back_to_keywords_with_nothing_lost(tmp_path: Path) -> None:
    killer = Killer()
    with FakeLLMServer(default=killer) as server:
        killer.server = server
        out = tmp_path / "results.jsonl"
        done = run(
            orchestrator(
                "batch",
                str(REPO / "examples/example_plan_hybrid.json"),
                str(REPO / "examples/receipts/*.txt"),
                "--input",
                "image_path",
                "--concurrency",
                "1",
                "--out",
                str(out),
            ),  # fmt: skip
            tmp_path,
            USE_SMALL_MODEL="true",
            SMALL_MODEL_BACKEND="ollama",
            OLLAMA_API_URL=server.base_url,
            SMALL_MODEL_CASCADE="keyword,llm",
        )
    assert killer.thread is not None
    killer.thread.join()
    assert done.returncode == 0, done.stderr
    rows = {Path(row["document"]).name: row for row in map(json.loads, out.read_text().splitlines())}
    assert len(rows) == 5 and all(row["status"] == "succeeded" and row["output"] for row in rows.values())
    assert rows["cafe.txt"]["modes"]["parse"] == ["ollama:phi3"]
    assert rows["restaurant.txt"]["modes"]["parse"] == ["keyword"]
    assert rows["restaurant.txt"]["modes"]["categorize"] == ["keyword"]


def test_the_throughput_benchmark_prints_items_per_second_per_backend_and_mode(tmp_path: Path) -> None:
    done = run(
        orchestrator(
            "bench",
            "models",
            "--json",
            "--items",
            "6",
            "--batch-size",
            "3",
            "--concurrency",
            "2",
            "--latency-ms",
            "5",
            "10",
            "--tokens-per-s",
            "5000",
            "--gather-ms",
            "500",
            "--backends",
            "keywords,llm",
        ),  # fmt: skip
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    calls = {row["mode"]: row["calls"] for row in rows if row["backend"].startswith("llm")}
    assert calls == {
        "unbatched, sequential": 6,
        "batched (3/call), sequential": 2,
        "batched (3/call), 2 concurrent": 2,
        "cached (repeat of the above)": 0,
        "for_each: a request per item, 2 concurrent": 6,
        "for_each: a request per item, gathered (500 ms) into 3/call": 2,
    }
    assert all(row["items_per_s"] > 0 for row in rows) and rows[0]["backend"] == "keywords"
    table = run(
        orchestrator("bench", "models", "--items", "3", "--latency-ms", "1", "2", "--backends", "keywords,llm"),
        tmp_path,
    )
    assert table.returncode == 0 and "items/s" in table.stdout and "cached" in table.stdout


@pytest.mark.slow
def test_the_cascade_report_prints_accuracy_per_tier(tmp_path: Path) -> None:
    kinds = {
        "produce": ["bananas", "apples", "spinach", "red onions", "avocado", "strawberries", "carrots", "kale"],
        "pets": [
            "dog food",
            "cat litter",
            "chew toys",
            "kitten chow",
            "bird seed",
            "dog treats",
            "cat food",
            "fish flakes",
        ],
        "household": ["paper towels", "dish soap", "trash bags", "detergent", "sponges", "bleach", "foil", "napkins"],
    }
    train = [
        (f"{adj} {name}", label)
        for label, names in kinds.items()
        for name in names
        for adj in ("organic", "value", "big")
    ]
    test = [("fresh blueberries", "produce"), ("puppy kibble", "pets"), ("toilet paper", "household")]
    for path, pairs in ((tmp_path / "train.jsonl", train), (tmp_path / "test.jsonl", test)):
        path.write_text("".join(json.dumps({"name": n, "category": c}) + "\n" for n, c in pairs))
    done = run(orchestrator("eval", "categories", "test.jsonl", "--examples", "train.jsonl", "--json"), tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["n"] == 3 and set(report["tiers"]) <= {"keyword", "embedded"}
    assert sum(tier["n"] for tier in report["tiers"].values()) == 3
    text = run(orchestrator("eval", "categories", "test.jsonl", "--examples", "train.jsonl"), tmp_path)
    assert "accuracy" in text.stdout and "per tier" in text.stdout


def test_the_fake_model_command_serves_a_small_model_a_run_can_use_until_it_is_stopped(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    server = subprocess.Popen(
        orchestrator("fake-model", "--port", "0", "--latency-ms", "1", "5"),
        cwd=tmp_path,
        env=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[-1]
        assert url.startswith("http://127.0.0.1:"), url
        done = run(
            orchestrator(
                "run",
                str(REPO / "examples" / "feedback_analysis.json"),
                "--input",
                f"path={REPO / 'examples' / 'feedback' / 'feedback.jsonl'}",
                "--json",
            ),
            tmp_path,
            USE_SMALL_MODEL="true",
            SMALL_MODEL_BACKEND="ollama",
            OLLAMA_API_URL=url,
            SMALL_MODEL_CASCADE="llm",
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["steps"]["sentiment"]["modes"] == ["ollama:phi3"]
    finally:
        server.terminate()  # as `kill` does; Ctrl-C goes the same way
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "stopped after" in err and "stopped after 0 calls" not in err

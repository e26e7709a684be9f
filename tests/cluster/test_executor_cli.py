"""--executor through the command line, as a user runs it: bad choices and unreachable clusters are one clear
message with exit 2; a Ray batch from the CLI writes the same lines as in process; Ctrl-C exits 130."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
HYBRID = REPO / "examples/example_plan_hybrid.json"
TEXTS = str(REPO / "examples/receipts/*.txt")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands' run store and caches in a folder of this test's own."""
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path / "home"))


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def cluster(ray_session: Any) -> str:
    """The session's Ray instance, reached as an existing cluster through RAY_ADDRESS."""
    return str(ray_session.get_runtime_context().gcs_address)


def test_an_unknown_executor_is_a_user_error() -> None:
    proc = cli("batch", str(HYBRID), TEXTS, "--input", "image_path", "--executor", "spark")
    assert proc.returncode == 2
    assert "--executor 'spark': choose one of local, ray" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["batch", "run"])
def test_missing_ray_says_how_to_install_it_with_exit_2(tmp_path: Path, command: str) -> None:
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    args = [str(HYBRID), TEXTS, "--input", "image_path"] if command == "batch" else [str(HYBRID)]
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    proc = cli(command, *args, "--executor", "ray", env={"PYTHONPATH": path})
    assert proc.returncode == 2, proc.stderr
    assert "needs Ray, which is not installed: pip install 'orchestrator[ray]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_unreachable_cluster_is_one_clear_error_with_exit_2() -> None:
    pytest.importorskip("ray")
    with socket.socket() as closed:  # bound, never listening: connections are refused while the test runs
        closed.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed.getsockname()[1]}"
        proc = cli(
            "batch", str(HYBRID), TEXTS, "--input", "image_path", "--executor", "ray", env={"RAY_ADDRESS": address}
        )
    assert proc.returncode == 2, proc.stderr
    assert f"cannot reach the Ray cluster at {address}" in proc.stderr and "unset RAY_ADDRESS" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_batch_on_an_existing_cluster_from_the_cli_matches_in_process(tmp_path: Path, cluster: str) -> None:
    lines = {}
    for executor in ("local", "ray"):
        out = tmp_path / f"{executor}.jsonl"
        proc = cli(
            "batch", str(HYBRID), TEXTS, "--input", "image_path", "--out", str(out), "--executor", executor,
            env={"RAY_WORKERS": "2", "RAY_ADDRESS": cluster},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "5 succeeded, 0 failed" in proc.stderr and "Traceback" not in proc.stderr
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        lines[executor] = {
            r["document"]: {k: v for k, v in r.items() if k not in ("duration_s", "worker")} for r in rows
        }
    assert lines["ray"] == lines["local"] and len(lines["ray"]) == 5


def test_ctrl_c_stops_a_ray_batch_with_exit_130_and_leaves_no_actor(
    tmp_path: Path, cluster: str, ray_session: Any
) -> None:
    for i in range(400):
        (tmp_path / f"r{i:03d}.txt").write_text((REPO / "examples/receipts/grocery.txt").read_text())
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "batch", str(HYBRID), str(tmp_path), "--input", "image_path"]
        + ["--out", str(out), "--executor", "ray", "--concurrency", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RAY_WORKERS": "1", "RAY_ADDRESS": cluster},
    )
    try:
        deadline = time.monotonic() + 240
        while not (out.exists() and out.read_text().count("\n") >= 2):  # documents are coming back
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "no document finished"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert out.read_text().count("\n") < 400  # it stopped, with what finished written
    deadline = time.monotonic() + 120
    while ray_session.available_resources().get("CPU", 0) < 2:  # its actor is gone from the cluster
        assert time.monotonic() < deadline, ray_session.available_resources()
        time.sleep(0.2)


def test_run_on_an_existing_cluster_from_the_cli(cluster: str) -> None:
    proc = cli("run", str(HYBRID), "--input", f"image_path={REPO / 'examples/receipts/cafe.txt'}", "--json",
               "--executor", "ray", env={"RAY_ADDRESS": cluster})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "succeeded" and "Spent" in result["output"]


def test_a_killed_driver_resumes_on_the_cluster_from_the_store(tmp_path: Path, cluster: str) -> None:
    sroie = REPO.parent / "shared/data/receipts/sroie"
    texts = str(sroie / "*.txt") if sroie.is_dir() else TEXTS
    expected_out = tmp_path / "local.jsonl"
    proc = cli("batch", str(HYBRID), texts, "--input", "image_path", "--out", str(expected_out), "--no-store")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "RAY_WORKERS": "1", "RAY_ADDRESS": cluster}
    driver = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "batch", str(HYBRID), texts, "--input", "image_path"]
        + ["--out", str(out), "--run-id", "killed-driver", "--executor", "ray", "--concurrency", "1"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 240
        while not (out.exists() and out.read_text().count("\n") >= 3):  # results are arriving
            assert driver.poll() is None, "the batch ended before it could be killed"
            assert time.monotonic() < deadline, "no document finished"
            time.sleep(0.1)
        driver.send_signal(signal.SIGKILL)  # the driver dies; its actors go with it
        driver.wait(timeout=60)
    finally:
        driver.kill()
    proc = cli("resume", "killed-driver", "--executor", "ray", env={"RAY_WORKERS": "2", "RAY_ADDRESS": cluster})
    assert proc.returncode == 0, proc.stderr
    strip = {"duration_s", "worker"}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    got = {r["document"]: {k: v for k, v in r.items() if k not in strip} for r in rows}
    want = [json.loads(line) for line in expected_out.read_text().splitlines()]
    assert len(rows) == len(want) and got == {
        r["document"]: {k: v for k, v in r.items() if k not in strip} for r in want
    }
    from orchestrator.store import RunStore

    store = RunStore.open(tmp_path / "home" / "runs.sqlite")
    sessions = {d.session for d in store.iter_documents("killed-driver")}
    store.close()
    assert sessions == {1, 2}  # what the killed driver recorded was kept, the rest ran in the resumed session


def test_a_port_that_answers_but_is_not_ray_is_an_error_within_the_timeout() -> None:
    pytest.importorskip("ray")
    with socket.socket() as server:  # accepts connections and says nothing, like a wrong service would
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        address = f"127.0.0.1:{server.getsockname()[1]}"
        env = {"RAY_ADDRESS": address, "RAY_TIMEOUT_S": "5"}
        proc = cli("batch", str(HYBRID), TEXTS, "--input", "image_path", "--executor", "ray", env=env)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot connect to the Ray cluster at {address}: no answer from a Ray cluster within 5s" in proc.stderr
    assert "Traceback" not in proc.stderr

"""The HTML run report in real headless Chromium, with the network off: it draws the plan graph, the timeline and
the cost, and nothing goes to the console as an error. Driven over the DevTools protocol (a small client on
`websockets`); the browser is Debian's `chromium` (`make test` installs it), never a downloaded one."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.plan.validate import load_plan
from orchestrator.toolbox import default_registry

from ._cli import PLAN, cli, cli_json, receipts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
websockets = pytest.importorskip("websockets")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
    pytest.mark.anyio,
]


class Page:
    """One tab, over the DevTools protocol: send commands, collect the events that matter."""

    def __init__(self, ws: Any, session: str) -> None:
        self.ws = ws
        self.session = session
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.loaded = asyncio.Event()

    async def pump(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if "id" in message and message["id"] in self.waiting:
                self.waiting.pop(message["id"]).set_result(message)
            elif "method" in message:
                self.events.append(message)
                if message["method"] == "Page.loadEventFired":
                    self.loaded.set()

    async def send(self, method: str, params: dict[str, Any] | None = None, *, browser: bool = False) -> Any:
        cid = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[cid] = future
        message: dict[str, Any] = {"id": cid, "method": method, "params": params or {}}
        if not browser:
            message["sessionId"] = self.session
        await self.ws.send(json.dumps(message))
        reply = await future
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply["result"]

    def problems(self) -> list[str]:
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"log: {params['entry'].get('text')}")
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith(("file:", "data:", "about:")):
                    found.append(f"network request: {url}")
        return found


async def open_report(page_file: Path, profile: Path, shot: Path) -> tuple[dict[str, Any], list[str]]:
    assert CHROMIUM is not None
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", "--window-size=1400,1800", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        async with asyncio.timeout(90):
            url = await asyncio.to_thread(_devtools_url, proc)
            async with websockets.connect(url, max_size=64 * 2**20) as ws:
                page = Page(ws, "")
                pump = asyncio.create_task(page.pump())
                target = await page.send("Target.createTarget", {"url": "about:blank"}, browser=True)
                attached = await page.send(
                    "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, browser=True
                )
                page.session = attached["sessionId"]
                for domain in ("Runtime", "Log", "Page", "Network"):
                    await page.send(f"{domain}.enable")
                offline = {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0}
                await page.send("Network.emulateNetworkConditions", offline)
                await page.send("Page.navigate", {"url": page_file.resolve().as_uri()})
                await page.loaded.wait()
                probe = (
                    "JSON.stringify({report: window.__report || null,"
                    " canvases: ['graph', 'timeline', 'running', 'cost-chart'].map("
                    "  id => document.querySelectorAll('#' + id + ' canvas').length),"
                    " figures: document.getElementById('figures').innerText,"
                    " steps: document.querySelectorAll('#steps tr').length})"
                )
                result = await page.send("Runtime.evaluate", {"expression": probe, "returnByValue": True})
                shot.write_bytes(
                    base64.b64decode((await page.send("Page.captureScreenshot", {"format": "png"}))["data"])
                )
                await asyncio.sleep(0.2)  # let late console messages arrive
                problems = page.problems()
                pump.cancel()
                return json.loads(result["result"]["value"]), problems
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _devtools_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    for line in proc.stderr:
        if "DevTools listening on" in line:
            return line.split("listening on", 1)[1].strip()
    raise AssertionError("chromium did not start its DevTools endpoint")


async def test_the_batch_report_renders_offline_with_graph_timeline_and_cost(tmp_path: Path) -> None:
    docs = receipts(tmp_path / "docs", 12)
    (docs / "broken.txt").write_bytes(b"")  # one document whose receipt is empty: a failed step to show
    made = cli("batch", str(PLAN), str(docs), "--input", "image_path", "--concurrency", "4",
               "--out", str(tmp_path / "out.jsonl"), "--report", str(tmp_path / "report.html"))  # fmt: skip
    assert made.returncode in (0, 1), made.stderr
    [run] = cli_json("runs")
    shown, problems = await open_report(tmp_path / "report.html", tmp_path / "profile", tmp_path / "report.png")
    shutil.copyfile(tmp_path / "report.png", "/tmp/report.png")  # the artifact to look at
    assert problems == []
    report = shown["report"]
    compiled = load_plan(PLAN, default_registry())
    assert report["nodes"] == len(compiled.steps) == 5
    assert report["links"] == sum(len(cs.deps) for cs in compiled.steps.values())
    assert report["rows"] == run["documents"] == 13
    assert report["bars"] >= 12 * 5
    assert report["peak"] >= 2  # documents ran in parallel, and the timeline shows it
    assert all(n >= 1 for n in shown["canvases"])
    assert "per 1,000 documents" in shown["figures"] and "planner calls" in shown["figures"]
    assert shown["steps"] == 1 + 5


async def test_a_single_run_report_renders_one_row_per_step(tmp_path: Path) -> None:
    from ._cli import REPO

    proc = cli("run", str(PLAN), "--input", f"image_path={REPO / 'examples/receipts/grocery.txt'}",
               "--report", str(tmp_path / "run.html"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    shown, problems = await open_report(tmp_path / "run.html", tmp_path / "profile", tmp_path / "run.png")
    assert problems == []
    assert shown["report"]["rows"] == 5 and shown["report"]["bars"] == 5 and shown["report"]["peak"] == 1

"""One local Ray instance for the whole test session (2 CPUs, a custom resource, a test tool plugin).

Ray starts in about 4 s and takes about 800 MiB, so the Ray tests share one instance, started on first use
and shut down at the end of the session. Its workers see a small tool plugin (installed the way a user
installs one, through the ``orchestrator.tools`` entry-point group) with tools the tests need on the
workers: where a call ran, and one that waits until it is cancelled.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PLUGIN = '''
import asyncio
import os
from pathlib import Path


def register_tools(registry):
    @registry.tool
    def where_am_i(tag: str) -> dict:
        """The process this call ran in, and the Ray resources it holds."""
        import ray

        held = ray.get_runtime_context().get_assigned_resources() if ray.is_initialized() else {}
        return {"tag": tag, "pid": os.getpid(), "resources": sorted(held)}

    @registry.tool
    async def wait_until_cancelled(marker: str) -> str:
        """Touch the marker file, then wait until cancelled."""
        Path(marker).touch()
        await asyncio.sleep(3600)
        return "never"
'''

TEST_RESOURCE = "orchestrator_test_slot"


def install_plugin(root: Path) -> None:
    (root / "raytestplug").mkdir()
    (root / "raytestplug" / "__init__.py").write_text(PLUGIN)
    meta = root / "raytestplug-0.1.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: raytestplug\nVersion: 0.1\n")
    (meta / "entry_points.txt").write_text("[orchestrator.tools]\nraytestplug = raytestplug\n")


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ray_plugin")
    install_plugin(root)
    return root


@pytest.fixture(scope="session")
def ray_session(plugin_dir: Path) -> Iterator[Any]:
    """The shared local Ray instance (the executor finds it connected and leaves it running)."""
    ray = pytest.importorskip("ray")
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(plugin_dir), *sys.path])  # what the workers import
    try:
        ray.init(
            num_cpus=2,
            resources={TEST_RESOURCE: 1},
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    finally:  # Ray's processes have it; later subprocesses of the test session must not
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def with_plugin(plugin_dir: Path) -> Iterator[None]:
    """The test plugin's tools in this process's default registry too (the driver validates plans)."""
    sys.path.insert(0, str(plugin_dir))
    try:
        yield
    finally:
        sys.path.remove(str(plugin_dir))

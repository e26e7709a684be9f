"""``--executor ray``: batches, runs and requests on a Ray cluster (``RAY_ADDRESS``) or a local Ray instance.

    async with RayExecutor() as cluster:
        summary = await run_batch(compiled, DocumentSource("scans/"), "image_path", executor=cluster)
        result, _ = await run_compiled(cluster.remote_plan(compiled), inputs)     # run: steps on the cluster
        planner = LargePlanner(registry=cluster.remote_registry(default_registry()))   # ask

The driver (this process) keeps the plan, the documents' iterator, the output and the run store; it sends
document paths and receives one small result per document, a bounded number in flight, so its memory does
not grow with the batch. Documents must be readable at the same path on every node (a shared file system).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncGenerator, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from orchestrator.batch import DocumentResult
from orchestrator.errors import ConfigurationError, RunError
from orchestrator.executor.policy import ConcurrencyLimits, RetryPolicy
from orchestrator.plan.validate import CompiledPlan
from orchestrator.registry import Tool, ToolRegistry
from orchestrator.settings import Settings, current_settings

if TYPE_CHECKING:
    from orchestrator.store import StoreRun

logger = logging.getLogger(__name__)

__all__ = ["RayExecutor", "import_ray"]

IO_KINDS = frozenset({"small_model", "large_model", "mcp"})
"""Kinds whose calls mostly wait on a server: they run on an async step actor that reserves no CPU."""

INSTALL_HINT = "pip install 'orchestrator[ray]' (or: pip install ray)"


def import_ray() -> Any:
    """The ``ray`` module, or a ConfigurationError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigurationError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def _check_reachable(address: str, timeout_s: float) -> None:
    """Fail fast, with the fix, when nothing listens at a cluster address (Ray itself retries for minutes)."""
    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"ray-gcs://{address}")
    host, port = parts.hostname, parts.port
    if not host or not port:
        raise ConfigurationError(f"RAY_ADDRESS={address!r}: expected host:port, ray://host:port or auto")
    try:
        with socket.create_connection((host, port), timeout=min(timeout_s, 10.0)):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigurationError(
            f"cannot reach the Ray cluster at {address} ({reason}): start it (ray start --head) or fix "
            "RAY_ADDRESS; unset RAY_ADDRESS to start a local Ray instance instead"
        ) from None


@dataclass
class _Pools:
    """Step actors, created on first use: per kind of work, and per set of resources a step asked for."""

    io: list[Any] = field(default_factory=list)
    cpu: list[Any] = field(default_factory=list)
    by_resources: dict[str, list[Any]] = field(default_factory=dict)


class RayExecutor:
    """Runs documents, plans and steps on Ray; closes every actor it made when the block ends."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        document_retries: int | None = None,
        settings: Settings | None = None,
    ) -> None:
        """Prepare (nothing connects before ``async with``).

        Args:
            address: the cluster (``host:port``, ``ray://host:10001``, ``auto``); default ``RAY_ADDRESS``,
                else a local instance is started (and stopped at the end).
            workers: document actors for a batch (default ``RAY_WORKERS``, else the cluster's CPUs).
            document_retries: re-runs of a document whose worker died (default ``RAY_DOCUMENT_RETRIES``).
            settings: what the workers run under (default: the settings in force here).
        """
        self.settings = settings or current_settings()
        self.address = address if address is not None else self.settings.ray_address
        self.workers = workers or self.settings.ray_workers
        retries = document_retries if document_retries is not None else self.settings.ray_document_retries
        self.document_retries = retries
        self.retried = 0
        self.ray: Any = None
        self._started_here = False
        self._actors: list[Any] = []
        self._pools = _Pools()
        self.worker_peaks: dict[str, int] = {}
        self.created: list[Any] = []  # every actor this executor made (all are killed when it closes)

    # --- connecting -------------------------------------------------------------------------------------

    async def __aenter__(self) -> RayExecutor:
        self._connect()  # in the main thread: Ray installs its signal handlers there
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _connect(self) -> None:
        ray = self.ray = import_ray()
        logging.getLogger("ray").setLevel(logging.ERROR)  # its start-up notes are not the user's business
        if ray.is_initialized():  # an embedding application (or a test session) already connected
            return
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.ERROR,
            "configure_logging": False,
        }
        if self.settings.ray_runtime_env:
            options["runtime_env"] = self.settings.ray_runtime_env
        if self.address in (None, "", "local"):
            self._started_here = True
            if self.workers:
                options["num_cpus"] = self.workers
            try:
                ray.init(address="local", **options)
            except Exception as exc:  # e.g. no room in /dev/shm, a port taken: say so, without a traceback
                with contextlib.suppress(Exception):
                    ray.shutdown()  # whatever it had started
                raise ConfigurationError(f"could not start a local Ray instance: {_first_line(exc)}") from None
            return
        assert self.address is not None
        _check_reachable(self.address, self.settings.ray_timeout_s)
        try:
            _init_within(ray, self.settings.ray_timeout_s, address=self.address, **options)
        except Exception as exc:  # unreachable, another Ray version, a bad runtime_env: one line, exit 2
            with contextlib.suppress(Exception):
                ray.shutdown()
            raise ConfigurationError(
                f"cannot connect to the Ray cluster at {self.address}: {_first_line(exc)}; check RAY_ADDRESS "
                "(and RAY_RUNTIME_ENV), or unset it to start a local Ray instance"
            ) from None

    async def _release(self, actors: list[Any]) -> None:
        """Let actors close their clients (bounded: 10 s; a dead one does not matter), then kill them."""
        try:
            closing = [actor.close.remote() for actor in actors]
            if closing:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.gather(*map(_future, closing), return_exceptions=True), 10)
        finally:  # even when cancelled meanwhile
            self._kill(actors)

    def _kill(self, actors: list[Any]) -> None:
        for actor in actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)
        gone = {id(a) for a in actors}
        self._actors = [a for a in self._actors if id(a) not in gone]

    async def aclose(self) -> None:
        """Kill every actor this executor made (nothing is left on the cluster), then disconnect if we
        started the instance."""
        ray = self.ray
        if ray is None:
            return
        actors = [*self._actors, *self._pools.io, *self._pools.cpu]
        for group in self._pools.by_resources.values():
            actors.extend(group)
        self._pools = _Pools()
        await self._release(actors)
        if self._started_here:
            await asyncio.to_thread(ray.shutdown)
        self.ray = None

    # --- actors -----------------------------------------------------------------------------------------

    def _budget_share(self, actors: int) -> float | None:
        """Each actor's share of BUDGET_USD, so that the whole cluster spends no more than it."""
        limit = self.settings.budget_usd
        return None if limit is None else limit / max(1, actors)

    def cluster_cpus(self) -> int:
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def check_resources(self, compiled: CompiledPlan) -> None:
        """Every step's declared resources exist together on at least one node, else a clear error."""
        nodes = [node.get("Resources", {}) for node in self.ray.nodes() if node.get("Alive")]
        for cs in compiled.steps.values():
            wanted = cs.step.resources
            if wanted and not any(all(have.get(k, 0) >= v for k, v in wanted.items()) for have in nodes):
                seen = sorted({k for have in nodes for k in have if not k.startswith("node:")})
                raise ConfigurationError(
                    f"step {cs.id!r} asks for resources {wanted}, which no node of the Ray cluster has "
                    f"(the nodes have: {', '.join(seen)})"
                )

    def _step_actor(self, resources: Mapping[str, float] | None, *, io: bool = False) -> Any:
        from orchestrator.cluster.actors import StepActor

        options: dict[str, Any] = {"max_restarts": self.document_retries, "max_concurrency": 64 if io else 4}
        # (step actors restart in place: RemoteTool asks again, a bounded number of times)
        if resources:
            custom = {k: v for k, v in resources.items() if k not in ("CPU", "GPU", "memory")}
            options.update(num_cpus=resources.get("CPU", 0), num_gpus=resources.get("GPU", 0), resources=custom)
            if "memory" in resources:
                options["memory"] = resources["memory"]
        else:
            options["num_cpus"] = 0 if io else 1
        actor = StepActor.options(**options).remote(self.settings, self._budget_share(self.cluster_cpus()))
        self.created.append(actor)
        return actor

    def _resource_actors(self, compiled: CompiledPlan) -> dict[str, list[Any]]:
        """Step id -> the step actors for steps that declared resources (one actor per distinct set)."""
        from orchestrator.cluster.remote import resource_key

        self.check_resources(compiled)
        out: dict[str, list[Any]] = {}
        for cs in compiled.steps.values():
            if cs.step.resources:
                key = resource_key(cs.step.resources)
                if key not in self._pools.by_resources:
                    self._pools.by_resources[key] = [self._step_actor(cs.step.resources)]
                out[cs.id] = self._pools.by_resources[key]
        return out

    def _pool_picker(self, io: bool) -> Any:
        """A picker over the io or cpu pool (created on first use: one io actor, one cpu actor per CPU)."""
        pool = self._pools.io if io else self._pools.cpu
        if not pool:
            pool.extend(self._step_actor(None, io=io) for _ in range(1 if io else self.cluster_cpus()))
        position = 0

        def pick() -> Any:
            nonlocal position
            position = (position + 1) % len(pool)
            return pool[position]

        return pick

    def _remote_tool(self, tool: Tool, resources: Mapping[str, float] | None) -> Tool:
        from orchestrator.cluster.remote import RemoteTool, resource_key

        if resources:
            key = resource_key(resources)
            if key not in self._pools.by_resources:
                self._pools.by_resources[key] = [self._step_actor(resources)]
            return RemoteTool(tool, self._pools.by_resources[key], retries=self.document_retries)
        io = tool.spec.kind.value in IO_KINDS
        return RemoteTool(tool, self._pool_picker(io), retries=self.document_retries)

    # --- run and ask: the scheduler here, the steps there ------------------------------------------------

    def remote_plan(self, compiled: CompiledPlan) -> CompiledPlan:
        """The plan with every step's tool running on the cluster (I/O kinds on an async actor, the rest on
        actors with a CPU each, steps with resources where those exist)."""
        import dataclasses

        self.check_resources(compiled)
        steps = {
            sid: dataclasses.replace(cs, tool=self._remote_tool(cs.tool, cs.step.resources), direct=None)
            for sid, cs in compiled.steps.items()
        }
        return dataclasses.replace(compiled, steps=steps)

    def remote_registry(self, registry: ToolRegistry) -> ToolRegistry:
        """The same tools, each call running on the cluster (for ``ask``: steps arrive while it runs)."""
        return ToolRegistry({tool.spec.name: self._remote_tool(tool, None) for tool in registry})

    # --- batch: whole documents on document actors -------------------------------------------------------

    def _document_actor(self, spec: dict[str, Any]) -> Any:
        from orchestrator.cluster.actors import DocumentActor

        actor = DocumentActor.options(num_cpus=1, max_concurrency=spec["concurrency"]).remote(
            spec["plan"],
            spec["input_name"],
            spec["inputs"],
            self.settings,
            spec["budget"],
            spec["remote_steps"],
            spec["limits"],
            spec["retry"],
            spec["recording"],
        )
        self._actors.append(actor)
        self.created.append(actor)
        return actor

    async def _start_document_actors(self, spec: dict[str, Any]) -> list[Any]:
        count = self.workers or self.cluster_cpus()
        spec["budget"] = self._budget_share(count)
        actors = [self._document_actor(spec) for _ in range(count)]
        try:
            await asyncio.wait_for(
                asyncio.gather(*(_future(a.ready.remote()) for a in actors)), self.settings.ray_timeout_s
            )
        except TimeoutError:
            raise RunError(
                f"{count} Ray workers did not start within {self.settings.ray_timeout_s:g}s (RAY_TIMEOUT_S): "
                "the cluster may lack free CPUs, or the workers cannot import orchestrator (see RAY_RUNTIME_ENV)"
            ) from None
        except Exception as exc:
            raise RunError(f"the Ray workers could not start: {_first_line(exc)}") from None
        return actors

    async def documents(
        self,
        compiled: CompiledPlan,
        documents: Iterator[str],
        input_name: str,
        inputs: Mapping[str, Any],
        *,
        concurrency: int,
        limits: ConcurrencyLimits | None,
        retry: RetryPolicy | None,
        store_run: StoreRun | None = None,
    ) -> AsyncGenerator[DocumentResult, None]:
        """Each document on a document actor (`concurrency` at a time per actor); results as they finish.

        With `store_run`, the workers record each document's steps and events into a collector that comes
        back with the result, and this process (the driver) writes them into the run store; the steps an
        earlier session finished go to the worker to be reused.

        When an actor dies, it is replaced by a new one and each of its unfinished documents goes to another
        actor, at most ``document_retries`` times per document (then it is written as an ``error`` and the
        batch goes on); at most ``document_retries`` replacements per actor slot.
        """
        from ray.exceptions import RayActorError

        from orchestrator.cluster.actors import replay

        recording = None
        if store_run is not None:
            recording = {
                "run_id": store_run.run_id,
                "session": store_run.session,
                "tool_cache": store_run.tool_cache,
                "tools": dict(store_run.tools),
            }
        spec: dict[str, Any] = {
            "recording": recording,
            "plan": compiled.plan.model_dump(mode="json", exclude_none=True),
            "input_name": input_name,
            "inputs": dict(inputs),
            "remote_steps": self._resource_actors(compiled),
            "limits": limits,
            "retry": retry,
            "concurrency": concurrency,
        }
        pool = _DocumentPool(self, spec, await self._start_document_actors(spec), store_run)
        try:
            while True:
                pool.fill(documents, concurrency)
                if not pool.inflight:
                    break
                done, _ = await asyncio.wait(pool.inflight, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    doc, slot, attempt, actor, _ref = pool.inflight.pop(future)
                    pool.load[slot] -= 1
                    try:
                        row = future.result()
                    except RayActorError as exc:
                        pool.replace(slot, actor)
                        if attempt <= self.document_retries:
                            self.retried += 1
                            logger.warning("worker died on %s (attempt %d); running it again elsewhere", doc, attempt)
                            pool.submit(doc, attempt + 1, avoid=slot)
                            continue
                        error = f"its Ray worker died {attempt} times: {_first_line(exc)}"
                        yield DocumentResult(document=doc, status="error", error=error)
                        continue
                    if store_run is not None:
                        replay(store_run.store, row["store"])
                    yield DocumentResult.model_validate(row["record"])
            await self._record_peaks([a for a in pool.actors if a is not None])
            await self._release(pool.every)  # done: let them close their clients, then they go
        finally:
            pool.cancel()  # stopped early (Ctrl-C, a store error): cancel what is in flight, kill at once
            self._kill(pool.every)

    async def _record_peaks(self, actors: list[Any]) -> None:
        """Peak memory of each document actor (for ``bench batch``); dead ones are left out."""
        refs = [a.peak_rss.remote() for a in actors]
        ids = [a.ready.remote() for a in actors]
        with contextlib.suppress(Exception):
            results = await asyncio.wait_for(asyncio.gather(*map(_future, [*refs, *ids]), return_exceptions=True), 10)
            for peak, wid in zip(results[: len(refs)], results[len(refs) :], strict=True):
                if isinstance(peak, int) and isinstance(wid, str):
                    self.worker_peaks[wid] = max(peak, self.worker_peaks.get(wid, 0))


class _DocumentPool:
    """The document actors of one batch: which is least loaded, what is in flight, replacing the dead."""

    def __init__(self, owner: RayExecutor, spec: dict[str, Any], actors: list[Any], store_run: StoreRun | None):
        self.owner = owner
        self.spec = spec
        self.store_run = store_run
        self.actors: list[Any | None] = list(actors)
        self.every: list[Any] = list(actors)  # including the replaced ones
        self.load = [0] * len(actors)
        self.replaced = [0] * len(actors)
        self.inflight: dict[asyncio.Future[Any], tuple[str, int, int, Any, Any]] = {}  # doc, slot, try, actor, ref
        self.exhausted = False

    def fill(self, documents: Iterator[str], concurrency: int) -> None:
        """Take documents from the iterator until every actor has `concurrency` in flight (or none are left)."""
        while not self.exhausted and len(self.inflight) < concurrency * len(self.actors):
            doc = next(documents, None)
            if doc is None:
                self.exhausted = True
            else:
                self.submit(doc, 1)

    def submit(self, doc: str, attempt: int, avoid: int | None = None) -> None:
        alive = [i for i, actor in enumerate(self.actors) if actor is not None]
        if not alive:
            retries = self.owner.document_retries
            raise RunError(f"every Ray worker died more than {retries} times (RAY_DOCUMENT_RETRIES)")
        slot = min(alive, key=lambda i: (i == avoid, self.load[i]))
        actor = self.actors[slot]
        done = self.store_run.completed.get(doc) if self.store_run is not None else None
        ref = actor.run.remote(doc, done)  # type: ignore[union-attr]
        self.load[slot] += 1
        self.inflight[_future(ref)] = (doc, slot, attempt, actor, ref)

    def replace(self, slot: int, dead: Any) -> None:
        """A new actor in the dead one's slot (at most ``document_retries`` times per slot)."""
        if self.actors[slot] is not dead:  # already replaced: another of its documents reported first
            return
        with contextlib.suppress(Exception):
            self.owner.ray.kill(dead, no_restart=True)
        if self.replaced[slot] >= self.owner.document_retries:
            self.actors[slot] = None
            return
        self.replaced[slot] += 1
        self.actors[slot] = actor = self.owner._document_actor(self.spec)
        self.every.append(actor)

    def cancel(self) -> None:
        """Cancel what is still in flight (Ctrl-C, or an error that stops the batch)."""
        for *_, ref in self.inflight.values():
            with contextlib.suppress(Exception):
                self.owner.ray.cancel(ref)
        for future in self.inflight:
            future.cancel()


def _init_within(ray: Any, timeout_s: float, **options: Any) -> None:
    """``ray.init`` bounded by `timeout_s`: something that accepts connections but is not a Ray cluster
    would otherwise keep it retrying for minutes (it runs in a daemon thread, left behind on timeout)."""
    import threading

    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            ray.init(**options)
            outcome.append(None)
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=connect, name="ray-init", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not outcome:
        raise TimeoutError(f"no answer from a Ray cluster within {timeout_s:g}s (RAY_TIMEOUT_S)")
    if outcome[0] is not None:
        raise outcome[0]


def _future(ref: Any) -> asyncio.Future[Any]:
    return asyncio.wrap_future(ref.future())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]

"""Client.pipeline(): many statements, one round trip.

Statements queued in a pipeline are sent without waiting for each other's results
(libpq pipeline mode). Each returns a PipelineResult whose .result() reads the
results in order up to it. Everything queued up to a sync() (or the end of the
block) is one implicit transaction, as in the extended query protocol: if one
statement fails, the ones before it keep their results but are rolled back with it
unless a sync() came between, and the ones after it raise PipelineAborted.

Timeouts: client.pipeline(timeout=) bounds each call of the pipeline that waits for
the server (entering, sync(), result(), and the reading at the end of the block);
sync(timeout=) and result(timeout=) override it for one call; None defers to the
client's command_timeout, float('inf') means none. result()'s timeout covers the
results it reads before its own. On expiry the running statement is cancelled, the
pipeline ends (results not read yet raise InterfaceError) and QueryTimeoutError is
raised; the client stays usable, or is closed (broken) when the server cannot be
reached.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _oxpg
from ._oxpg import InterfaceError

if TYPE_CHECKING:
    from .client import Client

_DICTS, _TUPLES, _EXECUTE, _SYNC = _oxpg.PIPELINE_DICTS, _oxpg.PIPELINE_TUPLES, _oxpg.PIPELINE_EXECUTE, _oxpg.PIPELINE_SYNC
_PENDING = object()


class PipelineResult:
    """The outcome of one pipelined statement, available once read back."""

    __slots__ = ("_pipeline", "_value", "_claimed")

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._value: Any = _PENDING
        self._claimed = False

    def result(self, *, timeout: float | None = None) -> Any:
        """result(*, timeout=None)

        Rows (list of dicts or tuples) or the row count; raises the statement's error.
        timeout bounds the reading (None: the pipeline's timeout).
        """
        if self._value is _PENDING:
            self._pipeline._read_until(self, timeout)
        self._claimed = True
        if isinstance(self._value, BaseException):
            raise self._value
        return self._value

    @property
    def done(self) -> bool:
        return self._value is not _PENDING


class Pipeline:
    """A pipeline on one client; use it as a context manager (client.pipeline())."""

    def __init__(self, client: Client, timeout: float | None = None) -> None:
        self._client = client
        self._timeout = timeout  # checked (and None resolved) by the C core
        self._waiting: deque[PipelineResult | None] = deque()  # None marks a sync
        self._results: list[PipelineResult] = []
        self._open = False
        self._unsynced = False

    def __enter__(self) -> Pipeline:
        self._client._pipeline_enter(self._timeout)
        self._open = True
        return self

    def query(self, sql: str, /, *params: Any) -> PipelineResult:
        """Queue a statement whose rows come back as dicts."""
        return self._send(_DICTS, sql, params)

    def query_tuples(self, sql: str, /, *params: Any) -> PipelineResult:
        """Queue a statement whose rows come back as tuples."""
        return self._send(_TUPLES, sql, params)

    def execute(self, sql: str, /, *params: Any) -> PipelineResult:
        """Queue a statement whose result is its affected row count."""
        return self._send(_EXECUTE, sql, params)

    def sync(self, *, timeout: float | None = None) -> None:
        """sync(*, timeout=None)

        Send what is queued and end its implicit transaction (commit point).
        timeout bounds the sending (None: the pipeline's timeout).
        """
        self._check_open()
        self._sync(self._timeout_for(timeout))

    def _sync(self, timeout: float | None) -> None:
        try:
            self._client._pipeline_sync(timeout)
        except BaseException as exc:
            # The C core gave the pipeline up (timeout, Ctrl-C, a lost connection).
            self._fail_all(None, exc)
            raise
        self._waiting.append(None)
        self._unsynced = False

    def _send(self, kind: int, sql: str, params: tuple[Any, ...]) -> PipelineResult:
        self._check_open()
        try:
            self._client._pipeline_send(kind, sql, *params)
        except BaseException as exc:
            # Queuing a statement not described yet waits for the results before it;
            # interrupted (timeout, Ctrl-C, a lost connection), the C core gave the
            # pipeline up. A bad parameter leaves it open.
            if not self._client._pipeline_active():
                self._fail_all(None, exc)
            raise
        result = PipelineResult(self)
        self._waiting.append(result)
        self._results.append(result)
        self._unsynced = True
        return result

    def _check_open(self) -> None:
        if not self._open:
            raise InterfaceError("the pipeline is closed")

    def _timeout_for(self, timeout: float | None) -> float | None:
        """The timeout of one call: its own, else the pipeline's. Checked here, so
        that a bad value is refused before the pipeline's state changes."""
        if timeout is None:
            timeout = self._timeout
        self._client._check_timeout(timeout)
        return timeout

    def _read_until(self, target: PipelineResult | None, timeout: float | None = None) -> None:
        """Read results in order until target's (everything when target is None),
        all within one timeout."""
        timeout = self._timeout_for(timeout)
        start = True
        while self._waiting:
            expected = self._waiting.popleft()
            try:
                outcome = self._client._pipeline_next(timeout, start)
                start = False
            except BaseException as exc:
                # Interrupted (Ctrl-C, timeout) or the connection was lost: the C core
                # gave the pipeline up; nothing queued will have a result.
                self._fail_all(expected, exc)
                raise
            if outcome is None:
                break
            if expected is not None:
                expected._value = outcome[1]
                if expected is target:
                    return

    def _finish(self) -> None:
        """Sync what is queued, read every result left, leave pipeline mode."""
        try:
            if self._unsynced and not self._client.closed:
                self._sync(self._timeout)
            self._read_until(None)
        finally:
            self._client._pipeline_exit()

    def _fail_all(self, current: PipelineResult | None, exc: BaseException) -> None:
        gone = InterfaceError(f"the pipeline was interrupted before this statement's result arrived: {exc!r}")
        for waiting in [current, *self._waiting]:
            if waiting is not None and waiting._value is _PENDING:
                waiting._value = gone
                waiting._claimed = True
        self._waiting.clear()
        self._open = False

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._open:
            self._client._pipeline_exit()
            return
        self._open = False
        if exc_type is not None:
            # The body's exception is what the caller needs: draining errors
            # (a lost connection, the same failure again) must not replace it.
            try:
                self._finish()
            except Exception as drain_error:
                if exc is not None:
                    exc.add_note(f"while ending the pipeline: {drain_error!r}")
            return
        self._finish()
        # Nothing lost: an error nobody claimed is raised here.
        for result in self._results:
            if not result._claimed and isinstance(result._value, BaseException):
                raise result._value

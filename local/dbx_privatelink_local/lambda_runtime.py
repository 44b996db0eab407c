"""An in-process Lambda runtime for moto: an Invoke runs the function's real handler in this process.

moto runs Lambda code in Docker (`LambdaFunction._invoke_lambda`); the local stack has no Docker, so that
method is replaced and every invocation moto serves (direct Invoke, plain Lambda-ARN Task states,
`arn:aws:states:::lambda:invoke`, EventBridge and S3 targets) runs here, on the server's request thread's
behalf, the way the Lambda runtime would run it:

- the handler named by the deployed function's `Handler`, imported from its registered source directory
  under a module name of its own (every function folder has an app.py), its layers importable;
- the deployed function's environment variables plus the ones the Lambda runtime sets, AWS_ENDPOINT_URL
  pointing at moto, and credentials of the function's execution role from moto STS AssumeRole, so each
  function calls AWS as its own role;
- one cold start per function (the module is imported once and kept warm); an import or configuration
  failure is reported on every invocation until an import succeeds, as Lambda re-runs a failed init;
- the function's Timeout in real seconds, reported as Lambda does (errorType Sandbox.Timedout);
- an unhandled exception returned as the runtime's error payload with FunctionError "Unhandled", so Step
  Functions names the state's error after the exception class.

Per-invocation environment: invocations run concurrently on different threads, while code reads one
process-wide os.environ. `install()` turns os.environ (the same object, so `from os import environ`
references see it too) into an overlay that consults a context variable first: each invocation thread
sees its own function's variables layered over the process environment, and writes made by a handler stay
in its invocation. Caveats, all consequences of sharing one process:
- threads a handler starts itself see the process environment unless it copies its context
  (`contextvars.copy_context().run`); a ThreadPoolExecutor does not copy it;
- child processes inherit the process environment, not the overlay, unless passed `env=dict(os.environ)`;
- the layer packages are imported once per process and shared by every function, so module-level state
  in a layer (a cached client, a settings singleton) is shared too, where on AWS each function has its
  own; keep such state in the handler module (the per-function `deps()`), as the style guide asks;
- sibling modules of a function's handler are importable by their plain names, so two functions with a
  sibling module of the same name would share the first one imported;
- a handler that times out keeps running on its thread until it returns (a thread cannot be killed);
  its result is discarded.
- the layers' pydantic models are all built at the first cold start: the layer defers building each
  model to its first use (defer_build), which pydantic 2.13 does not make thread-safe, and here one
  process runs many invocations at once where Lambda runs one per container.
boto3's default session (boto3.client(...)) is made per function as well: botocore caches the
credentials it first resolves in a session, which would otherwise hand one function's role to all.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import json
import logging
import os
import pkgutil
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from moto.awslambda.models import LambdaFunction

# --- per-invocation environment --------------------------------------------------------------------

# None marks a variable the invocation deleted (or masks from the process environment).
_INVOCATION_ENV: contextvars.ContextVar[dict[str, str | None] | None] = contextvars.ContextVar(
    "dbx_privatelink_local_invocation_env", default=None
)
_INVOCATION_SESSION: contextvars.ContextVar[boto3.Session | None] = contextvars.ContextVar(
    "dbx_privatelink_local_invocation_session", default=None
)

# Process-level credential sources that would otherwise outrank or break the role credentials.
_MASKED_PROCESS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)


class _OverlayEnviron(os._Environ):  # type: ignore[type-arg]
    """os.environ seen through the current invocation's variables (assigned as os.environ's class)."""

    def __getitem__(self, key: str) -> str:
        overlay = _INVOCATION_ENV.get()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is None:
                raise KeyError(key)
            return value
        return str(super().__getitem__(key))

    def __setitem__(self, key: str, value: str) -> None:
        overlay = _INVOCATION_ENV.get()
        if overlay is None:
            super().__setitem__(key, value)
            return
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"str expected, not {type(value).__name__}")
        overlay[key] = value

    def __delitem__(self, key: str) -> None:
        overlay = _INVOCATION_ENV.get()
        if overlay is None:
            super().__delitem__(key)
            return
        if key not in self:
            raise KeyError(key)
        overlay[key] = None

    def __iter__(self) -> Iterator[str]:
        overlay = _INVOCATION_ENV.get()
        base = list(super().__iter__())
        if overlay is None:
            return iter(base)
        keys = [k for k in base if k not in overlay]
        keys += [k for k, v in overlay.items() if v is not None]
        return iter(keys)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"environ({dict(self)!r})"

    def copy(self) -> dict[str, str]:
        return dict(self)


_ORIGINAL_GET_DEFAULT_SESSION: Callable[[], boto3.Session] = boto3._get_default_session


def _per_invocation_default_session() -> boto3.Session:
    """boto3._get_default_session, answering with the invoked function's session inside an invocation."""
    session = _INVOCATION_SESSION.get()
    if session is not None:
        return session
    return _ORIGINAL_GET_DEFAULT_SESSION()


_ORIGINAL_CREATE_LOADER = botocore.session.create_loader
_SHARED_LOADERS: dict[str | None, botocore.loaders.Loader] = {}
_SHARED_LOADERS_LOCK = threading.Lock()


def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    with _SHARED_LOADERS_LOCK:
        loader = _SHARED_LOADERS.get(search_path_string)
        if loader is None:
            loader = _SHARED_LOADERS[search_path_string] = _ORIGINAL_CREATE_LOADER(search_path_string)
        return loader


def share_service_models() -> None:
    """Let every botocore session of this process share one loader of service models (idempotent).

    A client reads its service's model (EC2's is megabytes of JSON) through its session's loader, which
    caches it for that session alone. Here every function has sessions of its own (see the module's
    docstring), and moto's Step Functions makes a client per Lambda task, so each re-read the same files:
    the fleet test behind a fresh DNS VPC took 54 s alone before, 35 s with the loader shared. The loaded
    models are read-only to botocore (a session's clients already share them)."""
    botocore.session.create_loader = _shared_loader


def install_environment_overlay() -> None:
    """Make os.environ and boto3's default session per-invocation (idempotent)."""
    if not isinstance(os.environ, _OverlayEnviron):
        os.environ.__class__ = _OverlayEnviron
    boto3._get_default_session = _per_invocation_default_session


def run_with_environment(variables: Mapping[str, str | None], action: Callable[[], Any]) -> Any:
    """Run `action` in a copy of the current context that sees `variables` over os.environ."""

    def _run() -> Any:
        _INVOCATION_ENV.set(dict(variables))
        return action()

    return contextvars.copy_context().run(_run)


# --- the Lambda context object -----------------------------------------------------------------------


class LambdaContext:
    """The context object the Python runtime passes to a handler (the attributes handlers use)."""

    def __init__(
        self,
        *,
        function_name: str,
        function_version: str,
        invoked_function_arn: str,
        memory_limit_in_mb: int,
        aws_request_id: str,
        log_group_name: str,
        log_stream_name: str,
        deadline_monotonic: float,
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = deadline_monotonic

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# --- registrations and statistics --------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSource:
    """Where a deployed function's code lives locally: its CodeUri directory and its layers' directories."""

    function_name: str
    code_dir: Path
    layer_dirs: tuple[Path, ...] = ()


@dataclass
class FunctionStats:
    """What the benchmark reads per function."""

    cold_starts: int = 0
    cold_start_seconds: float = 0.0  # the last successful cold start's import time
    init_failures: int = 0
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    total_duration_seconds: float = 0.0
    # CPU the handler's own thread used (its AWS calls' other half runs in the server's threads): on one
    # process with one GIL, what a fleet of invocations costs the local stack.
    cpu_seconds: float = 0.0
    max_duration_seconds: float = 0.0
    durations: list[float] = field(default_factory=list)


@dataclass
class _Warm:
    """A warm "container": the imported handler and the function's boto3 session and credentials."""

    handler: Callable[[Any, LambdaContext], Any] | None = None
    module_name: str | None = None
    credentials: dict[str, str] | None = None
    session: boto3.Session | None = None
    # The configuration this instance started with: Lambda retires instances when it changes.
    configuration: tuple[tuple[str, str], ...] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Held for a whole cold start, so a concurrent first invocation waits for it instead of importing twice.
    init_lock: threading.Lock = field(default_factory=threading.Lock)


class _InitError(Exception):
    """A cold start failed; carries the runtime's error payload."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage", ""))
        self.payload = payload


def _error_payload(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "requestId": "",
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


def _trace_header() -> str:
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=0"


def _trace_root(header: str) -> str:
    """The Root of an X-Amzn-Trace-Id header ("Root=1-...;Parent=...;Sampled=0"); "" when it has none."""
    return next((part[5:] for part in header.split(";") if part.strip().startswith("Root=")), "").strip()


_MODELS_LOCK = threading.Lock()
_MODELS_COMPLETE: set[Path] = set()


def _complete_deferred_models(layer_dirs: Sequence[Path]) -> None:
    """Import every module of the layers and build each pydantic model left deferred, once per layer
    directory, before invocations can build them concurrently (see the module docstring)."""
    from pydantic import BaseModel

    with _MODELS_LOCK:
        for directory in layer_dirs:
            if directory in _MODELS_COMPLETE:
                continue
            for info in pkgutil.walk_packages([str(directory)], onerror=lambda _name: None):
                try:
                    module = importlib.import_module(info.name)
                except ImportError:
                    continue  # a module the functions cannot import either
                for value in list(vars(module).values()):
                    if (
                        isinstance(value, type)
                        and issubclass(value, BaseModel)
                        and value.__module__ == module.__name__
                        and not value.__pydantic_complete__
                    ):
                        value.model_rebuild()
            _MODELS_COMPLETE.add(directory)


def _module_name(function_name: str, modname: str) -> str:
    # No dots: a dotted name would make the import system look for a parent package.
    return "_dbx_lambda_" + re.sub(r"\W", "_", f"{function_name}__{modname}")


# --- the runtime -------------------------------------------------------------------------------------

_ACTIVE_RUNTIME: InProcessLambdaRuntime | None = None
_ORIGINAL_INVOKE_LAMBDA = LambdaFunction._invoke_lambda
_ORIGINAL_INVOKE = LambdaFunction.invoke
_DEFAULT_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _invoke_lambda_in_process(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """Replaces moto's LambdaFunction._invoke_lambda (which runs the code in Docker)."""
    runtime = _ACTIVE_RUNTIME
    if runtime is None:
        return _ORIGINAL_INVOKE_LAMBDA(self, event)
    return runtime.invoke(self, event)


def _invoke_reporting_unhandled(
    self: LambdaFunction, body: str, request_headers: Any, response_headers: Any
) -> str | bytes:
    """Replaces moto's LambdaFunction.invoke, which marks a function error "Handled"; Lambda says
    "Unhandled" for every error a Python function raises."""
    result = _ORIGINAL_INVOKE(self, body, request_headers, response_headers)
    if response_headers.get("x-amz-function-error") == "Handled":
        response_headers["x-amz-function-error"] = "Unhandled"
    return result


class InProcessLambdaRuntime:
    """Runs moto's Lambda invocations in this process. One is active at a time (the last installed)."""

    def __init__(self, endpoint_url: str, *, region: str = "us-east-1") -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self._lock = threading.Lock()
        self._sources: dict[str, FunctionSource] = {}
        self._warm: dict[str, _Warm] = {}
        self._stats: dict[str, FunctionStats] = {}
        # The trace root of each invocation that served a state machine execution -> that execution's name.
        self._executions: dict[str, str] = {}

    # -- lifecycle

    def install(self) -> InProcessLambdaRuntime:
        """Patch moto (idempotently) and make this runtime the one that serves invocations."""
        global _ACTIVE_RUNTIME
        install_environment_overlay()
        # Once a handler has imported the X-Ray SDK, it believes the whole process is a Lambda worker
        # and warns on every AWS call made outside an invocation (moto's own, the tests').
        logging.getLogger("aws_xray_sdk.core.lambda_launcher").setLevel(logging.ERROR)
        LambdaFunction._invoke_lambda = _invoke_lambda_in_process  # type: ignore[method-assign]
        LambdaFunction.invoke = _invoke_reporting_unhandled  # type: ignore[method-assign]
        _ACTIVE_RUNTIME = self
        return self

    def uninstall(self) -> None:
        """Stop serving; invocations fall back to moto's own behaviour. The patches stay (inert)."""
        global _ACTIVE_RUNTIME
        if _ACTIVE_RUNTIME is self:
            _ACTIVE_RUNTIME = None

    # -- registry

    def register(self, function_name: str, code_dir: Path, layer_dirs: Sequence[Path] = ()) -> None:
        """Tell the runtime where a deployed function's code and layers are (the deployer calls this)."""
        source = FunctionSource(
            function_name, Path(code_dir).resolve(), tuple(Path(d).resolve() for d in layer_dirs)
        )
        with self._lock:
            if self._sources.get(function_name) != source:
                # New code: the next invocation is a cold start.
                self._warm.pop(function_name, None)
            self._sources[function_name] = source
            self._stats.setdefault(function_name, FunctionStats())

    def execution_of(self, trace_header: str) -> str | None:
        """The execution whose Lambda invocation made a request carrying this X-Amzn-Trace-Id header (botocore
        sends the invocation's _X_AMZN_TRACE_ID, unique per invocation here): its name, as the state machine
        passed it in `execution_name`. None for a request made outside an invocation, or by an invocation
        whose event named no execution."""
        root = _trace_root(trace_header)
        with self._lock:
            return self._executions.get(root) if root else None

    def sources(self) -> dict[str, FunctionSource]:
        with self._lock:
            return dict(self._sources)

    def stats(self) -> dict[str, FunctionStats]:
        """A snapshot of per-function cold starts, invocations and durations."""
        with self._lock:
            return {name: replace(s, durations=list(s.durations)) for name, s in self._stats.items()}

    # -- invocation

    def invoke(self, fn: LambdaFunction, event: Any) -> tuple[str, bool, str]:
        """Run one invocation of a moto function; returns (payload, errored, log text) as moto expects."""
        name = fn.function_name
        configuration = tuple(sorted((k, str(v)) for k, v in (fn.environment_vars or {}).items()))
        with self._lock:
            source = self._sources.get(name)
            warm = self._warm.setdefault(name, _Warm(configuration=configuration))
            if warm.configuration != configuration:
                # UpdateFunctionConfiguration: the next invocation is a cold start with the new settings.
                warm = self._warm[name] = _Warm(configuration=configuration)
            stats = self._stats.setdefault(name, FunctionStats())
        request_id = str(uuid.uuid4())
        timeout = float(fn.timeout or 3)
        started = time.monotonic()
        if source is None:
            payload: dict[str, Any] = {
                "errorType": "Runtime.InvalidEntrypoint",
                "errorMessage": (
                    f"function {name} has no local source: deploy it with deploy_template() "
                    "or register it with InProcessLambdaRuntime.register()"
                ),
            }
            return self._finish(fn, stats, request_id, started, json.dumps(payload), True, False)

        if isinstance(event, str | bytes):
            with contextlib.suppress(json.JSONDecodeError):
                event = json.loads(event or "{}")
        log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[{fn.version}]{request_id.replace('-', '')}"
        context = LambdaContext(
            function_name=name,
            function_version=str(fn.version),
            invoked_function_arn=fn.function_arn,
            memory_limit_in_mb=int(fn.memory_size),
            aws_request_id=request_id,
            log_group_name=fn.logs_group_name,
            log_stream_name=log_stream,
            deadline_monotonic=started + timeout,
        )
        try:
            env = self._environment(fn, source, warm, log_stream)
        except Exception as exc:  # STS unreachable: the platform failed, not the function
            payload = {"errorType": "Runtime.Unknown", "errorMessage": f"could not assume the role: {exc}"}
            return self._finish(fn, stats, request_id, started, json.dumps(payload), True, False)
        execution = event.get("execution_name") if isinstance(event, dict) else None
        root = _trace_root(env.get("_X_AMZN_TRACE_ID") or "")
        if execution and root:
            with self._lock:
                self._executions[root] = str(execution)
        outcome: dict[str, Any] = {}

        def run() -> None:
            cpu = time.thread_time()
            try:
                _run()
            finally:
                outcome["cpu"] = time.thread_time() - cpu

        def _run() -> None:
            _INVOCATION_ENV.set(dict(env))
            _INVOCATION_SESSION.set(self._session(warm))
            try:
                handler = self._handler(fn, source, warm, stats)
                result = handler(event, context)
                try:
                    outcome["payload"] = json.dumps(result)
                except (TypeError, ValueError) as exc:
                    outcome["error"] = {
                        "errorType": "Runtime.MarshalError",
                        "errorMessage": f"Unable to marshal response: {exc}",
                        "requestId": request_id,
                        "stackTrace": [],
                    }
            except _InitError as exc:
                outcome["error"] = exc.payload
            except BaseException as exc:
                outcome["error"] = _error_payload(exc)
                outcome["error"]["requestId"] = request_id

        worker = threading.Thread(
            target=contextvars.Context().run, args=(run,), name=f"lambda:{name}:{request_id}", daemon=True
        )
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            payload = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
            }
            return self._finish(fn, stats, request_id, started, json.dumps(payload), True, True)
        with self._lock:
            stats.cpu_seconds += outcome.get("cpu", 0.0)
        if "error" in outcome:
            return self._finish(fn, stats, request_id, started, json.dumps(outcome["error"]), True, False)
        return self._finish(fn, stats, request_id, started, outcome["payload"], False, False)

    def _finish(
        self,
        fn: LambdaFunction,
        stats: FunctionStats,
        request_id: str,
        started: float,
        payload: str,
        errored: bool,
        timed_out: bool,
    ) -> tuple[str, bool, str]:
        duration = time.monotonic() - started
        with self._lock:
            stats.invocations += 1
            stats.errors += int(errored)
            stats.timeouts += int(timed_out)
            stats.total_duration_seconds += duration
            stats.max_duration_seconds = max(stats.max_duration_seconds, duration)
            stats.durations.append(duration)
        lines = [f"START RequestId: {request_id} Version: {fn.version}"]
        if errored:
            lines.append(payload)
        lines += [
            f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}\tDuration: {duration * 1000:.2f} ms\t"
            f"Memory Size: {fn.memory_size} MB",
        ]
        logs = "\n".join(lines)
        fn.logs_backend.ensure_log_group(fn.logs_group_name)
        fn.save_logs(logs)
        return payload, errored, logs

    # -- the pieces of an invocation

    def _environment(
        self, fn: LambdaFunction, source: FunctionSource, warm: _Warm, log_stream: str
    ) -> dict[str, str | None]:
        env: dict[str, str | None] = dict.fromkeys(_MASKED_PROCESS_VARIABLES)
        env.update({k: str(v) for k, v in (fn.environment_vars or {}).items()})
        credentials = self._credentials(fn, warm)
        env.update(
            {
                "AWS_REGION": fn.region,
                "AWS_DEFAULT_REGION": fn.region,
                "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
                "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
                "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
                "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "_HANDLER": str(fn.handler),
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
                "LAMBDA_TASK_ROOT": str(source.code_dir),
                "AWS_ENDPOINT_URL": self.endpoint_url,
                # Lambda gives every invocation a trace header; unsampled, so the X-Ray SDK records
                # nothing (without one it complains the "Lambda worker is still initializing").
                "_X_AMZN_TRACE_ID": _trace_header(),
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
                "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
                "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
                "AWS_SESSION_TOKEN": credentials["SessionToken"],
            }
        )
        return env

    def _credentials(self, fn: LambdaFunction, warm: _Warm) -> dict[str, str]:
        # moto's STS never expires credentials, so one AssumeRole per warm function is enough.
        with warm.lock:
            if warm.credentials is None:
                sts = boto3.session.Session(region_name=fn.region, **_DEFAULT_CREDENTIALS).client(
                    "sts", endpoint_url=self.endpoint_url
                )
                session_name = re.sub(r"[^\w+=,.@-]", "-", fn.function_name)[:64]
                warm.credentials = sts.assume_role(RoleArn=fn.role, RoleSessionName=session_name)[
                    "Credentials"
                ]
            return warm.credentials

    def _session(self, warm: _Warm) -> boto3.Session:
        # Called inside the invocation context, so the session reads the function's variables.
        with warm.lock:
            if warm.session is None:
                warm.session = boto3.session.Session()
            return warm.session

    def _handler(
        self, fn: LambdaFunction, source: FunctionSource, warm: _Warm, stats: FunctionStats
    ) -> Callable[[Any, LambdaContext], Any]:
        if warm.handler is not None:
            return warm.handler
        with warm.init_lock:
            if warm.handler is not None:
                return warm.handler
            started = time.monotonic()
            try:
                handler = self._import_handler(fn, source)
            except _InitError:
                with self._lock:
                    stats.init_failures += 1
                raise
            _complete_deferred_models(source.layer_dirs)
            with self._lock:
                stats.cold_starts += 1
                stats.cold_start_seconds = time.monotonic() - started
            warm.handler = handler
            return handler

    def _import_handler(
        self, fn: LambdaFunction, source: FunctionSource
    ) -> Callable[[Any, LambdaContext], Any]:
        handler_name = str(fn.handler or "")
        modname, sep, attribute = handler_name.rpartition(".")
        if not sep or not modname or not attribute:
            raise _InitError(
                {
                    "errorType": "Runtime.MalformedHandlerName",
                    "errorMessage": f"Bad handler '{handler_name}': not enough values to unpack",
                    "stackTrace": [],
                }
            )
        for directory in (*source.layer_dirs, source.code_dir):
            if str(directory) not in sys.path:
                sys.path.append(str(directory))
        relative = Path(*modname.replace("/", ".").split("."))
        candidates = [
            source.code_dir / relative.with_suffix(".py"),
            source.code_dir / relative / "__init__.py",
        ]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise _InitError(
                {
                    "errorType": "Runtime.ImportModuleError",
                    "errorMessage": f"Unable to import module '{modname}': No module named '{modname}'",
                    "stackTrace": [],
                }
            )
        unique = _module_name(fn.function_name, modname)
        spec = importlib.util.spec_from_file_location(unique, path)
        assert spec is not None and spec.loader is not None
        module: ModuleType = importlib.util.module_from_spec(spec)
        # pydantic and dataclasses look their module up in sys.modules while the module executes.
        sys.modules[unique] = module
        try:
            spec.loader.exec_module(module)
        except ImportError as exc:
            sys.modules.pop(unique, None)
            raise _InitError(
                {
                    "errorType": "Runtime.ImportModuleError",
                    "errorMessage": f"Unable to import module '{modname}': {exc}",
                    "stackTrace": [],
                }
            ) from exc
        except SyntaxError as exc:
            sys.modules.pop(unique, None)
            raise _InitError(
                {
                    "errorType": "Runtime.UserCodeSyntaxError",
                    "errorMessage": f"Syntax error in module '{modname}': {exc}",
                    "stackTrace": [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}'],
                }
            ) from exc
        except Exception as exc:
            sys.modules.pop(unique, None)
            raise _InitError(_error_payload(exc)) from exc
        handler = getattr(module, attribute, None)
        if not callable(handler):
            sys.modules.pop(unique, None)
            raise _InitError(
                {
                    "errorType": "Runtime.HandlerNotFound",
                    "errorMessage": f"Handler '{attribute}' missing on module '{modname}'",
                    "stackTrace": [],
                }
            )
        return handler  # type: ignore[no-any-return]

"""XenAPI method table: names, arity, sessions, tasks, events and the calls log.

`Dispatcher.call(method, params)` returns the value of a successful call or raises
ApiFailure; the server wraps either in the XML-RPC or JSON-RPC envelope. Argument counts
include the session, as xapi counts them in MESSAGE_PARAMETER_COUNT_MISMATCH.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from datetime import datetime, timezone

from runbook_lib.sim.clock import Int32
from runbook_lib.sim.model import BACKREFS, FIELDS, LOWER, NULL_REF, ApiFailure, format_token, new_ref, parse_token
from runbook_lib.sim.where import predicate

TASK_EXPIRY_S = 65 * 60  # xapi destroys a finished task about 65 minutes after it ended
TASK_MIN_WALL_S = 5.0    # ... and the simulator keeps it at least this long in wall time
SETTABLE = ("name_label", "name_description", "other_config", "tags", "blocked_operations")
MAP_FIELDS = ("other_config", "blocked_operations")  # with add_to_<f> / remove_from_<f>
SECRET_WORDS = ("password", "secret", "passwd", "chappassword", "cifspassword")
REDACTED = "********"


def _redact(value, depth=0):
    """Credentials never reach the calls log: secret-looking keys are masked."""
    if depth > 6:
        return value
    if isinstance(value, dict):
        return {k: (REDACTED if any(w in str(k).lower() for w in SECRET_WORDS) or
                    str(k) == "device_config" and v else _redact(v, depth + 1))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, depth + 1) for v in value]
    return value


def _summary(value):
    """Small results go to the calls log whole; big ones as their shape."""
    text = json.dumps(value, default=str)
    if len(text) <= 2000:
        return _redact(value)
    if isinstance(value, dict):
        return {"summary": f"map of {len(value)}"}
    if isinstance(value, list):
        return {"summary": f"list of {len(value)}"}
    return {"summary": f"{type(value).__name__} of {len(text)} chars"}


class Task:
    """The handle a long operation uses to report progress on its task record."""

    def __init__(self, pool, ref: str):
        self.pool, self.ref = pool, ref
        self.cancelled = False

    def set_progress(self, fraction: float) -> None:
        if self.cancelled:
            raise ApiFailure("TASK_CANCELLED", self.ref)
        self.pool.store.set("task", self.ref, progress=round(min(max(fraction, 0.0), 1.0), 4))


class Dispatcher:
    def __init__(self, pool, calls_path=None):
        self.pool = pool
        self.store = pool.store
        self.sessions: dict[str, dict] = {}
        self.tasks: dict[str, Task] = {}
        self.task_ends: dict[str, tuple[float, float]] = {}  # task -> (simulated, wall) time it ended
        # a fast clock would expire tasks before a client reads them: each stays this long in wall time too
        self.task_min_wall_s = TASK_MIN_WALL_S
        self.methods: dict[str, tuple] = {}
        self.calls_file = open(calls_path, "a", encoding="utf-8") if calls_path else None
        self.calls_lock = threading.Lock()
        self.outage_until = 0.0   # wall time until which the server plays dead (restart fault)
        self.restart_requested = 0.0  # seconds; the Simulator closes its socket that long
        self.clock_driven = lambda: False   # the Simulator says whether its clock thread runs
        self._build()

    def close(self) -> None:
        if self.calls_file:
            self.calls_file.close()
            self.calls_file = None

    # -- table -------------------------------------------------------------------------------------
    def _add(self, name, fn, arity, session=True, mutating=False, asyncable=False):
        self.methods[name] = (fn, arity, session, mutating)
        if asyncable:
            self.methods["Async." + name] = (fn, arity, session, "async")

    def _build(self):
        names = {c: c for c in FIELDS}
        for cls in names:
            self._generic(cls)
        p = self.pool
        add = self._add
        add("session.login_with_password", self.login, (2, 4), session=False)
        add("session.logout", self.logout, 1)
        add("session.get_this_host", lambda s, ref: self._session(ref) and p.master, 2)
        add("session.get_uuid", lambda s, ref: self._session(ref)["uuid"], 2)
        # xapi answers system.listMethods whatever parameters come with it (the XenAPI client sends its session)
        add("system.listMethods", lambda *ignored: sorted(self.methods), (0, 1 << 16), session=False)
        add("event.from", self.event_from, 4)
        add("event.inject", lambda s, cls, ref: self._inject(cls, ref), 3)
        add("event.get_current_id", lambda s: self.store.generation, 1)   # an int64, as in xapi
        add("task.cancel", self.task_cancel, 2, mutating=True, asyncable=True)
        add("task.destroy", self.task_destroy, 2, mutating=True)
        add("task.create", self.task_create, 3, mutating=True)
        add("message.get_since", self.message_since, 2)
        add("message.create", self.message_create, 6, mutating=True)
        add("message.destroy", self.message_destroy, 2, mutating=True)
        add("host.get_servertime", lambda s, h: self.store.get("host", h) and p.clock.date(), 2)
        add("host.get_server_localtime", lambda s, h: self.store.get("host", h) and p.clock.date(), 2)
        add("pool.get_master", lambda s, ref: self.store.get("pool", ref)["master"], 2)
        ops = [
            ("SR.scan", p.op_SR_scan, 2), ("SR.update", p.op_SR_update, 2),
            ("VM.copy", p.op_VM_copy, 4), ("VM.clone", p.op_VM_clone, 3),
            ("VM.snapshot", p.op_VM_snapshot, (3, 4)), ("VM.destroy", p.op_VM_destroy, 2),
            ("VM.clean_shutdown", p.op_VM_clean_shutdown, 2),
            ("VM.hard_shutdown", p.op_VM_hard_shutdown, 2),
            ("VM.start", p.op_VM_start, 4),
            ("VDI.copy", p.op_VDI_copy, 3), ("VDI.pool_migrate", p.op_VDI_pool_migrate, 4),
            ("VDI.destroy", p.op_VDI_destroy, 2), ("VDI.create", p.op_VDI_create, 2),
            ("VDI.snapshot", p.op_VDI_snapshot, (2, 3)),
            ("VBD.create", p.op_VBD_create, 2), ("VBD.destroy", p.op_VBD_destroy, 2),
            ("VIF.create", p.op_VIF_create, 2), ("VIF.destroy", p.op_VIF_destroy, 2),
            ("host.call_plugin", p.op_host_call_plugin, 5),
        ]
        for name, fn, arity in ops:
            add(name, self._op(fn), arity, mutating=True, asyncable=True)

    def _op(self, fn):
        wants_task = "task" in inspect.signature(fn).parameters

        def call(session, *args, task=None):
            if wants_task:
                return fn(*args, task=task)
            return fn(*args)
        call.wants_task = wants_task
        return call

    def _class_reads(self, cls):
        """get_all, get_all_records(_where), get_record, get_by_uuid, get_by_name_label."""
        st = self.store
        add = self._add

        def get_all(s):
            return st.all_refs(cls)

        def get_all_records(s):
            return {r: st.record(cls, r) for r in st.all_refs(cls)}

        def get_record(s, ref):
            return st.record(cls, ref)

        def get_by_uuid(s, uuid):
            return st.ref_by_uuid(cls, uuid)

        def get_all_records_where(s, expr):
            test = predicate(expr)
            records = {r: st.record(cls, r) for r in st.all_refs(cls)}
            return {r: rec for r, rec in records.items() if test(rec)}

        add(f"{cls}.get_all", get_all, 1)
        add(f"{cls}.get_all_records", get_all_records, 1)
        add(f"{cls}.get_all_records_where", get_all_records_where, 2)
        add(f"{cls}.get_record", get_record, 2)
        add(f"{cls}.get_by_uuid", get_by_uuid, 2)
        if "name_label" in FIELDS[cls]:
            add(f"{cls}.get_by_name_label", lambda s, label: st.find(cls, name_label=label), 2)

    def _generic(self, cls):
        st = self.store
        add = self._add
        self._class_reads(cls)

        # factories bind the field name now, so each method keeps its own field
        def field_getter(f):
            return lambda s, ref: st.record(cls, ref)[f]

        def field_setter(f):
            return lambda s, ref, v: self._set(cls, ref, f, v)

        def map_adder(f):
            return lambda s, ref, k, v: self._add_to(cls, ref, f, k, v)

        def map_remover(f):
            return lambda s, ref, k: self._set(cls, ref, f, {a: b for a, b in st.get(cls, ref)[f].items()
                                                             if a != k})

        fields = list(FIELDS[cls]) + [f for parent, f, _, _ in BACKREFS if parent == cls]
        for f in fields:
            add(f"{cls}.get_{f}", field_getter(f), 2)
        for f in SETTABLE:
            if f in FIELDS[cls]:
                add(f"{cls}.set_{f}", field_setter(f), 3, mutating=True)
        for f in MAP_FIELDS:
            if f not in FIELDS[cls]:
                continue
            add(f"{cls}.add_to_{f}", map_adder(f), 4, mutating=True)
            add(f"{cls}.remove_from_{f}", map_remover(f), 3, mutating=True)

    def _add_to(self, cls, ref, field, key, value):
        """add_to_<map>: xapi refuses a key that is already there (it never overwrites)."""
        current = self.store.get(cls, ref)[field]
        if key in current:
            raise ApiFailure("MAP_DUPLICATE_KEY", cls, field, ref, key)
        return self._set(cls, ref, field, {**current, key: value})

    def _set(self, cls, ref, field, value):
        self.store.get(cls, ref)
        kind = type(FIELDS[cls][field])
        if kind is dict and not isinstance(value, dict) or kind is list and not isinstance(value, list) \
                or kind is str and not isinstance(value, str):
            raise ApiFailure("FIELD_TYPE_ERROR", field)
        self.store.set(cls, ref, **{field: value})
        return ""

    # -- sessions ----------------------------------------------------------------------------------
    def login(self, user, password, version="1.0", originator=""):
        if "host-is-slave" in self.pool.faults:
            raise ApiFailure("HOST_IS_SLAVE", self.pool.faults.active.get("host-is-slave")
                             or self.pool.host_addresses.get(self.pool.master, ""))
        if user != self.pool.user or password != self.pool.password:
            raise ApiFailure("SESSION_AUTHENTICATION_FAILED", user,
                             "Authentication failure")
        ref = new_ref()
        self.sessions[ref] = {"uuid": ref.split(":", 1)[1], "user": user, "calls": 0,
                              "originator": originator, "valid": True}
        return ref

    def logout(self, session):
        self.sessions.pop(session, None)
        return ""

    def _session(self, ref):
        s = self.sessions.get(ref)
        if not s or not s["valid"]:
            raise ApiFailure("SESSION_INVALID", ref)
        return s

    def _check_session(self, ref):
        s = self._session(ref)
        s["calls"] += 1
        limit = self.pool.faults.session_expiry
        if limit and s["calls"] > limit:
            s["valid"] = False
            raise ApiFailure("SESSION_INVALID", ref)

    # -- events ------------------------------------------------------------------------------------
    def _inject(self, cls, ref):
        real = LOWER.get(str(cls).lower())
        if real is None:
            raise ApiFailure("EVENT_SUBSCRIPTION_PARSE_FAILURE", cls)
        self.store.get(real, ref)
        return self.store.inject(real, ref)

    def _subscribed(self, classes) -> set[str]:
        wanted = set()
        for c in classes:
            c = str(c).lower().split("/")[0]
            if c == "*":
                return set(LOWER.values())
            if c not in LOWER:
                raise ApiFailure("EVENT_SUBSCRIPTION_PARSE_FAILURE", c)
            wanted.add(LOWER[c])
        return wanted

    def event_from(self, session, classes, token, timeout):
        """xapi's event.from: every object of the classes as an `add` for the empty token (or
        generation 0), else what changed since the token's generation: one event per object
        (adds, then mods, then dels; an object made and removed since the token is left out),
        waiting up to `timeout` seconds for a change; the token of the last change reported."""
        wanted = self._subscribed(classes)
        since = parse_token(str(token))
        deadline = time.monotonic() + max(float(timeout), 0.0)
        st = self.store
        with st.lock:
            if since <= 0:
                return self._from_result(self._all_as_adds(wanted), st.generation)
            scanned = since
            while True:
                found = st.events_since(scanned)
                if found is None:
                    raise ApiFailure("EVENTS_LOST")
                events, last = self._changes(found, wanted, since)
                if events:
                    return self._from_result(events, last)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return self._from_result([], since)
                scanned = max(scanned, st.generation)
                st.changed.wait(min(remaining, 0.5))

    def _all_as_adds(self, wanted: set[str]) -> list[dict]:
        st = self.store
        return sorted((self._event_record(st.created.get((cls, ref), 0), cls, "add", ref, st.record(cls, ref))
                       for cls in wanted for ref in st.all_refs(cls)), key=lambda e: int(e["id"]))

    @staticmethod
    def _event_record(generation, cls, operation, ref, snapshot) -> dict:
        out = {"id": str(generation), "timestamp": "0.0", "class": cls.lower(), "operation": operation,
               "ref": ref}
        if snapshot is not None:   # a del has none
            out["snapshot"] = snapshot
        return out

    def _changes(self, found, wanted, since) -> tuple[list[dict], int]:
        """The events to report from the log entries after `since`, and the last generation."""
        latest, created = {}, {}
        for ev in found:
            if ev.cls in wanted:
                key = (ev.cls, ev.ref)
                latest[key] = ev
                if ev.operation == "add":
                    created[key] = ev.id
        groups = {"add": [], "mod": [], "del": []}
        for key, ev in latest.items():
            if key in created:
                if ev.operation == "del":
                    continue         # made and removed since the token: xapi says nothing
                groups["add"].append(self._event_record(created[key], ev.cls, "add", ev.ref, ev.snapshot))
            else:
                groups[ev.operation].append(self._event_record(ev.id, ev.cls, ev.operation, ev.ref, ev.snapshot))
        events = [e for op in ("add", "mod", "del") for e in sorted(groups[op], key=lambda e: int(e["id"]))]
        return events, max((ev.id for ev in latest.values()), default=since)

    def _from_result(self, events, generation):
        st = self.store
        return {"events": events,
                "valid_ref_counts": {c.lower(): Int32(len(st.tables[c])) for c in sorted(st.tables)},
                "token": format_token(generation)}

    _MESSAGE_CLASSES = {"VM": "VM", "Host": "host", "SR": "SR", "Pool": "pool", "VDI": "VDI"}

    def message_create(self, session, name, priority, cls, obj_uuid, body):
        """message.create: the object the message is about must exist (UUID_INVALID [cls, uuid])."""
        try:
            priority = int(priority)
        except (TypeError, ValueError):
            raise ApiFailure("FIELD_TYPE_ERROR", "priority") from None
        ours = self._MESSAGE_CLASSES.get(str(cls))
        if ours is not None and obj_uuid not in self.store.by_uuid[ours]:
            raise ApiFailure("UUID_INVALID", cls, obj_uuid)
        return self.store.add("message", dict(name=str(name), priority=priority, cls=str(cls),
                                              obj_uuid=str(obj_uuid), timestamp=self.pool.clock.date(),
                                              body=str(body)))

    def message_destroy(self, session, ref):
        self.store.get("message", ref)
        self.store.delete("message", ref)
        return ""

    def message_since(self, session, since):
        cutoff = str(since)
        return {r: st for r, st in ((r, self.store.record("message", r))
                                    for r in self.store.all_refs("message"))
                if str(st["timestamp"]) >= cutoff}

    # -- tasks -------------------------------------------------------------------------------------
    def _new_task(self, name):
        ref = self.store.add("task", dict(name_label=name, status="pending", progress=0.0,
                                          created=self.pool.clock.date(),
                                          resident_on=self.pool.master))
        handle = Task(self.pool, ref)
        self.tasks[ref] = handle
        return handle

    def _finish_task(self, task, result=None, error=None):
        self.finish_task_ref(task.ref, result=result, error=error)

    def finish_task_ref(self, ref, result=None, error=None):
        """End a task (ours, or one a client made with task.create for an HTTP import)."""
        st = self.store
        if not st.exists("task", ref):
            return
        if error is not None:
            status = "cancelled" if error.code == "TASK_CANCELLED" else "failure"
            st.set("task", ref, status=status, error_info=error.description,
                   finished=self.pool.clock.date(), allowed_operations=[])
        else:
            value = "" if result in (None, "") else f"<value>{result}</value>"
            st.set("task", ref, status="success", progress=1.0, result=value,
                   finished=self.pool.clock.date(), allowed_operations=[])
        self.task_ends[ref] = (self.pool.clock.now, time.monotonic())
        with st.changed:
            st.changed.notify_all()

    def task_create(self, session, label, description):
        """task.create: a pending task the client hands to an HTTP handler (/import?task_id=)."""
        return self.store.add("task", dict(name_label=str(label), name_description=str(description),
                                           status="pending", progress=0.0, created=self.pool.clock.date(),
                                           resident_on=self.pool.master))

    def expire_tasks(self):
        """xapi's database GC: a finished task goes about 65 minutes after it ended, whether or not
        anyone read it (xapi also drops pending ones after a day; not modelled)."""
        now, wall = self.pool.clock.now, time.monotonic()
        for ref, (ended, ended_wall) in list(self.task_ends.items()):
            if now - ended >= TASK_EXPIRY_S and wall - ended_wall >= self.task_min_wall_s:
                self.task_ends.pop(ref, None)
                if self.store.exists("task", ref):
                    self.store.delete("task", ref)
                self.tasks.pop(ref, None)

    def task_cancel(self, session, ref):
        rec = self.store.get("task", ref)
        handle = self.tasks.get(ref)
        if rec["status"] != "pending" or handle is None:
            raise ApiFailure("OPERATION_NOT_ALLOWED", "task is not pending")
        handle.cancelled = True
        self.store.set("task", ref, status="cancelling")
        return ""

    def task_destroy(self, session, ref):
        self.store.get("task", ref)
        self.store.delete("task", ref)
        self.tasks.pop(ref, None)
        self.task_ends.pop(ref, None)
        return ""

    def _run(self, name, fn, session, args, asynchronous, label=None):
        """Run an operation; a generator becomes a process in simulated time."""
        task = self._new_task(label or name) if asynchronous or getattr(fn, "wants_task", False) else None
        try:
            result = fn(session, *args, task=task) if getattr(fn, "wants_task", False) \
                else fn(session, *args)
            if not inspect.isgenerator(result):
                if task:
                    self._finish_task(task, result=result)
                return task.ref if asynchronous else result
            first = next(result)          # preconditions run now, as xapi checks them first
        except StopIteration as stop:
            if task:
                self._finish_task(task, result=stop.value)
            return task.ref if asynchronous else stop.value
        except ApiFailure as exc:
            if asynchronous:     # xapi checks inside the task: the call still returns its ref
                self._finish_task(task, error=exc)
                return task.ref
            if task and self.store.exists("task", task.ref):
                self.store.delete("task", task.ref)
            raise
        outcome, done = self._spawn(result, first, task)
        if asynchronous:
            return task.ref
        self._wait_for(done)
        if task and self.store.exists("task", task.ref):
            self.store.delete("task", task.ref)
            self.tasks.pop(task.ref, None)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def _spawn(self, gen, first, task):
        """Run the rest of generator `gen` (which already yielded `first`) as a process on the
        clock. Returns (outcome, done): `done` is set once outcome holds "value" or "error"."""
        outcome = {}
        done = threading.Event()

        def resume():
            yield first
            value = yield from gen
            return value

        def on_done(value):
            outcome["value"] = value
            if task:
                self._finish_task(task, result=value)
            done.set()

        def on_error(exc):
            if not isinstance(exc, ApiFailure):
                exc = ApiFailure("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
            outcome["error"] = exc
            if task:
                self._finish_task(task, error=exc)
            done.set()

        self.pool.clock.spawn(resume(), on_done, on_error)
        return outcome, done

    def _wait_for(self, done):
        """Block until `done` is set, releasing the store lock (however deeply held) meanwhile."""
        pool = self.pool
        lock = self.store.lock
        depth = 0
        while lock._is_owned():   # let the clock thread run while this call waits
            lock.release()
            depth += 1
        try:
            while not done.is_set():
                if self.clock_driven():
                    done.wait(0.05)
                else:   # nobody runs the clock (simulator not started): run it to the next step
                    with lock:
                        due = pool.clock.next_due()
                        pool.clock.advance(max(due - pool.clock.now, 0.0) if due else 1.0)
        finally:
            for _ in range(depth):
                lock.acquire()

    # -- calling -----------------------------------------------------------------------------------
    def call(self, method: str, params: list):
        error = None
        result = None
        try:
            result = self._call(method, list(params))
            return result
        except ApiFailure as exc:
            error = exc
            raise
        except Exception as exc:  # noqa: BLE001 - a simulator bug must still answer like xapi
            error = ApiFailure("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
            raise error from exc
        finally:
            self._log_call(method, params, result, error)

    def _call(self, method, params):
        entry = self.methods.get(method)
        if entry is None:
            raise ApiFailure("MESSAGE_METHOD_UNKNOWN", method)
        fn, arity, needs_session, kind = entry
        lo, hi = arity if isinstance(arity, tuple) else (arity, arity)
        if not lo <= len(params) <= hi:
            raise ApiFailure("MESSAGE_PARAMETER_COUNT_MISMATCH", method, hi, len(params))
        with self.store.lock:
            self.pool.clock.tick()
            if needs_session:
                self._check_session(params[0])
            self.expire_tasks()
            if kind == "async":  # the task is labelled with the wire name, as xapi does
                value = self._run(method[len("Async."):], fn, params[0], params[1:], True, label=method)
            elif kind is True and hasattr(fn, "wants_task"):
                value = self._run(method, fn, params[0], params[1:], False)
            else:
                value = fn(*params)
            outage = self.pool.faults.restart_seconds if kind else None
            if outage:
                self.pool.faults.restart_done = True
                self.outage_until = time.monotonic() + outage
                self.restart_requested = outage
            return value

    def _log_call(self, method, params, result, error):
        if not self.calls_file:
            return
        args = list(params)
        if method.startswith("session.login"):
            args = [args[0]] + [REDACTED] + args[2:] if args else args
        elif args and method in self.methods and self.methods[method][2]:
            args[0] = "<session>"
        entry = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                 "sim_time": str(self.pool.clock.date()), "method": method,
                 "args": _redact(args)}
        if error is not None:
            entry["error"] = error.description
        elif method.startswith("session.login"):
            entry["result"] = "<session>"
        else:
            entry["result"] = _summary(result)
        line = json.dumps(entry, default=str)
        with self.calls_lock:
            if self.calls_file:
                self.calls_file.write(line + "\n")
                self.calls_file.flush()


__all__ = ["Dispatcher", "ApiFailure", "NULL_REF"]

"""Design-document functions run in embedded QuickJS, as CouchDB 3.4 runs them.

CouchDB 3.4 embeds QuickJS (``couchjs`` with ``js_engine = quickjs``); we embed it
through the ``quickjs`` package. Each design document gets its own QuickJS runtime
(a sandbox): nothing in it but the design document (``this`` of every function),
the document and CouchDB's documented arguments, and the helpers CouchDB's query
server defines (``emit``, ``log``, ``sum``, ``toJSON``, ``isArray``, ``require`` of
CommonJS modules stored in the design document). No I/O, no host callables.

Every call runs under a CPU-time limit and the runtime under a memory limit
(``design.js_time_limit_ms``, ``design.js_memory_limit_mb``). A sandbox that hits
either is thrown away and built again on the next call.

The ``quickjs`` package crashes when one runtime is used from several threads, even
one at a time, so every sandbox lives on one worker thread; callers hand it whole
batches (documents of a view build, rows of a reduce) to keep the hand-offs few.
Arguments and results cross as JSON text. The time limit is measured by QuickJS as
process CPU time (C ``clock()``), which other busy threads also advance: a limit
may trip early on a loaded server, never late.

Reference: apache/couchdb share/server/{loop,util,views,filter,validate}.js.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from typing import Any

import quickjs

from ..errors import CouchError

log = logging.getLogger(__name__)

# Sandboxes kept ready (one per distinct design document); older ones are dropped.
CACHED_SANDBOXES = 32


class CompilationError(CouchError):
    """A design-document function that does not compile (CouchDB: 400 compilation_error)."""

    status, error, reason = 400, "compilation_error", "Compilation of a design document function failed."


class JSRuntimeError(CouchError):
    """A function that threw an Error, ran out of time or memory (CouchDB: 500)."""

    status, error, reason = 500, "os_process_error", "A design document function failed."


_PRELUDE = r"""
var __ddoc = null, __fns = {}, __emitted = null, __logs = [];
function log(message) {
  if (typeof message !== 'string') { message = JSON.stringify(message); }
  __logs.push(String(message));
}
function toJSON(value) { return JSON.stringify(value); }
function isArray(value) { return Array.isArray(value); }
function sum(values) {
  var total = 0;
  for (var i = 0; i < values.length; i++) { total += values[i]; }
  return total;
}
function emit(key, value) {
  if (__emitted === null) { throw new Error('emit() called outside a map function'); }
  __emitted.push([key === undefined ? null : key, value === undefined ? null : value]);
}
function __errstr(e) {
  if (e && e.name && e.message !== undefined) { return e.name + ': ' + e.message; }
  try { return JSON.stringify(e); } catch (x) { return String(e); }
}
// CommonJS modules stored in the design document (CouchDB util.js resolveModule/require).
var __modules = {};
function __resolve(names, mod, root) {  // CouchDB util.js resolveModule, as is
  if (names.length === 0) {
    if (typeof mod.current !== 'string') {
      throw ['error', 'invalid_require_path', 'Must require a JavaScript string, not: ' + (typeof mod.current)];
    }
    return {current: mod.current, parent: mod.parent, id: mod.id, exports: {}};
  }
  var n = names.shift();
  if (n === '..') {
    if (!(mod && mod.parent && mod.parent.parent)) {
      throw ['error', 'invalid_require_path', 'Object has no parent ' + JSON.stringify(mod ? mod.current : null)];
    }
    return __resolve(names, {id: mod.id.slice(0, mod.id.lastIndexOf('/')), parent: mod.parent.parent,
                             current: mod.parent.current});
  } else if (n === '.') {
    if (!(mod && mod.parent)) {
      throw ['error', 'invalid_require_path', 'Object has no parent ' + JSON.stringify(mod ? mod.current : null)];
    }
    return __resolve(names, {parent: mod.parent, current: mod.current, id: mod.id});
  } else if (root) {
    mod = {current: root};
  }
  if (mod.current === null || typeof mod.current !== 'object' || mod.current[n] === undefined) {
    throw ['error', 'invalid_require_path', 'Object has no property "' + n + '". ' + JSON.stringify(mod.current)];
  }
  return __resolve(names, {current: mod.current[n], parent: mod, id: mod.id ? mod.id + '/' + n : n});
}
function __require(name, parent) {
  var module = __resolve(name.split('/'), parent ? parent.parent : undefined, __ddoc);
  if (Object.prototype.hasOwnProperty.call(__modules, module.id)) { return __modules[module.id]; }
  var f;
  try {
    f = (0, eval)('(function (module, exports, require) { ' + module.current + '\n })');
  } catch (e) {
    throw ['error', 'compilation_error', "Module require('" + name + "') raised error " + __errstr(e)];
  }
  f.call(__ddoc, module, module.exports, function (n) { return __require(n, module); });
  __modules[module.id] = module.exports;
  return module.exports;
}
var require = function (name) { return __require(name, null); };
function __compile(path) {
  if (Object.prototype.hasOwnProperty.call(__fns, path)) { return __fns[path]; }
  var parts = path.split('.'), src = __ddoc;
  for (var i = 0; i < parts.length; i++) {
    if (src === null || typeof src !== 'object' || !(parts[i] in src)) {
      throw ['error', 'not_found', 'missing function ' + path];
    }
    src = src[parts[i]];
  }
  if (typeof src !== 'string') { throw ['error', 'not_found', 'missing function ' + path]; }
  var f;
  // couchjs accepts a trailing semicolon and surrounding blanks (it normalises the source first).
  src = src.replace(/^\s+/, '').replace(/[\s;]+$/, '');
  try { f = (0, eval)('(' + src + '\n)'); } catch (e) {
    throw ['error', 'compilation_error', __errstr(e) + ' (' + src + ')'];
  }
  if (typeof f !== 'function') {
    throw ['error', 'compilation_error', 'Expression does not eval to a function. (' + src.slice(0, 200) + ')'];
  }
  __fns[path] = f;
  return f;
}
// CouchDB util.js deepFreeze: no map function changes what the next one sees. Frozen only when a design
// document has several map functions (it doubles the cost of mapping; one function sees its own changes).
function __freeze(o) {
  Object.freeze(o);
  for (var k in o) {
    var v = o[k];
    if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) { __freeze(v); }
  }
  return o;
}
var __ops = {
  map: function (cmd) {
    var fns = cmd.fns.map(__compile), out = [];
    for (var d = 0; d < cmd.docs.length; d++) {
      var row = [];
      if (fns.length > 1) { __freeze(cmd.docs[d]); }
      for (var f = 0; f < fns.length; f++) {
        __emitted = [];
        try { fns[f].call(__ddoc, cmd.docs[d]); row.push(__emitted); }
        catch (e) {
          if (e === null || (e && e.name === 'InternalError')) { throw e; }  // out of time or memory
          log('function raised exception ' + __errstr(e) + ' with doc._id ' + cmd.docs[d]._id);
          row.push([]);  // CouchDB skips the document for this view
        }
      }
      out.push(row);
    }
    __emitted = null;
    return out;
  },
  reduce: function (cmd) {  // an error in a reduce function makes its value null (couchjs views.js)
    var f = __compile(cmd.fn);
    try { return f.call(__ddoc, cmd.rereduce ? null : cmd.keys, cmd.values, !!cmd.rereduce); } catch (e) {
      if (e === null || (e && e.name === 'InternalError')) { throw e; }
      log('function raised exception ' + __errstr(e));
      return null;
    }
  },
  filter: function (cmd) {
    var f = __compile(cmd.fn), out = [];
    for (var d = 0; d < cmd.docs.length; d++) { out.push(!!f.call(__ddoc, cmd.docs[d], cmd.req)); }
    return out;
  },
  map_filter: function (cmd) {  // filter=_view: a document passes when the map emits anything
    var f = __compile(cmd.fn), out = [];
    for (var d = 0; d < cmd.docs.length; d++) {
      __emitted = [];
      try { f.call(__ddoc, cmd.docs[d]); out.push(__emitted.length > 0); } catch (e) {
        if (e === null || (e && e.name === 'InternalError')) { throw e; }
        out.push(false);
      }
    }
    __emitted = null;
    return out;
  },
  validate: function (cmd) {
    var f = __compile(cmd.fn);
    try { f.call(__ddoc, cmd.newDoc, cmd.oldDoc, cmd.userCtx, cmd.secObj); }
    catch (e) {
      if (e && e.name && e.stack !== undefined) { throw e; }
      return {thrown: e === undefined ? null : e};
    }
    return 1;
  },
  compile: function (cmd) { for (var i = 0; i < cmd.fns.length; i++) { __compile(cmd.fns[i]); } return true; }
};
function __run(text) {
  var cmd = JSON.parse(text);
  __logs = [];
  try {
    var result = __ops[cmd.op](cmd);
    return JSON.stringify({ok: result === undefined ? null : result, logs: __logs});
  } catch (e) {
    if (Array.isArray(e) && e[0] === 'error') {
      return JSON.stringify({error: e[1], reason: e[2], logs: __logs});
    }
    if (e === null || (e && e.name === 'InternalError')) { throw e; }  // out of time or memory
    return JSON.stringify({error: 'js_error', reason: __errstr(e), logs: __logs});
  }
}
"""


class Limits:
    """Per-call CPU time and per-sandbox memory."""

    def __init__(self, time_limit_ms: int = 5000, memory_limit_mb: int = 64) -> None:
        self.time_limit_ms, self.memory_limit_mb = time_limit_ms, memory_limit_mb


class _Sandbox:
    """One design document's QuickJS runtime (used only on the engine's thread)."""

    def __init__(self, ddoc: dict, limits: Limits) -> None:
        self.context = quickjs.Context()
        self.context.set_memory_limit(limits.memory_limit_mb * 1024 * 1024)
        self.context.set_time_limit(limits.time_limit_ms / 1000)
        self.context.set_max_stack_size(1024 * 1024)
        self.context.eval(_PRELUDE)
        self.context.eval("__ddoc = " + json.dumps(ddoc, ensure_ascii=False) + ";")
        self.run = self.context.get("__run")


class Engine:
    """Runs design-document functions; thread-safe (all JavaScript runs on one worker thread)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="couchjs")
        self._sandboxes: OrderedDict[str, _Sandbox] = OrderedDict()

    def configure(self, limits: Limits) -> None:
        """New limits for sandboxes built from now on (existing ones are dropped)."""
        self.limits = limits
        self._pool.submit(self._sandboxes.clear).result()

    def call(self, ddoc: dict, command: dict) -> Any:
        """Run one command (see ``__ops`` in the prelude) in the design document's sandbox.

        :raises CompilationError: a function that does not compile or is missing.
        :raises JSRuntimeError: a function that threw an Error, or hit the time or memory limit.
        """
        text = json.dumps(command, ensure_ascii=False, allow_nan=False)
        key = ddoc_key(ddoc)
        answer = self._pool.submit(self._run, key, ddoc, text).result()
        result = json.loads(answer)
        for line in result.get("logs", ()):
            log.info("%s: %s", ddoc.get("_id"), line[:1000])
        if "error" in result:
            if result["error"] in ("compilation_error", "not_found", "invalid_require_path"):
                raise CompilationError(result["reason"], error=result["error"])
            raise JSRuntimeError(result["reason"])
        return result["ok"]

    def _run(self, key: str, ddoc: dict, text: str) -> str:
        sandbox = self._sandboxes.get(key)
        if sandbox is None:
            try:
                sandbox = _Sandbox(ddoc, self.limits)
            except quickjs.JSException as exc:
                raise JSRuntimeError(f"cannot load design document: {exc}"[:300]) from None
            self._sandboxes[key] = sandbox
            while len(self._sandboxes) > CACHED_SANDBOXES:
                self._sandboxes.popitem(last=False)
        self._sandboxes.move_to_end(key)
        try:
            return sandbox.run(text)
        except quickjs.JSException as exc:
            # Out of time or memory (or an Error that escaped): the runtime may be unusable, drop it.
            self._sandboxes.pop(key, None)
            message = str(exc).splitlines()[0] if str(exc) else "out of memory"
            if "interrupted" in message:
                message = f"function ran longer than {self.limits.time_limit_ms} ms (design.js_time_limit_ms)"
            elif "out of memory" in message or message == "null":
                message = f"function used more than {self.limits.memory_limit_mb} MB (design.js_memory_limit_mb)"
            raise JSRuntimeError(message) from None
        except quickjs.StackOverflow:
            self._sandboxes.pop(key, None)
            raise JSRuntimeError("stack overflow") from None


def ddoc_key(ddoc: dict) -> str:
    """Identifies a design document's content (its id and revision say it, cheaply)."""
    rev = ddoc.get("_rev")
    if rev:
        return f"{ddoc.get('_id')}\0{rev}"
    return hashlib.sha1(json.dumps(ddoc, sort_keys=True).encode()).hexdigest()


_engine: Engine | None = None
_engine_lock = threading.Lock()


def engine() -> Engine:
    """The process's one engine (built on first use, with the limits last configured)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = Engine()
        return _engine


def configure(time_limit_ms: int, memory_limit_mb: int) -> None:
    """Set the limits from the settings (``design`` section)."""
    engine().configure(Limits(time_limit_ms, memory_limit_mb))

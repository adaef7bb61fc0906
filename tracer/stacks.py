"""Where the ORM was called from: captured cheaply, resolved only when displayed.

At capture time a stack is a flat tuple ``(code, lasti, code, lasti, ...)`` of the
frames from the first one in the user's code outward (``TRACER["STACK_DEPTH"]`` of
them). Which files are "not the user's code" is ``TRACER["LIBRARY_PATHS"]``:
Django, the tracer, the standard library and site-packages by default. Frames are
classified once per code object.
"""

from __future__ import annotations

import inspect
import linecache
import os
import site
import sysconfig
import threading
from dataclasses import dataclass
from functools import lru_cache
from types import CodeType, FrameType
from typing import Any

import django
from django.core.signals import setting_changed
from django.template.base import Node

from tracer.trace import Stack, StackCache

_TRACER_DIR = os.path.dirname(os.path.abspath(__file__))
_RENDER_ANNOTATED = Node.render_annotated.__code__
# Frames that can be suspended and resumed from elsewhere (their callers change).
_SUSPENDABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR

# file name -> whether it is library code (not the user's). Keyed by name, not by
# code object: code objects that differ only in file name compare equal.
_library_code: dict[str, bool] = {}
_prefixes: tuple[str, ...] | None = None
_depth = 12
_lock = threading.Lock()


def default_library_paths() -> list[str]:
    """Django, the tracer, the standard library and every site-packages directory."""
    paths = [os.path.dirname(django.__file__), _TRACER_DIR]
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            paths.append(path)
    try:
        paths.extend(site.getsitepackages())
    except AttributeError:  # some virtualenv builds lack it
        pass
    user_site = getattr(site, "USER_SITE", None)
    if user_site:
        paths.append(user_site)
    return paths


def _configure() -> tuple[str, ...]:
    global _prefixes, _depth
    from tracer.conf import get_config

    try:
        config = get_config()
        paths = config.library_paths
        _depth = config.stack_depth
    except Exception:
        paths = None
    if paths is None:
        paths = tuple(default_library_paths())
    prefixes = tuple(sorted({os.path.join(os.path.abspath(p), "") for p in paths}))
    with _lock:
        _library_code.clear()
        _prefixes = prefixes
    return prefixes


def is_library(code: CodeType) -> bool:
    """Whether frames of this code object belong to a library, not the user's code."""
    filename = code.co_filename
    try:
        return _library_code[filename]
    except KeyError:
        pass
    prefixes = _prefixes if _prefixes is not None else _configure()
    # "<frozen importlib...>" and other pseudo-files belong to Python itself;
    # "<string>" and "<stdin>" are code the user ran.
    if filename.startswith("<"):
        library = filename.startswith("<frozen")
    else:
        library = os.path.abspath(filename).startswith(prefixes)
    if len(_library_code) > 50_000:  # code made at run time (exec) must not grow this forever
        _library_code.clear()
    _library_code[filename] = library
    return library


def capture(frame: FrameType | None) -> tuple[Stack | None, tuple[str, int] | None]:
    """The stack from the first user frame at or above ``frame``, and the template
    (name, line) being rendered if the ORM was reached from a Django template."""
    return capture_shared(frame, StackCache())


def capture_shared(
    frame: FrameType | None, interned: StackCache
) -> tuple[Stack | None, tuple[str, int] | None]:
    """``capture()``, sharing stacks: if ``interned`` (a trace's, keyed by the
    innermost frame's code identity and offset) holds one with the same frames, it
    is returned, matched frame by frame without building a tuple (a loop's
    statements share one); else the new stack is added to it, with its outer frames'
    code objects and offsets apart, ready to match.

    Frames are the same when their code objects are identical (code objects that
    differ only in their file name compare equal) and their offsets equal.

    The last stack is kept with its first frame: if that frame is the one reached
    again, at the same instruction, the stack is the same without matching it (a
    loop's statements, in the common case). The frame object is still running, so
    each of its callers is still suspended in the same call; a generator or
    coroutine frame is never kept, since it may be resumed from another caller."""
    template = None
    library = _library_code
    while frame is not None:
        code = frame.f_code
        lib = library.get(code.co_filename)
        if lib is None:
            lib = is_library(code)
        if not lib:
            break
        if code is _RENDER_ANNOTATED and template is None:
            template = _template_of(frame)
        frame = frame.f_back
    if frame is None:
        return None, template
    lasti = frame.f_lasti
    if frame is interned.frame and lasti == interned.lasti:
        return interned.stack, template
    depth = _depth
    key = (id(code), lasti)
    known = interned.get(key)
    if known is not None:
        for stack, codes, lastis in known:
            outer: Any = frame.f_back
            try:
                for outer_code, outer_lasti in zip(codes, lastis, strict=True):
                    if outer.f_code is not outer_code or outer.f_lasti != outer_lasti:
                        break
                    outer = outer.f_back
                else:
                    # All its frames match: the same stack if it is as deep as stacks
                    # go, or if this one ends where it ends.
                    if len(codes) == depth - 1 or outer is None:
                        if not code.co_flags & _SUSPENDABLE:
                            interned.frame, interned.lasti, interned.stack = frame, lasti, stack
                        return stack, template
            except AttributeError:  # outer is None: this stack is shorter
                pass
    first = frame
    items: list[Any] = []
    while frame is not None and depth:
        items.append(frame.f_code)
        items.append(frame.f_lasti)
        frame = frame.f_back
        depth -= 1
    stack = tuple(items)
    entry = (stack, stack[2::2], stack[3::2])
    if known is None:
        interned[key] = [entry]
    else:
        known.append(entry)
    if not code.co_flags & _SUSPENDABLE:
        interned.frame, interned.lasti, interned.stack = first, lasti, stack
    return stack, template


def _template_of(frame: FrameType) -> tuple[str, int] | None:
    try:
        node = frame.f_locals["self"]
        origin = node.origin
        name = getattr(origin, "template_name", None) or origin.name
        return str(name), int(node.token.lineno)
    except Exception:
        return None


@dataclass(frozen=True)
class Frame:
    """One resolved frame of a stack."""

    filename: str
    lineno: int | None
    function: str
    source: str
    library: bool

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno} in {self.function}"


def resolve(stack: Stack | None) -> list[Frame]:
    """Files, lines and source of a captured stack, innermost first."""
    if not stack:
        return []
    return [_frame(stack[i], stack[i + 1]) for i in range(0, len(stack), 2)]


def location(stack: Stack | None) -> Frame | None:
    """The first frame in the user's code."""
    return _frame(stack[0], stack[1]) if stack else None


def short_path(path: str) -> str:
    """``path`` as people read it: relative to the current directory (the project)
    when it is under it, else as it is. Also for ``"file:line"``. The recorded data
    and the export keep the whole path; this is for what is shown."""
    base = os.getcwd() + os.sep
    return path[len(base) :] if path.startswith(base) else path


def _frame(code: CodeType, lasti: int) -> Frame:
    # The file name is part of the key: equal code objects can come from two files.
    return _resolved(code, lasti, code.co_filename)


@lru_cache(maxsize=4096)
def _resolved(code: CodeType, lasti: int, filename: str) -> Frame:
    lineno = line_of(code, lasti)
    source = linecache.getline(code.co_filename, lineno).strip() if lineno else ""
    return Frame(code.co_filename, lineno, code.co_qualname, source, is_library(code))


def line_of(code: CodeType, lasti: int) -> int | None:
    """The source line of the instruction at byte offset ``lasti`` (a frame's f_lasti)."""
    line = None
    for start, end, lineno in code.co_lines():
        if start <= lasti < end:
            return lineno
        if start <= lasti:
            line = lineno
    return line if line is not None else code.co_firstlineno


def _reset(*, setting: str, **kwargs: Any) -> None:
    global _prefixes
    if setting == "TRACER":
        with _lock:
            _prefixes = None
            _library_code.clear()
        _resolved.cache_clear()


setting_changed.connect(_reset)

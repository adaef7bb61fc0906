"""Code locations: which frames are the user's, captured cheaply, resolved on demand."""

from __future__ import annotations

import copy
import gc
import importlib.util
import json
import os
import sys
import weakref
from pathlib import Path
from typing import Any

import pytest
from django.db.models.query import QuerySet
from django.test import override_settings

import tracer
from demo_app.models import Author, Book
from tracer import stacks
from tracer.trace import StackCache

HERE = __file__
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def lineno() -> int:
    return sys._getframe(1).f_lineno


def user_module(tmp_path: Path) -> Any:
    """A module outside the tests directory and every library path: user code."""
    path = tmp_path / "user_app.py"
    path.write_text("def run(callback):\n    return callback()\n")
    spec = importlib.util.spec_from_file_location("user_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# is_library --------------------------------------------------------------------------------


def test_django_tracer_and_stdlib_are_library():
    assert stacks.is_library(QuerySet._fetch_all.__code__) is True
    assert stacks.is_library(stacks.capture.__code__) is True
    assert stacks.is_library(json.JSONEncoder.encode.__code__) is True
    assert stacks.is_library(copy.deepcopy.__code__) is True


def test_test_code_is_not_library():
    assert stacks.is_library(test_test_code_is_not_library.__code__) is False
    assert stacks.is_library(lineno.__code__) is False


def test_pseudo_files():
    frozen = compile("frozen = 1", "<frozen importlib._bootstrap>", "exec")
    typed = compile("typed = 1", "<string>", "exec")
    assert stacks.is_library(frozen) is True
    assert stacks.is_library(typed) is False


def test_equal_code_objects_from_different_files():
    # Code objects compare equal (and hash alike) when only their co_filename differs:
    # the same small method at the same line of a library file and of a user file.
    import django

    source = "def get(self):\n    return self.value\n"
    library_file = os.path.join(os.path.dirname(django.__file__), "tracer_probe.py")
    user_file = os.path.join(os.path.dirname(TESTS_DIR), "user_probe", "models.py")
    library_code = compile(source, library_file, "exec").co_consts[0]
    user_code = compile(source, user_file, "exec").co_consts[0]
    assert library_code == user_code  # what makes a cache keyed by code objects wrong
    assert stacks.is_library(library_code) is True
    assert stacks.is_library(user_code) is False
    assert stacks.resolve((library_code, 0))[0].filename == library_file
    assert stacks.resolve((user_code, 0))[0].filename == user_file


def test_default_library_paths_cover_django_and_tracer():
    import django

    paths = stacks.default_library_paths()
    assert os.path.dirname(django.__file__) in paths
    assert os.path.dirname(os.path.abspath(stacks.__file__)) in paths
    assert TESTS_DIR not in paths


# capture ---------------------------------------------------------------------------------------


def test_capture_starts_at_the_first_user_frame():
    class Probe:
        def __deepcopy__(self, memo: Any) -> Any:
            # Called by copy.deepcopy (library): capture from there, outward.
            self.captured = stacks.capture(sys._getframe(1))
            return self

    probe = Probe()
    line = lineno() + 1
    copy.deepcopy(probe)

    stack, template = probe.captured
    assert template is None
    assert stack[0] is test_capture_starts_at_the_first_user_frame.__code__
    location = stacks.location(stack)
    assert location == stacks.Frame(
        HERE, line, "test_capture_starts_at_the_first_user_frame", "copy.deepcopy(probe)", False
    )
    assert str(location) == f"{HERE}:{line} in test_capture_starts_at_the_first_user_frame"


def test_capture_of_a_user_frame_starts_there():
    line = lineno() + 1
    stack, template = stacks.capture(sys._getframe())

    assert template is None
    assert len(stack) == 2 * 12  # STACK_DEPTH default: code and offset per frame
    assert stacks.resolve(stack)[0] == stacks.Frame(
        HERE,
        line,
        "test_capture_of_a_user_frame_starts_there",
        "stack, template = stacks.capture(sys._getframe())",
        False,
    )


def test_capture_of_only_library_frames_is_none():
    assert stacks.capture(None) == (None, None)


def shared(interned: StackCache) -> Any:
    return stacks.capture_shared(sys._getframe(), interned)


def test_capture_shared_shares_equal_stacks_and_keeps_code_objects_apart():
    source = "def run(callback, interned):\n    return callback(interned)\n"
    first: dict[str, Any] = {}
    twin: dict[str, Any] = {}
    exec(compile(source, "/app/a.py", "exec"), first)
    exec(compile(source, "/app/b.py", "exec"), twin)
    run, other = first["run"], twin["run"]
    assert run.__code__ == other.__code__ and run.__code__ is not other.__code__
    interned = StackCache()
    # One call site each: equal offsets in every frame; the two stacks differ only
    # in their second frame's code object (equal, not identical).
    got = [module(shared, interned) for module in (run, other, run, other)]
    (a, template), (b, _), (again, _), (b_again, _) = got
    assert template is None
    assert a == b and a is not b
    assert again is a and b_again is b
    assert len(a) == 2 * 12
    assert a[0] is shared.__code__ and a[2] is run.__code__ and b[2] is other.__code__
    # Keyed by the innermost frame: both stacks under one key.
    # Each with its outer frames apart: code objects, then offsets.
    assert list(interned.values()) == [[(a, a[2::2], a[3::2]), (b, b[2::2], b[3::2])]]
    # Offsets past 256 are distinct int objects each time a frame is read: equal is enough.
    assert any(type(item) is int and item > 256 for item in a[1::2])
    assert stacks.capture_shared(None, interned) == (None, None)


def test_capture_shared_of_a_shorter_or_longer_stack_is_another_stack():
    interned = StackCache()
    got = []
    for depth in (2, 2, 12, 12, 2):
        with override_settings(TRACER={"STACK_DEPTH": depth}):
            got.append(shared(interned)[0])
    two, two_again, twelve, twelve_again, two_last = got
    assert (len(two), len(twelve)) == (4, 24)
    assert two_again is two and twelve_again is twelve and two_last is two
    assert twelve[:4] == two
    assert list(interned.values()) == [
        [(two, two[2::2], two[3::2]), (twelve, twelve[2::2], twelve[3::2])]
    ]


def test_stack_depth_setting():
    with override_settings(TRACER={"STACK_DEPTH": 2}):
        stack, _ = stacks.capture(sys._getframe())
        frames = stacks.resolve(stack)
    assert len(stack) == 4
    assert len(frames) == 2
    assert frames[0].function == "test_stack_depth_setting"
    assert frames[0].filename == HERE
    assert frames[0].library is False
    # The caller of the test: pytest, a library.
    assert frames[1].library is True
    # Back to the default once the setting is gone.
    stack, _ = stacks.capture(sys._getframe())
    assert len(stack) == 24


def test_resolve():
    line = lineno() + 1
    stack, _ = stacks.capture(sys._getframe())

    frames = stacks.resolve(stack)
    assert len(frames) == 12
    assert frames[0] == stacks.Frame(
        filename=HERE,
        lineno=line,
        function="test_resolve",
        source="stack, _ = stacks.capture(sys._getframe())",
        library=False,
    )
    for frame in frames:
        assert isinstance(frame.filename, str)
        assert isinstance(frame.lineno, int) and frame.lineno >= 1
        assert isinstance(frame.function, str)
        assert isinstance(frame.source, str)
    assert stacks.resolve(None) == []
    assert stacks.resolve(()) == []
    assert stacks.location(None) is None


def test_line_of():
    def probe() -> tuple[int, int]:
        frame = sys._getframe()
        return frame.f_lasti, frame.f_lineno

    lasti, line = probe()
    assert stacks.line_of(probe.__code__, lasti) == line


# LIBRARY_PATHS ----------------------------------------------------------------------------------


def test_library_paths_move_the_location_outward(tmp_path):
    app = user_module(tmp_path)
    user_file = str(tmp_path / "user_app.py")

    def callback() -> Any:
        return stacks.capture(sys._getframe())

    stack, _ = app.run(callback)
    assert stacks.location(stack) == stacks.Frame(
        HERE,
        lineno() - 5,
        "test_library_paths_move_the_location_outward.<locals>.callback",
        "return stacks.capture(sys._getframe())",
        False,
    )

    paths = [*stacks.default_library_paths(), TESTS_DIR]
    with override_settings(TRACER={"LIBRARY_PATHS": paths}):
        stack, _ = app.run(callback)
        assert stacks.location(stack) == stacks.Frame(
            user_file, 2, "run", "return callback()", False
        )
        assert stacks.is_library(callback.__code__) is True
    # The setting's end restores the defaults.
    assert stacks.is_library(callback.__code__) is False


@pytest.mark.django_db
def test_library_paths_move_a_statement_location_outward(tmp_path):
    app = user_module(tmp_path)
    user_file = str(tmp_path / "user_app.py")
    paths = [*stacks.default_library_paths(), TESTS_DIR]

    with tracer.capture() as default:
        line = lineno() + 1
        app.run(lambda: list(Author.objects.all()))
    with override_settings(TRACER={"LIBRARY_PATHS": paths}):
        with tracer.capture() as moved:
            app.run(lambda: list(Author.objects.all()))

    assert default.to_dict()["operations"][0]["location"] == {
        "file": HERE,
        "line": line,
        "function": "test_library_paths_move_a_statement_location_outward.<locals>.<lambda>",
        "source": "app.run(lambda: list(Author.objects.all()))",
    }
    assert moved.to_dict()["operations"][0]["location"] == {
        "file": user_file,
        "line": 2,
        "function": "run",
        "source": "return callback()",
    }


# short_path --------------------------------------------------------------------------------


def test_short_path_is_relative_to_the_current_directory(tmp_path, monkeypatch):
    project = tmp_path / "shop"
    (project / "app").mkdir(parents=True)
    monkeypatch.chdir(project)
    assert stacks.short_path(f"{project}/app/views.py:12") == "app/views.py:12"
    assert stacks.short_path(f"{project}/app/views.py") == "app/views.py"
    # Outside it, and in a sibling whose name starts the same: as it is.
    assert stacks.short_path(f"{tmp_path}/shop2/views.py:3") == f"{tmp_path}/shop2/views.py:3"
    assert stacks.short_path("/usr/lib/python3/x.py:1") == "/usr/lib/python3/x.py:1"
    assert stacks.short_path("books/list.html:4") == "books/list.html:4"


def test_the_last_stack_is_kept_with_the_frame_it_started_at():
    interned = StackCache()
    frame = sys._getframe()
    got = [stacks.capture_shared(frame, interned)[0] for _ in range(2)]
    assert got[1] is got[0]
    assert interned.frame is frame and interned.stack is got[0]
    assert interned.lasti == got[0][1]  # the frame's offset, first in the stack
    # Another instruction of the same frame is another stack.
    other = stacks.capture_shared(frame, interned)[0]
    assert other is not got[0] and other[1] != got[0][1]
    assert interned.stack is other


def test_a_generator_resumed_from_another_caller_has_that_callers_stack():
    source = (
        "def steps(interned):\n"
        "    while True:\n"
        "        yield capture_shared(sys._getframe(), interned)[0]\n"
    )
    space: dict[str, Any] = {"capture_shared": stacks.capture_shared, "sys": sys}
    exec(compile(source, "/app/steps.py", "exec"), space)
    callers: dict[str, Any] = {}
    exec(compile("def a(g):\n    return next(g)\n", "/app/a.py", "exec"), callers)
    exec(compile("def b(g):\n    return next(g)\n", "/app/b.py", "exec"), callers)
    interned = StackCache()
    steps = space["steps"](interned)
    first, second = callers["a"](steps), callers["b"](steps)
    assert first[0] is second[0]  # the generator's frame, at the same instruction
    assert first[2] is callers["a"].__code__ and second[2] is callers["b"].__code__
    assert interned.frame is None  # a generator's frame is never kept


@pytest.mark.django_db
def test_a_finished_trace_holds_no_frame():
    class Big:
        pass

    def view() -> weakref.ref[Big]:
        big = Big()
        list(Book.objects.all())
        return weakref.ref(big)

    with tracer.capture() as trace:
        alive = view()
        assert trace._stacks.frame is not None  # view()'s frame, and its locals
        assert alive() is not None
    assert trace._stacks.frame is None and not trace._stacks
    gc.collect()
    assert alive() is None

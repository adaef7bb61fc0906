"""Test cases run in worker processes; each reports what its worker saw."""

import json
import os

from django.contrib.auth.models import Group
from django.db import connection, connections
from django.test import TestCase

import tracer
from tracer.backend.base import DatabaseWrapper


class Base:
    databases = {"default", "plain"}

    def test_traced_clone(self):
        Group.objects.create(name=type(self).__name__)
        with tracer.capture() as trace:
            names = list(Group.objects.values_list("name", flat=True))
        assert names == [type(self).__name__], names
        assert isinstance(connections["default"], DatabaseWrapper)
        report = {
            "pid": os.getpid(),
            "name": connection.settings_dict["NAME"],
            "plain_name": connections["plain"].settings_dict["NAME"],
            "statements": [str(s.sql) for s in trace.statements],
        }
        path = os.path.join(os.environ["PARALLEL_DIR"], f"{type(self).__name__}.json")
        with open(path, "w") as f:
            json.dump(report, f)


class A(Base, TestCase):
    pass


class B(Base, TestCase):
    pass


class C(Base, TestCase):
    pass


class D(Base, TestCase):
    pass

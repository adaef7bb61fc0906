"""The anatomy's sections: what each row says is what Django does on that engine."""

from __future__ import annotations

import pytest
from django.db import connections

from demo_app.models import Author
from tracer.anatomy import load, sections
from tracer.anatomy.sections import COLUMN, LOOKUPS

pytestmark = pytest.mark.django_db(databases="__all__")


def test_each_lookup_is_written_as_django_compiles_it(alias, vendor):
    connection = connections[alias]
    cells = {row.name: row.cells[0] for row in sections.lookups([load(alias)])}
    ops = connection.ops
    column = f"{ops.quote_name('demo_app_author')}.{ops.quote_name(COLUMN)}"

    for lookup, value in LOOKUPS:
        cell = cells[lookup]
        if cell.unknown is not None:
            # MySQL's regex lookups are not operators: regex_lookup() writes them,
            # and it depends on the server.
            assert (vendor, lookup) in (("mysql", "regex"), ("mysql", "iregex"))
            continue
        query = Author.objects.using(alias).filter(**{f"{COLUMN}__{lookup}": value}).query
        sql, params = query.get_compiler(alias).as_sql()
        operator, written, param = cell.text, *cell.more
        assert written.endswith(operator)
        assert f"WHERE {written.replace(ops.quote_name(COLUMN), column)}" in sql, lookup
        assert param == f"param: {params[-1]!r}", lookup


def test_the_column_type_of_each_field_is_the_schema_editors(alias, vendor):
    connection = connections[alias]
    rows = {row.name: row.cells[0] for row in sections.data_types([load(alias, connect=True)])}

    name = Author._meta.get_field("name")
    assert rows["CharField"].text == "varchar(%(max_length)s)"
    assert rows["CharField"].text % {"max_length": name.max_length} == name.db_type(connection)
    assert rows["BigAutoField"].text == Author._meta.pk.db_type(connection)

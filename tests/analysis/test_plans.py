"""Plan trees from EXPLAIN output samples (see plans/README.md for where each came
from); tests/analysis/test_explain.py gets its plans from the real engines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracer.analysis.plans import (
    AUTOMATIC_INDEX,
    FILESORT,
    FULL_SCAN,
    INDEX_NOT_USED,
    NO_INDEX,
    SORT_ON_DISK,
    TEMP_BTREE,
    TEMPORARY_TABLE,
    Plan,
    PlanNode,
    load_document,
    mysql_plan,
    postgresql_plan,
    sqlite_plan,
)

SAMPLES = Path(__file__).parent / "plans"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def tree(node: PlanNode) -> Any:
    return (node.label, node.warnings, [tree(child) for child in node.children])


# SQLite (rows captured from SQLite 3.40.1) ---------------------------------------------


def test_sqlite_automatic_index_means_no_index_on_the_join_column():
    # SELECT * FROM book b JOIN author a ON a.name = b.title
    rows = [(3, 0, 0, "SCAN b"), (15, 0, 0, "SEARCH a USING AUTOMATIC COVERING INDEX (name=?)")]
    assert tree(sqlite_plan(rows)) == (
        "QUERY PLAN",
        [],
        [
            ("SCAN b", [FULL_SCAN], []),
            ("SEARCH a USING AUTOMATIC COVERING INDEX (name=?)", [AUTOMATIC_INDEX], []),
        ],
    )


def test_sqlite_scanning_a_subquery_or_cte_reads_no_table():
    # SELECT * FROM (SELECT author_id, COUNT(*) n FROM book GROUP BY author_id
    #   ORDER BY n DESC LIMIT 5) d JOIN author a ON a.id = d.author_id
    rows = [
        (3, 0, 0, "MATERIALIZE d"),
        (12, 3, 0, "SCAN book USING COVERING INDEX book_author"),
        (48, 3, 0, "USE TEMP B-TREE FOR ORDER BY"),
        (58, 0, 0, "SCAN d"),
        (60, 0, 0, "SEARCH a USING INTEGER PRIMARY KEY (rowid=?)"),
    ]
    root = sqlite_plan(rows)
    assert tree(root) == (
        "QUERY PLAN",
        [],
        [
            (
                "MATERIALIZE d",
                [],
                [
                    ("SCAN book USING COVERING INDEX book_author", [], []),
                    ("USE TEMP B-TREE FOR ORDER BY", [TEMP_BTREE], []),
                ],
            ),
            ("SCAN d", [], []),
            ("SEARCH a USING INTEGER PRIMARY KEY (rowid=?)", [], []),
        ],
    )
    assert root.children[1].detail == {"id": 58, "parent": 0, "notused": 0, "detail": "SCAN d"}


def test_sqlite_compound_query_and_constant_row():
    # SELECT title FROM book UNION SELECT name FROM author
    rows = [
        (1, 0, 0, "COMPOUND QUERY"),
        (2, 1, 0, "LEFT-MOST SUBQUERY"),
        (5, 2, 0, "SCAN book"),
        (11, 1, 0, "UNION USING TEMP B-TREE"),
        (13, 11, 0, "SCAN author"),
    ]
    assert tree(sqlite_plan(rows)) == (
        "QUERY PLAN",
        [],
        [
            (
                "COMPOUND QUERY",
                [],
                [
                    ("LEFT-MOST SUBQUERY", [], [("SCAN book", [FULL_SCAN], [])]),
                    ("UNION USING TEMP B-TREE", [TEMP_BTREE], [("SCAN author", [FULL_SCAN], [])]),
                ],
            )
        ],
    )
    # SELECT 1
    assert tree(sqlite_plan([(1, 0, 0, "SCAN CONSTANT ROW")])) == (
        "QUERY PLAN",
        [],
        [("SCAN CONSTANT ROW", [], [])],
    )


def test_sqlite_before_3_36_named_tables_scan_table():
    rows = [
        (2, 0, 0, "SCAN TABLE book"),
        (4, 0, 0, "SEARCH TABLE author USING INTEGER PRIMARY KEY"),
    ]
    assert [node.warnings for node in sqlite_plan(rows).children] == [[FULL_SCAN], []]


# PostgreSQL (captured from PostgreSQL 15) -----------------------------------------------


def test_postgresql_join_labels_follow_explain_text():
    root = postgresql_plan(json.loads(sample("postgresql_right_join.json")))
    assert tree(root) == (
        "Hash Right Join",
        [],
        [
            ("Seq Scan on book b", [FULL_SCAN], []),
            ("Hash", [], [("Seq Scan on author a", [FULL_SCAN], [])]),
        ],
    )
    assert root.detail["Hash Cond"] == "(b.author_id = a.id)"
    assert "Plans" not in root.detail


def test_postgresql_bitmap_scan_from_text():
    root = postgresql_plan(sample("postgresql_bitmap.json"))
    assert tree(root) == (
        "Bitmap Heap Scan on book",
        [],
        [("Bitmap Index Scan on book_author", [], [])],
    )


def test_postgresql_analyzed_cte_and_hash_aggregate():
    root = postgresql_plan(sample("postgresql_cte_analyzed.json"))
    assert tree(root) == (
        "CTE Scan on c",
        [],
        [("HashAggregate", [], [("Seq Scan on book", [FULL_SCAN], [])])],
    )
    assert (root.detail["Actual Rows"], root.detail["Actual Loops"]) == (1000, 1)


def test_postgresql_sort_on_disk_only_when_measured():
    def sort(**fields: Any) -> PlanNode:
        return postgresql_plan([{"Plan": {"Node Type": "Sort", "Sort Key": ["title"], **fields}}])

    assert sort().warnings == []
    assert sort(**{"Sort Method": "quicksort", "Sort Space Type": "Memory"}).warnings == []
    assert sort(**{"Sort Method": "external merge", "Sort Space Type": "Disk"}).warnings == [
        SORT_ON_DISK
    ]
    assert sort(**{"Sort Method": "external sort", "Sort Space Type": "Disk"}).warnings == [
        SORT_ON_DISK
    ]


# MariaDB (captured from MariaDB 10.11) --------------------------------------------------


def test_mariadb_union():
    root = mysql_plan(sample("mariadb_union.json"))
    assert tree(root) == (
        "query block",
        [],
        [
            (
                "UNION result <union1,2>",
                [],
                [
                    ("query block #1", [], [("index on `a` using x", [], [])]),
                    ("query block #2", [], [("index on `b` using PRIMARY", [], [])]),
                ],
            )
        ],
    )
    assert root.children[0].children[1].detail == {"select_id": 2, "operation": "UNION"}


def test_mariadb_correlated_subquery_under_its_expression_cache():
    assert tree(mysql_plan(sample("mariadb_correlated_subquery.json"))) == (
        "query block #1",
        [],
        [
            ("ALL on `a`", [FULL_SCAN, NO_INDEX], []),
            (
                "expression cache",
                [],
                [("query block #2", [], [("ALL on `b`", [FULL_SCAN, NO_INDEX], [])])],
            ),
        ],
    )


def test_mariadb_window_function_sorts():
    assert tree(mysql_plan(sample("mariadb_window.json"))) == (
        "query block #1",
        [],
        [
            (
                "window functions",
                [],
                [
                    ("filesort on a.y", [FILESORT], []),
                    (
                        "temporary table",
                        [TEMPORARY_TABLE],
                        [("ALL on `a`", [FULL_SCAN, NO_INDEX], [])],
                    ),
                ],
            )
        ],
    )


def test_mariadb_block_nested_loop_join_and_unused_index():
    root = mysql_plan(sample("mariadb_join_order_by.json"))
    assert tree(root) == (
        "query block #1",
        [],
        [
            (
                "filesort on b.z",
                [FILESORT],
                [
                    (
                        "temporary table",
                        [TEMPORARY_TABLE],
                        [
                            ("ALL on `b`", [FULL_SCAN, NO_INDEX], []),
                            (
                                "block nested loop join (BNL)",
                                [],
                                [("ALL on `a`", [FULL_SCAN, INDEX_NOT_USED], [])],
                            ),
                        ],
                    )
                ],
            )
        ],
    )
    join = root.children[0].children[0].children[1]
    assert join.detail == {
        "buffer_type": "flat",
        "buffer_size": "173",
        "join_type": "BNL",
        "attached_condition": "a.`id` = b.a_id",
    }


def test_mariadb_materialized_derived_table():
    assert tree(mysql_plan(sample("mariadb_derived_group_by.json"))) == (
        "query block #1",
        [],
        [
            ("ALL on `a`", [FULL_SCAN, INDEX_NOT_USED], []),
            (
                "ref on `<derived2>` using key0",
                [],
                [
                    (
                        "materialized",
                        [],
                        [
                            (
                                "query block #2",
                                [],
                                [
                                    (
                                        "filesort on b.a_id",
                                        [FILESORT],
                                        [
                                            (
                                                "temporary table",
                                                [TEMPORARY_TABLE],
                                                [("ALL on `b`", [FULL_SCAN, NO_INDEX], [])],
                                            )
                                        ],
                                    )
                                ],
                            )
                        ],
                    )
                ],
            ),
        ],
    )


# MySQL 8 (hand-written in its shape) -----------------------------------------------------


def test_mysql8_ordering_and_grouping_operations_with_end_markers():
    text = sample("mysql8_group_order.json")
    assert "} /* cost_info */," in text

    root = mysql_plan(text)

    assert tree(root) == (
        "query block #1",
        [],
        [
            (
                "ORDER BY",
                [FILESORT],
                [
                    (
                        "GROUP BY",
                        [TEMPORARY_TABLE],
                        [("ALL on `testapp_book`", [FULL_SCAN, NO_INDEX], [])],
                    )
                ],
            )
        ],
    )
    assert root.detail == {"select_id": 1, "cost_info": {"query_cost": "0.55"}}
    table = root.children[0].children[0].children[0].detail
    assert table["used_columns"] == ["id", "author_id", "price"]
    assert table["cost_info"]["prefix_cost"] == "0.55"


def test_mysql8_nested_loop_and_dependent_subquery():
    root = mysql_plan(json.loads(sample("mysql8_join_subquery.json")))
    key = "testapp_book_author_id_b4b7b7bf_fk_testapp_author_id"
    assert tree(root) == (
        "query block #1",
        [],
        [
            ("ALL on `a`", [FULL_SCAN, INDEX_NOT_USED], []),
            (f"ref on `b` using {key}", [], []),
            ("query block #2", [], [(f"ref on `b2` using {key}", [], [])]),
        ],
    )
    subquery = root.children[2].detail
    assert (subquery["dependent"], subquery["cacheable"], subquery["select_id"]) == (
        True,
        False,
        2,
    )


def test_mysql8_union_through_a_temporary_table():
    assert tree(mysql_plan(sample("mysql8_union.json"))) == (
        "query block",
        [],
        [
            (
                "UNION result <union1,2>",
                [TEMPORARY_TABLE],
                [
                    (
                        "query block #1",
                        [],
                        [("ALL on `testapp_author`", [FULL_SCAN, NO_INDEX], [])],
                    ),
                    ("query block #2: no matching row in const table", [], []),
                ],
            )
        ],
    )


# Documents and the Plan ---------------------------------------------------------------


def test_load_document():
    assert load_document(b'{"a": [1]}') == {"a": [1]}
    assert load_document('{"a": {"b": 1} /* a */}') == {"a": {"b": 1}}
    assert load_document([{"Plan": {}}]) == [{"Plan": {}}]


def test_plan_warnings_walk_and_to_dict():
    root = mysql_plan(sample("mariadb_join_order_by.json"))
    plan = Plan("mysql", "SELECT ...", "EXPLAIN FORMAT=JSON", False, root, {"raw": True})

    assert [node.label for node in root.walk()] == [
        "query block #1",
        "filesort on b.z",
        "temporary table",
        "ALL on `b`",
        "block nested loop join (BNL)",
        "ALL on `a`",
    ]
    assert plan.warnings == [
        ("filesort on b.z", FILESORT),
        ("temporary table", TEMPORARY_TABLE),
        ("ALL on `b`", FULL_SCAN),
        ("ALL on `b`", NO_INDEX),
        ("ALL on `a`", FULL_SCAN),
        ("ALL on `a`", INDEX_NOT_USED),
    ]
    data = plan.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["warnings"][0] == ["filesort on b.z", FILESORT]
    assert data["root"]["children"][0]["label"] == "filesort on b.z"
    assert data["raw"] == {"raw": True}

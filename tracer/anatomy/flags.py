"""The feature flags the anatomy page shows, by topic, each with what it changes in
the SQL Django writes (see django/db/backends/base/features.py for every flag)."""

from __future__ import annotations

#: The feature flags shown, by topic, each with what it changes.
FLAGS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Ordering and NULLs",
        (
            (
                "nulls_order_largest",
                "NULL sorts as larger than any value: last in ascending order, first in "
                "descending.",
            ),
            ("order_by_nulls_first", "In ascending order, NULLs come first by default."),
            (
                "supports_order_by_nulls_modifier",
                "ORDER BY takes NULLS FIRST / NULLS LAST (asc(nulls_last=True)); else "
                "Django sorts on an extra IS NULL key.",
            ),
        ),
    ),
    (
        "Locking: SELECT ... FOR UPDATE",
        (
            (
                "has_select_for_update",
                "select_for_update() writes SELECT ... FOR UPDATE; else it is ignored.",
            ),
            (
                "has_select_for_update_nowait",
                "select_for_update(nowait=True): fail at once rather than wait for a lock.",
            ),
            (
                "has_select_for_update_skip_locked",
                "select_for_update(skip_locked=True): leave locked rows out.",
            ),
            (
                "has_select_for_update_of",
                "select_for_update(of=(...)): lock the rows of some of the joined tables only.",
            ),
            (
                "has_select_for_no_key_update",
                "select_for_update(no_key=True): FOR NO KEY UPDATE, a weaker lock.",
            ),
            (
                "supports_select_for_update_with_limit",
                "FOR UPDATE can be combined with a slice (LIMIT/OFFSET).",
            ),
        ),
    ),
    (
        "Inserts: RETURNING, batches, conflicts",
        (
            (
                "can_return_columns_from_insert",
                "INSERT ... RETURNING gives the new primary key in the same statement; "
                "else the driver is asked for the last insert id.",
            ),
            (
                "can_return_rows_from_bulk_insert",
                "bulk_create() sets the primary keys of the objects it inserts.",
            ),
            ("has_bulk_insert", "bulk_create() writes one INSERT with many rows of VALUES."),
            (
                "supports_ignore_conflicts",
                "bulk_create(ignore_conflicts=True): ON CONFLICT DO NOTHING, INSERT IGNORE.",
            ),
            (
                "supports_update_conflicts",
                "bulk_create(update_conflicts=True): an upsert.",
            ),
            (
                "supports_update_conflicts_with_target",
                "The upsert names its conflict columns (unique_fields=...).",
            ),
            (
                "max_query_params",
                "The most params one statement can carry (None: no limit): bulk "
                "operations are batched below it.",
            ),
        ),
    ),
    (
        "Transactions and migrations",
        (
            ("uses_savepoints", "A nested atomic() block is a SAVEPOINT."),
            (
                "can_release_savepoints",
                "A nested block that succeeds sends RELEASE SAVEPOINT.",
            ),
            (
                "can_rollback_ddl",
                "Schema changes are transactional: a migration that fails is rolled back whole.",
            ),
            (
                "can_defer_constraint_checks",
                "Foreign keys are checked at COMMIT, not at each statement.",
            ),
            ("supports_transactions", "Transactions are supported at all."),
        ),
    ),
    (
        "Types",
        (
            ("has_native_uuid_field", "UUIDField is a native uuid column; else char(32)."),
            (
                "has_native_duration_field",
                "DurationField is a native interval; else a bigint of microseconds.",
            ),
            ("has_native_json_field", "JSONField is a native JSON type; else text."),
            ("supports_json_field", "JSONField can be used at all."),
            (
                "supports_timezones",
                "A datetime column takes an aware datetime; else Django makes it naive "
                "(in the connection's time zone) before sending it.",
            ),
            (
                "has_zoneinfo_database",
                "The database knows time zone names, for Trunc*/Extract with a tzinfo.",
            ),
        ),
    ),
    (
        "Queries",
        (
            ("can_distinct_on_fields", "distinct('field'): DISTINCT ON (...)."),
            ("supports_over_clause", "Window expressions: ... OVER (...)."),
            (
                "supports_aggregate_filter_clause",
                "Count('x', filter=Q(...)) is FILTER (WHERE ...); else a CASE WHEN.",
            ),
            ("supports_select_intersection", "intersection(): INTERSECT."),
            ("supports_select_difference", "difference(): EXCEPT."),
            (
                "supports_slicing_ordering_in_compound",
                "Each query of a union() may have its own ORDER BY and LIMIT.",
            ),
            (
                "allows_group_by_selected_pks",
                "GROUP BY a table's primary key stands for all of its columns.",
            ),
            (
                "greatest_least_ignores_nulls",
                "Greatest() and Least() skip NULLs; else one NULL makes the result NULL.",
            ),
            (
                "requires_casted_case_in_updates",
                "bulk_update() casts its CASE WHEN to the column's type.",
            ),
            (
                "interprets_empty_strings_as_nulls",
                "An empty string is stored as NULL (Oracle).",
            ),
            (
                "can_use_chunked_reads",
                "iterator() reads rows in chunks as they are needed.",
            ),
            ("supports_explaining_query_execution", "QuerySet.explain() works."),
        ),
    ),
    (
        "Constraints and indexes",
        (
            ("supports_partial_indexes", "Index(condition=Q(...)): CREATE INDEX ... WHERE."),
            ("supports_covering_indexes", "Index(include=[...]): covering indexes."),
            ("supports_expression_indexes", "Index(Lower('name')): indexes on expressions."),
            (
                "supports_deferrable_unique_constraints",
                "UniqueConstraint(deferrable=...): checked at COMMIT.",
            ),
            ("supports_table_check_constraints", "CheckConstraint in Meta.constraints."),
            ("supports_comments", "db_comment and db_table_comment are written to the schema."),
            ("supports_stored_generated_columns", "GeneratedField(db_persist=True)."),
            ("supports_virtual_generated_columns", "GeneratedField(db_persist=False)."),
        ),
    ),
)

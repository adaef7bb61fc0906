"""Every pattern the demo shows, in one place: the index lists them, the URLs come
from them, each page reads its texts here, and tests/test_demo.py checks that every
page runs the statements said here, on SQLite, PostgreSQL and MariaDB.

A pattern has a bad version and, where there is one, a fixed version (the async view
is only an example). Each version has its view, what its page is about, what the
tracer should show for it, and how many statements its pattern runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from demo_app.views import (
    async_view,
    bulk_writes,
    count_per_row,
    duplicates,
    get_or_create,
    hydration,
    loop_n_plus_one,
    prefetch_filtered,
    raw_sql,
    slow_aggregate,
    template_n_plus_one,
)


@dataclass(frozen=True)
class Version:
    #: "bad", "fixed" or "example" (a pattern with nothing to fix).
    kind: str
    view: Callable[..., Any]
    #: The page's heading, and what its code does, in a sentence or two.
    title: str
    lesson: str
    #: What the tracer should show for this page: the statements, the findings.
    shows: str
    #: How many statements the pattern runs: the same on every engine.
    statements: int
    #: The URL path and name; by default patterns/<slug>/<kind>/ and "<slug>-<kind>".
    path: str = ""
    name: str = ""
    #: More code the page shows before the view (a helper it calls).
    code: tuple[Callable[..., Any], ...] = ()
    #: A template the page shows after the view (where the pattern is).
    template: str = ""


@dataclass(frozen=True)
class Pattern:
    slug: str
    title: str
    #: What goes wrong and why, for the index and the bad page.
    problem: str
    versions: tuple[Version, ...] = field(default_factory=tuple)

    def path(self, version: Version) -> str:
        return version.path or f"patterns/{self.slug}/{version.kind}/"

    def name(self, version: Version) -> str:
        return version.name or f"{self.slug}-{version.kind}"


PATTERNS: list[Pattern] = [
    Pattern(
        "template-n-plus-one",
        "N+1 in a template",
        "The view hands the template a QuerySet of 50 books; the template prints "
        "{{ book.author.name }} on each row. The books come in one query, but each "
        "book's author is loaded when the template first reads it: one query per row, "
        "51 in all. Nothing in the view looks wrong: the queries happen in the template.",
        (
            Version(
                "bad",
                template_n_plus_one.bad,
                "Books, N+1",
                "50 books; each book.author in the template runs its own query: 51 statements.",
                "51 statements: 1 for the books, then 50 triggered by 'related Book.author' "
                "at demo_app/book_list.html line 5. One N+1 finding, Book.author, with the "
                "fix as code: .select_related('author'). The 50 books have 30 authors: 16 of "
                "them are loaded more than once, and 20 of the loads repeat one already run "
                "(an author loaded again for another of their books).",
                51,
                path="books/n-plus-one/",
                name="books_n_plus_one",
                template="demo_app/book_list.html",
            ),
            Version(
                "fixed",
                template_n_plus_one.fixed,
                "Books, select_related",
                'The same page with select_related("author"): 1 statement.',
                "1 statement: the books with their authors, joined in (INNER JOIN "
                "demo_app_author). The template reads the authors from the rows already "
                "fetched. No findings.",
                1,
                path="books/select-related/",
                name="books_select_related",
                template="demo_app/book_list.html",
            ),
        ),
    ),
    Pattern(
        "loop-n-plus-one",
        "N+1 in a view loop",
        "The view loops over 30 books and asks each for its tags (a many-to-many "
        "relation). Every book.tags.all() is a new query: 31 in all. This time the "
        "tracer points at a line of Python, in the view.",
        (
            Version(
                "bad",
                loop_n_plus_one.bad,
                "Tags of each book, one query per book",
                "30 books; book.tags.all() in the loop runs a query for each.",
                "31 statements: the books, then 30 of 'iteration' on Book.tags at the "
                "view's line. One N+1 finding, Book.tags, whose fix is "
                ".prefetch_related('tags').",
                31,
            ),
            Version(
                "fixed",
                loop_n_plus_one.fixed,
                "Tags of each book, prefetched",
                "The tracer's fix, as it wrote it: .prefetch_related('tags'). The tags of "
                "all 30 books come in one more query; book.tags.all() reads them from "
                "memory.",
                "2 statements: the books, and the prefetch of their tags (WHERE ... IN with "
                "the 30 book ids). No findings.",
                2,
            ),
        ),
    ),
    Pattern(
        "count-per-row",
        ".count() per row vs annotate()",
        "The view shows 20 books with how many 4- and 5-star reviews each has, and "
        "counts them with .count() on each row: a SELECT COUNT(*) per book.",
        (
            Version(
                "bad",
                count_per_row.bad,
                "Good reviews, counted one book at a time",
                "book.reviews.filter(rating__gte=4).count() in the loop: 20 COUNT queries.",
                "21 statements: the books, then 20 of 'count' on Book.reviews. One N+1 "
                "finding whose fix is an annotation: "
                ".annotate(reviews_count=Count('reviews', filter=Q(reviews__rating__gte=4))).",
                21,
            ),
            Version(
                "fixed",
                count_per_row.fixed,
                "Good reviews, counted by annotate()",
                "The tracer's fix: annotate() with a filtered Count. One query joins the "
                "reviews, groups by book and counts.",
                "1 statement with LEFT OUTER JOIN demo_app_review, COUNT(...) and GROUP BY. "
                "No findings.",
                1,
            ),
        ),
    ),
    Pattern(
        "prefetch-filtered",
        "Prefetch() with a filtered queryset",
        "Someone added prefetch_related('reviews') to fix an N+1, but the loop wants only "
        "the good reviews and calls book.reviews.filter(rating__gte=4). A filter is a "
        "new query: the prefetch is never read, and the N+1 is still there.",
        (
            Version(
                "bad",
                prefetch_filtered.bad,
                "Good reviews, past a prefetch",
                "prefetch_related('reviews') loads all 100 reviews of the 20 books; "
                "book.reviews.filter(...) then queries again for each book.",
                "22 statements: the books, the prefetch nobody reads, then 20 filtered "
                "queries. Two findings: an N+1 on Book.reviews (fix: a Prefetch() with the "
                "filtered queryset) and an unused prefetch_related('reviews').",
                22,
            ),
            Version(
                "fixed",
                prefetch_filtered.fixed,
                "Good reviews, prefetched with Prefetch()",
                "Prefetch('reviews', queryset=Review.objects.filter(rating__gte=4), "
                "to_attr='good_reviews'): the prefetch query carries the filter, and each "
                "book gets a plain list.",
                "2 statements: the books, and the reviews WHERE book_id IN (...) AND "
                "rating >= 4. No findings.",
                2,
            ),
        ),
    ),
    Pattern(
        "duplicates",
        "Duplicate queries",
        "A helper, average_price(), is called on every row of a loop. It runs the same "
        "SQL with the same params each time, and gets the same answer each time.",
        (
            Version(
                "bad",
                duplicates.bad,
                "The average price, asked for on every row",
                "average_price() in the loop: 20 identical aggregate queries.",
                "21 statements: the books, then the same SELECT AVG(price) 20 times. A "
                "duplicates finding: one statement run 20 times, at the helper's line. "
                "Not an N+1: no row's relation is being loaded.",
                21,
                code=(duplicates.average_price,),
            ),
            Version(
                "fixed",
                duplicates.fixed,
                "The average price, asked for once",
                "average_price() once, before the loop.",
                "2 statements: the average, and the books. No findings.",
                2,
                code=(duplicates.average_price,),
            ),
        ),
    ),
    Pattern(
        "hydration",
        "5,000 rows: model instances vs values_list()",
        "Averaging the ratings of all 5,000 reviews per publisher, in Python. One query "
        "either way, yet the time is not in the database: building a Review, a Book and "
        "a Publisher instance for every row (hydration) costs far more than fetching "
        "the rows.",
        (
            Version(
                "bad",
                hydration.bad,
                "5,000 reviews as model instances",
                "Review.objects.select_related('book__publisher'): 15,000 instances, to read "
                "two values of each row.",
                "1 statement, 5,000 rows. Its Hydrate ms (building the instances) is many "
                "times its Execute ms, and the ORM's share of the time bar dwarfs the "
                "database's; the tracer app's statement view shows the split. No N+1, no "
                "duplicates: nothing here is a mistake the tracer can name, only a cost (on "
                "a slow or busy machine, fetching 5,000 wide rows can pass SLOW_MS too).",
                1,
            ),
            Version(
                "fixed",
                hydration.fixed,
                "5,000 reviews as tuples",
                "Review.objects.values_list('book__publisher__name', 'rating'): tuples of "
                "the two values, no instances. (Better still: let the database average, "
                "with values('book__publisher__name').annotate(Avg('rating')).)",
                "1 statement, 5,000 rows, a fraction of a millisecond of hydration. No findings.",
                1,
            ),
        ),
    ),
    Pattern(
        "slow-aggregate",
        "A slow aggregate",
        "Ranking Publisher 1's 100 books among all 1,000 by average rating, with a "
        "correlated subquery: for each book, count the books whose average is higher. "
        "The database averages every book's reviews again for each of the 100 books: "
        "hundreds of thousands of small aggregates in one statement.",
        (
            Version(
                "bad",
                slow_aggregate.bad,
                "A rank by correlated subqueries",
                "Subquery() inside Subquery(): the average of each book, compared with the "
                "average of every other book.",
                "1 statement, of a few hundred milliseconds: a slow finding (over "
                "TRACER['SLOW_MS'], 100 ms by default). EXPLAIN in the tracer app shows "
                "the subqueries run for each row.",
                1,
            ),
            Version(
                "fixed",
                slow_aggregate.fixed,
                "A rank by a window function",
                "One GROUP BY over the reviews joined to the books, and RANK() OVER "
                "(ORDER BY the average): every book ranked in one pass; the page keeps "
                "Publisher 1's rows.",
                "1 statement of a few milliseconds, with RANK() OVER and GROUP BY. The same "
                "ranks as the bad page. No findings.",
                1,
            ),
        ),
    ),
    Pattern(
        "raw-sql",
        "Raw SQL",
        "Raw SQL goes straight to the cursor: the tracer records it at the backend stage "
        "only (no QuerySet, no compiler), where the view ran it. Here a value is "
        "formatted into the SQL text: harmless with a constant, an injection once it "
        "comes from a request.",
        (
            Version(
                "bad",
                raw_sql.bad,
                "Raw SQL with a value in its text",
                "cursor.execute(f\"... LIKE '%{WORD}%' ...\"): the value is part of the SQL.",
                "1 statement of kind execute, with no ORM stages. An injection-risk "
                "finding: the literal '%River%' in the SQL, and the same call with params "
                "as the fix.",
                1,
            ),
            Version(
                "fixed",
                raw_sql.fixed,
                "Raw SQL with params",
                "cursor.execute('... LIKE %s ...', ['%River%']): the driver sends the value "
                "apart from the SQL.",
                "1 statement; its params column shows ['%River%']. No findings.",
                1,
            ),
        ),
    ),
    Pattern(
        "bulk-writes",
        "Bulk writes in a transaction",
        "Saving 100 new reviews one by one: in autocommit each save() is an INSERT and "
        "a commit of its own. The page deletes the reviews it wrote afterwards, outside "
        "the pattern's trace (the request's trace in the tracer app shows the DELETE), "
        "so visiting it again does not grow the database.",
        (
            Version(
                "bad",
                bulk_writes.bad,
                "100 reviews, saved one by one",
                "Review(...).save() in a loop: 100 INSERTs, each committed on its own.",
                "101 statements: the book, then 100 INSERTs. No findings: each INSERT has "
                "other params, so none is a duplicate; the count is the cost (where the "
                "disk is slow to sync, an INSERT committed on its own can pass SLOW_MS "
                "too).",
                101,
            ),
            Version(
                "fixed",
                bulk_writes.fixed,
                "100 reviews, bulk_create() in a transaction",
                "Review.objects.bulk_create(...) inside transaction.atomic(): one INSERT "
                "with 100 rows, one commit.",
                "4 statements: the book, BEGIN, one INSERT of 100 rows, COMMIT. No findings.",
                4,
            ),
        ),
    ),
    Pattern(
        "get-or-create",
        "get_or_create(), race-safe",
        "Check, then create: between a request's check and its INSERT another request "
        "can make the same row, and two rows (or, with a unique constraint, an "
        "IntegrityError) follow. The page plays two requests, A and B, interleaved. It "
        "runs inside a transaction that it rolls back, so it writes nothing for good.",
        (
            Version(
                "bad",
                get_or_create.bad,
                "Check, then create",
                "A and B both check with .exists(), find nothing, and both create: B's "
                "INSERT breaks the unique name.",
                "6 statements: BEGIN, two SELECTs (the checks), two INSERTs, the second "
                "marked with its IntegrityError, and ROLLBACK. Two duplicates findings: A "
                "and B run the same SELECT and the same INSERT (played in one trace here; "
                "real requests would each have their own).",
                6,
            ),
            Version(
                "fixed",
                get_or_create.fixed,
                "get_or_create()",
                "Tag.objects.get_or_create(name=...): a SELECT, then the INSERT in a "
                "SAVEPOINT. Had B's row come between the two, the INSERT would fail, roll "
                "back to the savepoint, and the SELECT again would return B's row. Here B "
                "comes second and its SELECT finds A's tag.",
                "7 statements: BEGIN, A's SELECT, SAVEPOINT, INSERT, RELEASE SAVEPOINT, B's "
                "SELECT, ROLLBACK. One duplicates finding: A's and B's SELECT, the same "
                "statement (again, two requests in one trace).",
                7,
            ),
        ),
    ),
    Pattern(
        "async-view",
        "An async view",
        "An async def view cannot touch the ORM synchronously; it awaits the async "
        "methods (aget, acount, async for), which run the queries in a worker thread. "
        "The tracer records each one with the line of the view that awaited it, as it "
        "does for a sync view.",
        (
            Version(
                "example",
                async_view.author,
                "An author, the async way",
                "await Author.objects.aget(...), await author.books.acount(), then async "
                "for over the books.",
                "3 statements, triggered by 'aget', 'acount' and 'async for', each at the "
                "line of author() that awaited it. No findings.",
                3,
                path="patterns/async-view/",
            ),
        ),
    ),
]


def version_of(url_name: str) -> tuple[Pattern, Version]:
    """The pattern and version whose URL is named ``url_name``."""
    for pattern in PATTERNS:
        for version in pattern.versions:
            if pattern.name(version) == url_name:
                return pattern, version
    raise LookupError(f"No pattern page is named {url_name!r}.")


def links(pattern: Pattern) -> list[tuple[Version, str]]:
    """Each version of ``pattern`` with its URL."""
    return [(version, reverse(pattern.name(version))) for version in pattern.versions]

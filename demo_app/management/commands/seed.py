"""Fill the demo bookstore with deterministic data. Running it again changes nothing."""

from __future__ import annotations

import datetime
import random
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from demo_app.models import Author, Book, Publisher, Review, Store, Tag

AUTHORS, PUBLISHERS, BOOKS, REVIEWS_PER_BOOK, STORES = 50, 10, 1000, 5, 5
TAGS = ["fiction", "history", "science", "poetry", "travel", "cooking", "crime", "children"]
WORDS = "river night garden stone winter letter city silence machine harbour".split()


class Command(BaseCommand):
    help = "Seed the demo bookstore (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        if Book.objects.exists():
            self.stdout.write(f"Bookstore already seeded ({Book.objects.count()} books).")
            return
        rng = random.Random(42)
        with transaction.atomic():
            authors = Author.objects.bulk_create(
                Author(name=f"Author {i:02d}") for i in range(1, AUTHORS + 1)
            )
            publishers = Publisher.objects.bulk_create(
                Publisher(name=f"Publisher {i}") for i in range(1, PUBLISHERS + 1)
            )
            tags = Tag.objects.bulk_create(Tag(name=name) for name in TAGS)
            books = Book.objects.bulk_create(
                Book(
                    title=f"The {rng.choice(WORDS).title()} of {rng.choice(WORDS).title()} {i}",
                    author=authors[i % AUTHORS],
                    publisher=publishers[i % PUBLISHERS],
                    price=Decimal(rng.randint(500, 4500)) / 100,
                    published=datetime.date(1950, 1, 1)
                    + datetime.timedelta(days=rng.randint(0, 27000)),
                )
                for i in range(BOOKS)
            )
            Book.tags.through.objects.bulk_create(
                Book.tags.through(book_id=book.pk, tag_id=tag.pk)
                for book in books
                for tag in rng.sample(tags, 2)
            )
            Review.objects.bulk_create(
                Review(book=book, rating=rng.randint(1, 5), text=f"Review {n} of {book.title}")
                for book in books
                for n in range(REVIEWS_PER_BOOK)
            )
            for i in range(STORES):
                store = Store.objects.create(name=f"Store {i + 1}")
                store.books.set(books[i::STORES])
        self.stdout.write(
            f"Seeded {AUTHORS} authors, {PUBLISHERS} publishers, {BOOKS} books, "
            f"{BOOKS * REVIEWS_PER_BOOK} reviews, {STORES} stores."
        )

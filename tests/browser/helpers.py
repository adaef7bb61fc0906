"""What the browser tests share: the data their pages show, and screenshots."""

from __future__ import annotations

import datetime
import os
import shutil
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from demo_app.models import Author, Book, Publisher
from tests.testapp.views import BOOKS_SHOWN

if TYPE_CHECKING:
    from playwright.sync_api import Page

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
README_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
UPDATE_README = os.environ.get("TRACER_README_SCREENSHOTS", "").lower() in {"1", "true", "yes"}

TITLES = [
    "The River of Night",
    "A Garden in Winter",
    "Letters from the Harbour",
    "Stone and Silence",
    "The City Machine",
    "Night Letters",
    "Winter Harbour",
    "The Silent Garden",
    "Machines of the River",
    "A City of Stone",
]


def bookstore(using: str = "default") -> None:
    """Books each by its own author: more than a books page shows."""
    publisher = Publisher.objects.using(using).create(name="Harbour Press")
    for number, title in enumerate(TITLES):
        author = Author.objects.using(using).create(name=f"Author {number + 1:02d}")
        Book.objects.using(using).create(
            title=title,
            author=author,
            publisher=publisher,
            price=Decimal("12.50") + number,
            published=datetime.date(1990 + number, 1, 1),
        )
    assert len(TITLES) > BOOKS_SHOWN


def shot(
    page: Page, name: str, readme: str | None = None, full_page: bool = False, crop: bool = False
) -> Path:
    """Save what ``page`` shows as ``tests/browser/screenshots/<name>.png``; also as
    ``docs/screenshots/<readme>.png`` when the README's screenshots are being updated
    (``TRACER_README_SCREENSHOTS=1``). ``crop`` leaves out the empty viewport below a
    short page's content."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    clip = None
    if crop:
        size = page.viewport_size or {"width": 1280, "height": 900}
        bottom = page.evaluate(
            "Math.ceil(document.querySelector('main').getBoundingClientRect().bottom)"
        )
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(bottom + 24, size["height"])}
    page.screenshot(path=path, full_page=full_page, clip=clip, animations="disabled")
    if readme and UPDATE_README:
        shutil.copyfile(path, README_SCREENSHOTS / f"{readme}.png")
    return path

from __future__ import annotations

from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    price = models.DecimalField(max_digits=6, decimal_places=2, default=0)

    def __str__(self) -> str:
        return self.title


class Profile(models.Model):
    """A one-to-one on Author (``author.profile`` the other way)."""

    author = models.OneToOneField(Author, on_delete=models.CASCADE, related_name="profile")
    bio = models.TextField(default="")


class Room(models.Model):
    name = models.CharField(max_length=100, default="")


class Shelf(models.Model):
    """Relations without related_name: ``room.shelf_set`` and ``shelf.sticker_set`` the
    other way, whose query names are ``shelf`` and ``sticker``."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE)


class Sticker(models.Model):
    shelves = models.ManyToManyField(Shelf)

"""Export and import (tracer/views/transfer.py)."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.views.conftest import ESCAPED, HOSTILE, URL, n_plus_one, rows
from tracer.store import get_store
from tracer.views import transfer

pytestmark = pytest.mark.django_db


def upload(content: bytes, name: str = "trace.json") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/json")


def test_export_is_a_json_download(client: Client):
    trace = n_plus_one("GET /books/")
    response = client.get(f"{URL}trace/{trace.id}/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="trace-get-books-{trace.id}.json"'
    )
    assert json.loads(response.content) == trace.to_dict()


def test_import_keeps_both_under_a_new_id(client: Client):
    trace = n_plus_one()
    exported = client.get(f"{URL}trace/{trace.id}/export/").content
    response = client.post(f"{URL}import/", {"trace": upload(exported)})
    assert response.status_code == 302
    new_id = response["Location"].removeprefix(f"{URL}trace/").removesuffix("/")
    assert new_id != trace.id
    assert len(new_id) == 32
    copy = get_store().get(new_id)
    assert copy is not None
    assert copy.imported
    assert get_store().get(trace.id) is trace
    data = copy.to_dict()
    assert data["label"] == "imported: books"
    assert {**data, "id": trace.id, "label": "books"} == json.loads(exported)
    # Shown like the recorded one, marked imported.
    html = client.get(response["Location"]).content.decode()
    assert '<span class="tracer-badge tracer-badge-imported">imported</span>' in html
    assert '<div class="tracer-figure-bad"><dt>N+1</dt><dd>1</dd></div>' in html
    listed = client.get(URL).content.decode()
    # Both recorded at the same time: the newest in the store first.
    assert rows(listed) == [new_id, trace.id]
    # Importing it again adds a third, without "imported: imported: ".
    again = client.post(f"{URL}import/", {"trace": upload(json.dumps(data).encode())})
    third = get_store().get(again["Location"].removeprefix(f"{URL}trace/").removesuffix("/"))
    assert third is not None
    assert third.label == "imported: books"
    assert len(get_store()) == 3


@pytest.mark.parametrize(
    "content, error",
    [
        (
            b"{not json",
            "trace.json is not JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        (b"\xff\xfe", "trace.json is not JSON: "),
        (b"[1, 2]", "Not a tracer-trace/1 trace: expected a dict, got list."),
        (
            b'{"format": "tracer-trace/2"}',
            "Not a tracer-trace/1 trace (format: &#x27;tracer-trace/2&#x27;).",
        ),
        (
            b'{"format": "tracer-trace/1"}',
            "Malformed tracer-trace/1 trace: the trace has no &#x27;id&#x27; key.",
        ),
    ],
    ids=["syntax", "encoding", "list", "format", "malformed"],
)
def test_import_says_what_is_wrong(client: Client, content: bytes, error: str):
    response = client.post(f"{URL}import/", {"trace": upload(content)})
    assert response.status_code == 400
    html = response.content.decode()
    assert (
        f'<p class="tracer-notice tracer-error-text" role="alert" id="tracer-import-error">{error}'
        in html
    )
    assert len(get_store()) == 0


def test_import_without_a_file(client: Client):
    response = client.post(f"{URL}import/", {})
    assert response.status_code == 400
    assert "Choose a trace file (.json) to import." in response.content.decode()


def test_import_size_limit(client: Client, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(transfer, "IMPORT_MAX_BYTES", 10)
    response = client.post(f"{URL}import/", {"trace": upload(b"x" * 11)})
    assert response.status_code == 400
    assert (
        "The file is 11 bytes; the largest that can be imported is 10 bytes."
        in response.content.decode()
    )


def test_import_hostile_file_names_and_labels_are_text(client: Client):
    trace = n_plus_one(HOSTILE)
    bad = client.post(f"{URL}import/", {"trace": upload(b"{", name=f"{HOSTILE}.json")})
    assert "<script>alert" not in bad.content.decode()
    # Django keeps the name after its last "/".
    assert (
        '<p class="tracer-notice tracer-error-text" role="alert" id="tracer-import-error">'
        "script&gt;.json is not JSON" in bad.content.decode()
    )
    exported = client.get(f"{URL}trace/{trace.id}/export/").content
    response = client.post(f"{URL}import/", {"trace": upload(exported)})
    html = client.get(response["Location"]).content.decode()
    assert "<script>alert" not in html
    assert f"<title>imported: {ESCAPED} · tracer</title>" in html


def test_import_is_csrf_protected(client: Client):
    trace = n_plus_one()
    exported = client.get(f"{URL}trace/{trace.id}/export/").content
    guarded = Client(enforce_csrf_checks=True)
    assert guarded.post(f"{URL}import/", {"trace": upload(exported)}).status_code == 403
    form = guarded.get(f"{URL}import/")
    token = form.cookies["csrftoken"].value
    assert 'name="csrfmiddlewaretoken"' in form.content.decode()
    response = guarded.post(
        f"{URL}import/", {"trace": upload(exported), "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert len(get_store()) == 2


def test_methods(client: Client):
    assert client.get(f"{URL}import/").status_code == 200
    assert client.put(f"{URL}import/").status_code == 405


def test_filename():
    assert transfer.filename({"id": "abc", "label": ""}) == "trace-abc.json"
    assert transfer.filename({"id": "abc", "label": "GET /books/?x=<1>"}) == (
        "trace-get-books-x-1-abc.json"
    )

import csv
import datetime
import io
import zipfile
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone
from openpyxl import Workbook, load_workbook

from audits import services, spreadsheets
from audits.models import ImportBatch, Measurement
from tests.audits.factories import measure

pytestmark = pytest.mark.django_db

HEADER = ["indicator", "date", "numerator", "denominator", "value", "location", "notes"]
INDICATOR = "Escalated within 24h"


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "private-media"


def _rows(plan, n):
    start = plan.opened_on
    return [
        [INDICATOR, (start + datetime.timedelta(days=i % 30)).isoformat(), 18, 20, "", "", ""]
        for i in range(n)
    ]


def _csv(rows, header=HEADER) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _xlsx(rows, header=HEADER) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _many_indicators_plan(quality_lead, oakfield, n):
    """A plan whose indicators let ``n`` rows have distinct (indicator, date) pairs."""
    from tests import factories

    opened = timezone.localdate() - datetime.timedelta(days=400)
    indicators = [
        {
            "name": f"Indicator {k}",
            "measure_type": "proportion",
            "direction": "higher",
            "target": Decimal("90"),
            "unit": "%",
            "frequency": "monthly",
        }
        for k in range(n // 365 + 1)
    ]
    return factories.live_plan(
        owner=quality_lead, locations=[oakfield], opened_on=opened, indicators=indicators
    )


def _big_rows(plan, n):
    names = [i.name for i in plan.indicators.all()]
    return [
        [
            names[i // 365],
            (plan.opened_on + datetime.timedelta(days=i % 365)).isoformat(),
            17,
            20,
            "",
            "",
            f"Audit {i}",
        ]
        for i in range(n)
    ]


def _upload_and_check(client, plan, name, content, capture):
    with capture(execute=True):
        response = client.post(
            reverse("audits:import", args=[plan.reference]),
            {"upload": SimpleUploadedFile(name, content)},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    return ImportBatch.objects.latest("pk")


def _commit(client, batch, capture):
    with capture(execute=True):
        client.post(reverse("audits:import_commit", args=[batch.pk]))
    return client.get(reverse("audits:import_detail", args=[batch.pk]))


def test_5000_rows_preview_and_commit(
    client, quality_lead, manager, oakfield, django_capture_on_commit_callbacks
):
    plan = _many_indicators_plan(quality_lead, oakfield, 5000)
    client.force_login(manager)
    batch = _upload_and_check(
        client,
        plan,
        "results.xlsx",
        _xlsx(_big_rows(plan, 5000)),
        django_capture_on_commit_callbacks,
    )
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.VALID, batch.errors[:3]
    assert batch.total_rows == 5000 and len(batch.preview) == services.PREVIEW_ROWS
    page = client.get(reverse("audits:import_detail", args=[batch.pk])).content.decode()
    assert "Import 5000 results" in page and "Nothing has been saved yet" in page
    assert not Measurement.objects.exists()
    response = _commit(client, batch, django_capture_on_commit_callbacks)
    assert "5000 results imported on" in response.content.decode()
    assert Measurement.objects.count() == 5000
    m = Measurement.objects.get(notes="Audit 4999")
    assert m.value == Decimal("85.000") and m.source == "import" and m.import_batch == batch
    assert m.history.get().history_user == manager
    # Each indicator keeps the date of its latest result (the re-audit counts read it).
    latest = dict(
        Measurement.objects.values("indicator")
        .annotate(d=Max("measured_on"))
        .values_list("indicator", "d")
    )
    assert latest and {i.pk: i.last_measured_on for i in plan.indicators.all()} == latest
    # Committing twice does nothing more.
    _commit(client, batch, django_capture_on_commit_callbacks)
    assert Measurement.objects.count() == 5000


def test_one_bad_row_in_the_middle_commits_nothing_and_names_the_row(
    client, quality_lead, manager, oakfield, django_capture_on_commit_callbacks
):
    plan = _many_indicators_plan(quality_lead, oakfield, 5000)
    rows = _big_rows(plan, 5000)
    rows[2499][2] = 25  # numerator > denominator, spreadsheet row 2501
    client.force_login(manager)
    batch = _upload_and_check(
        client, plan, "results.csv", _csv(rows), django_capture_on_commit_callbacks
    )
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.INVALID
    assert batch.errors == [
        {
            "row": 2501,
            "column": "numerator",
            "message": "25 met the standard but only 20 were checked: the first cannot be larger.",
        }
    ]
    page = client.get(reverse("audits:import_detail", args=[batch.pk])).content.decode()
    assert "Row 2501" in page and "Nothing was imported" in page and "Import 5000" not in page
    response = client.post(reverse("audits:import_commit", args=[batch.pk]), follow=True)
    assert "has problems" in response.content.decode()
    assert not Measurement.objects.exists()


def _check(plan, by, content, kind="csv"):
    batch = ImportBatch(plan=plan, created_by=by, kind=kind, original_name=f"x.{kind}")
    batch.file.save("import", SimpleUploadedFile(f"x.{kind}", content), save=False)
    batch.save()
    return services.validate_import(batch_id=batch.pk)


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        (["Escalated within 24h", "{d}", "x", "20", "", "", ""], "numerator", "whole number"),
        (["Escalated within 24h", "{d}", "21", "20", "", "", ""], "numerator", "cannot be larger"),
        (["Escalated within 24h", "{d}", "0", "0", "", "", ""], "denominator", "more than 0"),
        (["Escalated within 24h", "2999-01-01", "1", "2", "", "", ""], "date", "future"),
        (["Escalated within 24h", "2001-01-01", "1", "2", "", "", ""], "date", "before the plan"),
        (["Escalated within 24h", "not a date", "1", "2", "", "", ""], "date", "valid date"),
        (["Nope", "{d}", "1", "2", "", "", ""], "indicator", "no indicator called “Nope”"),
        (
            ["Escalated within 24h", "{d}", "1", "2", "", "", '=HYPERLINK("http://x","y")'],
            "notes",
            "formula",
        ),
    ],
)
def test_bad_rows_are_named_with_their_row_number(plan, manager, row, column, message):
    day = timezone.localdate().isoformat()
    good = [INDICATOR, plan.opened_on.isoformat(), "1", "2", "", "", ""]
    batch = _check(plan, manager, _csv([good, [c.replace("{d}", day) for c in row]]))
    assert batch.status == ImportBatch.Status.INVALID
    [error] = batch.errors
    assert error["row"] == 3 and error["column"] == column
    assert message in error["message"], error


def test_duplicate_rows_in_the_file_or_against_existing_results_are_refused(plan, manager):
    day = plan.opened_on
    measure(plan, by=manager, on=day + datetime.timedelta(days=1))
    rows = [
        [INDICATOR, day.isoformat(), 1, 2, "", "", ""],
        [INDICATOR, day.isoformat(), 1, 2, "", "", ""],
        [INDICATOR, (day + datetime.timedelta(days=1)).isoformat(), 1, 2, "", "", ""],
    ]
    batch = _check(plan, manager, _csv(rows))
    assert [(e["row"], e["column"]) for e in batch.errors] == [(3, "date"), (4, "date")]
    assert "repeats row 2" in batch.errors[0]["message"]
    assert "already has a result" in batch.errors[1]["message"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["indicator", "when", "numerator"], "unknown column “when”; missing column “date”"),
        (["Indicator", "Date", "Score"], "unknown column “score”"),
        (["indicator", "date", "date"], "repeated column “date”"),
    ],
)
def test_wrong_columns_are_refused_with_the_expected_columns(plan, manager, header, message):
    batch = _check(plan, manager, _csv([], header=header))
    [error] = batch.errors
    assert error["row"] == 1 and message in error["message"]
    assert "indicator, date, numerator, denominator, value, location, notes" in error["message"]


def test_xlsx_formula_cells_are_refused(plan, manager):
    rows = [
        [INDICATOR, plan.opened_on, '=HYPERLINK("http://evil.example","x")', 20, None, None, None]
    ]
    batch = _check(plan, manager, _xlsx(rows), kind="xlsx")
    [error] = batch.errors
    assert error["row"] == 2 and error["column"] == "numerator" and "formula" in error["message"]


def test_xlsx_dates_and_numbers_are_read_as_typed(plan, manager):
    rows = [
        [
            INDICATOR,
            datetime.datetime.combine(plan.opened_on, datetime.time()),
            9.0,
            10,
            None,
            "Oakfield House",
            "ok",
        ]
    ]
    batch = _check(plan, manager, _xlsx(rows), kind="xlsx")
    assert batch.status == ImportBatch.Status.VALID, batch.errors
    assert batch.preview[0]["value"] == "90"


def _zip_with(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_an_xlsx_zip_bomb_is_refused_before_it_is_expanded(plan, manager):
    real = zipfile.ZipFile(io.BytesIO(_xlsx([])))
    members = {i.filename: real.read(i) for i in real.infolist()}
    members["xl/bomb.bin"] = b"\x00" * (120 * 1024 * 1024)
    batch = _check(plan, manager, _zip_with(members), kind="xlsx")
    assert "zip bomb" in batch.errors[0]["message"]


def test_an_xlsx_with_an_xml_entity_attack_is_refused(plan, manager):
    real = zipfile.ZipFile(io.BytesIO(_xlsx([])))
    members = {i.filename: real.read(i) for i in real.infolist()}
    members["xl/sharedStrings.xml"] = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><sst>&lol2;</sst>'
    )
    batch = _check(plan, manager, _zip_with(members), kind="xlsx")
    assert "document type declaration" in batch.errors[0]["message"]


def test_upload_form_refuses_things_that_are_not_spreadsheets(client, plan, manager):
    client.force_login(manager)
    response = client.post(
        reverse("audits:import", args=[plan.reference]),
        {"upload": SimpleUploadedFile("results.xlsx", b"<html><body>hi</body></html>")},
    )
    assert response.status_code == 200
    assert "its contents are not an Excel workbook" in response.content.decode()
    assert not ImportBatch.objects.exists()


def test_templates_download_with_the_right_columns(client, plan, manager):
    client.force_login(manager)
    response = client.get(reverse("audits:import_template", args=[plan.reference, "csv"]))
    assert response["Content-Disposition"].startswith("attachment")
    assert response.content.decode("utf-8-sig").strip() == ",".join(spreadsheets.COLUMNS)
    response = client.get(reverse("audits:import_template", args=[plan.reference, "xlsx"]))
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert [c.value for c in next(sheet.iter_rows())] == spreadsheets.COLUMNS


def test_outsiders_cannot_see_an_import(client, plan, manager, outsider, viewer):
    batch = _check(plan, manager, _csv(_rows(plan, 1)))
    for user in (outsider, viewer):
        client.force_login(user)
        assert client.get(reverse("audits:import_detail", args=[batch.pk])).status_code == 404
        assert client.post(reverse("audits:import_commit", args=[batch.pk])).status_code == 404


def test_progress_partial_polls_while_working_and_refreshes_when_done(client, plan, manager):
    batch = _check(plan, manager, _csv(_rows(plan, 1)))
    client.force_login(manager)
    url = reverse("audits:import_detail", args=[batch.pk]) + "?partial=1"
    response = client.get(url, headers={"HX-Request": "true"})
    assert response["HX-Refresh"] == "true"
    ImportBatch.objects.filter(pk=batch.pk).update(
        status="validating", total_rows=10, processed_rows=5
    )
    body = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 1s"' in body and "Checking 5 of 10 rows" in body


def test_export_neutralises_formula_cells(client, plan, manager):
    measure(plan, by=manager, on=plan.opened_on)
    m = Measurement.objects.get()
    m.notes = '=HYPERLINK("http://evil.example")'
    m.save()
    client.force_login(manager)
    body = client.get(reverse("audits:export", args=[plan.reference, "csv"])).content.decode()
    assert "'=HYPERLINK" in body and ",=HYPERLINK" not in body
    assert INDICATOR in body and "95.000" in body
    response = client.get(reverse("audits:export", args=[plan.reference, "xlsx"]))
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = [c.value for c in list(sheet.iter_rows())[1]]
    assert '\'=HYPERLINK("http://evil.example")' in values


def test_outsider_cannot_export(client, plan, outsider):
    client.force_login(outsider)
    assert client.get(reverse("audits:export", args=[plan.reference, "csv"])).status_code == 404

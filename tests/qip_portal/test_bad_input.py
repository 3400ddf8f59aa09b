"""Bad input is answered, never a server error (issue 18): plan references in URLs, Unicode
digits in choices, over-long usernames, oversize or active-content uploads, and more PDF
renders than one person may have waiting. The random fuzz is in ``test_fuzz.py``."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve, reverse

from tests import factories

# --- Plan references in URLs ------------------------------------------------------------

BAD_REFERENCES = [
    "QIP\x00",
    "QIP-2026-0001\x00",
    "\x00",
    "QIP-２０２６-0001",  # fullwidth digits: int() and \d take them, the database does not
    "QIP-2026-000¹",
    "QIP-2026-0001\n",
    "qip-2026-0001",
    "QIP-2026-" + "9" * 40,
    "QIP-2026-0001'; --",
    "-1",
]


SAMPLE = {"reference": "QIP-2026-0001", "name": "withdraw", "kind": "csv"}


def _reference_patterns(patterns=None, namespace=None):
    """(URL name, the names of its parameters) of every pattern that takes a plan."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace != "admin":
                yield from _reference_patterns(pattern.url_patterns, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern) and "reference" in pattern.pattern.converters:
            yield f"{namespace}:{pattern.name}", list(pattern.pattern.converters)


def reference_urls(reference: str) -> dict[str, str]:
    """Every URL that names a plan, naming ``reference`` instead (percent-encoded, as a
    browser sends it); other parameters get plausible values."""
    urls = {}
    for name, keys in _reference_patterns():
        good = reverse(name, kwargs={key: SAMPLE.get(key, "1") for key in keys})
        urls[name] = good.replace(SAMPLE["reference"], quote(reference, safe=""), 1)
    return urls


def test_every_url_that_names_a_plan_is_covered():
    names = set(reference_urls("QIP-2026-0001"))
    # Plans, results and exports, evidence, imports, governance, learning and packs.
    for expected in [
        "plans:detail",
        "plans:transition",
        "audits:export",
        "audits:import_template",
        "audits:reopen",
        "governance:plan_report",
        "governance:risk_remove",
        "learning:detail",
        "learning:embedding_file",
        "packs:plan",
        "packs:plan_zip",
    ]:
        assert expected in names
    assert len(names) >= 20


@pytest.mark.parametrize("reference", BAD_REFERENCES, ids=repr)
def test_a_malformed_plan_reference_matches_no_url(reference):
    for name, url in reference_urls(reference).items():
        with pytest.raises(Resolver404):
            resolve(url.split("?")[0].replace(quote(reference, safe=""), reference))
        assert name  # every URL name was tried


@pytest.mark.parametrize("reference", ["QIP\x00", "QIP-2026-0001\x00", "QIP-２０２６-0001"])
def test_a_malformed_plan_reference_is_not_found_for_every_page(
    reference, quality_lead, oakfield
):
    """A NUL byte reached PostgreSQL and answered 500; now every such URL is a 404 before
    any view runs, for GET and POST alike."""
    factories.live_plan(owner=quality_lead, locations=[oakfield])
    client = Client(raise_request_exception=False)
    client.force_login(quality_lead)
    answers = {}
    for name, url in reference_urls(reference).items():
        answers[name] = (client.get(url).status_code, client.post(url, {}).status_code)
    assert answers == dict.fromkeys(answers, (404, 404))


def test_a_real_reference_still_resolves(quality_lead, oakfield):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    for name, url in reference_urls(plan.reference).items():
        assert resolve(url).kwargs["reference"] == plan.reference, name


def test_references_of_every_shape_allocated_are_accepted():
    from plans.converters import is_plan_reference

    # allocate_reference: "QIP-<year>-NNNN", the number growing past four digits, and a
    # year as Python dates allow it (1 to 9999); the bench counters start at 90000.
    for ok in ["QIP-2026-0001", "QIP-2025-90001", "QIP-1-0001", "QIP-9999-99999999999"]:
        assert is_plan_reference(ok), ok
    for bad in BAD_REFERENCES + ["QIP-2026-001", "QIP-99999-0001", "QIP-2026-0001-"]:
        assert not is_plan_reference(bad), bad


# --- Choices of rows: ASCII ids only ----------------------------------------------------


@pytest.mark.parametrize("value", ["²", "١", "１", "-1", "1.0", "0x1", "\x00", "9" * 30, " "])
def test_a_choice_of_rows_takes_ascii_ids_only(value, oakfield):
    from django.core.exceptions import ValidationError

    from core.forms import ModelChoiceField, ModelMultipleChoiceField
    from plans.models import Location

    one = ModelChoiceField(queryset=Location.objects.all())
    many = ModelMultipleChoiceField(queryset=Location.objects.all())
    assert one.clean(str(oakfield.pk)) == oakfield
    assert list(many.clean([str(oakfield.pk)])) == [oakfield]
    # "١" is Arabic-Indic one: int() reads it as 1, and would find a row.
    sneaky = value.replace("1", str(oakfield.pk)) if value == "1.0" else value
    with pytest.raises(ValidationError) as single:
        one.clean(sneaky)
    with pytest.raises(ValidationError) as multiple:
        many.clean([str(oakfield.pk), sneaky])
    for error in (single.value, multiple.value):
        assert error.code in ("invalid_choice", "required", "invalid_pk_value")


def test_a_unicode_digit_in_a_multiple_choice_is_a_form_error(client, quality_lead, oakfield):
    """``"²".isdigit()`` is true but ``int("²")`` raises: this answered 500."""
    client.raise_request_exception = False
    client.force_login(quality_lead)
    for field in ["plan-locations", "plan-quality_statements", "plan-regulations"]:
        response = client.post(reverse("plans:create"), {field: ["²"], "plan-title": "X"})
        assert response.status_code == 200, field
        assert "is not one of the available choices" in response.content.decode(), field


def test_arabic_indic_digits_do_not_name_a_row(client, quality_lead, oakfield):
    client.force_login(quality_lead)
    arabic = "".join(chr(0x0660 + int(d)) for d in str(oakfield.pk))
    response = client.get(reverse("learning:library"), {"location": arabic})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


# --- Sign-in ----------------------------------------------------------------------------


def test_an_over_long_username_gets_the_usual_answer_and_is_still_counted(db, manager):
    """django-axes stored the name as typed in a 255-character column: on PostgreSQL a
    300-character username answered 500. Now it is cut to the longest an account can
    have (150) before axes sees it, and failures at it are still counted."""
    from axes.models import AccessAttempt

    client = Client(raise_request_exception=False)
    long_name = "m" * 300
    for _ in range(2):
        response = client.post(reverse("login"), {"username": long_name, "password": "x"})
        assert response.status_code == 200
        assert "did not match" in response.content.decode()
    attempt = AccessAttempt.objects.get()
    assert attempt.username == "m" * 150 and attempt.failures_since_start == 2
    # A real account's attempts are counted under its own name, as before.
    client.post(reverse("login"), {"username": " manager ", "password": "wrong"})
    assert AccessAttempt.objects.get(username="manager").failures_since_start == 1


# --- Upload size, while the request arrives ---------------------------------------------


class _Recorder:
    """An upload handler after the limiting one: what it is given is what would be stored."""

    def __init__(self):
        self.received = 0

    def handler(self, request):
        from django.core.files.uploadhandler import TemporaryFileUploadHandler

        recorder = self

        class Recording(TemporaryFileUploadHandler):
            def receive_data_chunk(self, raw_data, start):
                recorder.received += len(raw_data)
                return super().receive_data_chunk(raw_data, start)

        return Recording(request)


def test_an_oversize_file_is_not_stored_past_the_limit(settings):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import RequestFactory

    from core.uploads import RefusedUpload, SizeLimitedUploadHandler

    settings.EVIDENCE_MAX_UPLOAD_BYTES = 256 * 1024
    big = b"%PDF-1.4\n" + b"0" * (2 * 1024 * 1024)  # eight times the limit
    request = RequestFactory().post(
        "/", {"title": "Kept", "upload": SimpleUploadedFile("big.pdf", big)}
    )
    recorder = _Recorder()
    request.upload_handlers = [SizeLimitedUploadHandler(request), recorder.handler(request)]
    refused = request.FILES["upload"]
    assert isinstance(refused, RefusedUpload)
    assert refused.size == len(big) and refused.name == "big.pdf"
    assert refused.read() == b""
    # The storing handler saw no more than the limit (and one chunk): the rest was counted,
    # never written, and what it had was closed (a temporary file is deleted on close).
    assert recorder.received <= 256 * 1024 + 64 * 1024
    assert request.upload_handlers[1].file.closed
    assert request.POST["title"] == "Kept"  # the other fields still arrive


def test_a_file_within_the_limit_is_stored_as_usual(settings):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import RequestFactory

    settings.EVIDENCE_MAX_UPLOAD_BYTES = 256 * 1024
    content = b"%PDF-1.4\n" + b"0" * (256 * 1024 - 9)  # exactly at the limit
    request = RequestFactory().post("/", {"upload": SimpleUploadedFile("ok.pdf", content)})
    assert request.FILES["upload"].read() == content


def _upload_forms(plan, by):
    """Every form that takes a file: (url, its fields, the file field's name)."""
    from tests.learning.helpers import write_summary

    write_summary(plan, by=by)
    ref = plan.reference
    return [
        (
            reverse("audits:add_evidence", args=[ref]),
            {"kind": "supervision", "title": "Notes", "occurred_on": "2026-01-05"},
            "upload",
        ),
        (reverse("audits:import", args=[ref]), {}, "upload"),
        (
            reverse("learning:add_embedding", args=[ref]),
            {"kind": "induction", "embedded_on": "2026-01-05", "who": "Tom"},
            "evidence",
        ),
    ]


def _domain_rows() -> int:
    from audits.models import EvidenceItem, ImportBatch
    from learning.models import Embedding

    return EvidenceItem.objects.count() + ImportBatch.objects.count() + Embedding.objects.count()


def test_every_upload_form_refuses_a_file_over_the_limit_and_keeps_the_form(
    client, plan, quality_lead, settings
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.EVIDENCE_MAX_UPLOAD_BYTES = 64 * 1024
    client.force_login(quality_lead)
    for url, fields, name in _upload_forms(plan, quality_lead):
        big = SimpleUploadedFile("big.csv", b"indicator,measured_on\n" + b"x" * 200_000)
        response = client.post(url, {**fields, name: big})
        body = response.content.decode()
        assert response.status_code == 200, url
        assert "The file is 0.2 MB; the largest allowed is 0 MB." in body, url
    assert _domain_rows() == 0


def test_a_request_body_over_the_limit_is_refused_before_it_is_read(
    client, plan, quality_lead, settings
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.EVIDENCE_MAX_UPLOAD_BYTES = 64 * 1024
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    client.force_login(quality_lead)
    for url, fields, name in _upload_forms(plan, quality_lead):
        big = SimpleUploadedFile("big.pdf", b"%PDF-1.4\n" + b"0" * 300_000)
        response = client.post(url, {**fields, name: big})
        assert response.status_code == 413, url
        body = response.content.decode()
        assert "What was sent is 0.3 MB; a file may be at most 0 MB." in body
        assert f'href="{url}"' in body  # back to the form
    assert _domain_rows() == 0


def test_the_size_check_reads_only_the_declared_length(settings):
    from django.test import RequestFactory

    from core.uploads import RequestSizeLimitMiddleware

    settings.EVIDENCE_MAX_UPLOAD_BYTES = 1024
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    request = RequestFactory().post("/", data=b"x" * 4096, content_type="application/pdf")
    request.user = None

    def view(_request):
        raise AssertionError("the view must not run")

    response = RequestSizeLimitMiddleware(view)(request)
    assert response.status_code == 413
    assert not request._read_started  # not one byte of the body was read


# --- Form sets --------------------------------------------------------------------------


def test_a_posted_row_count_is_believed_only_up_to_twenty(client, quality_lead, oakfield):
    """Django builds (and the page renders) as many rows as TOTAL_FORMS says, up to 2,000."""
    client.force_login(quality_lead)
    response = client.post(
        reverse("plans:create"),
        {"triggers-TOTAL_FORMS": "99999999999999999999", "triggers-INITIAL_FORMS": "0"},
    )
    assert response.status_code == 200
    assert len(response.context["triggers"].forms) == 20
    assert "Please submit at most 20 forms." in response.content.decode()


# --- What the fuzz found ------------------------------------------------------------------


def test_a_correction_reason_with_a_nul_byte_is_a_form_error(client, plan, manager):
    """The reason was read straight from the request: PostgreSQL refused the NUL (500)."""
    from tests.audits.factories import measure

    m = measure(plan, by=manager, on=plan.opened_on)
    client.force_login(manager)
    url = reverse("audits:edit_measurement", args=[plan.reference, m.pk])
    data = {
        "indicator": m.indicator_id,
        "measured_on": m.measured_on.isoformat(),
        "numerator": "12",
        "denominator": "20",
        "source": "re_audit",
    }
    for reason, message in [("Two\x00counted", "Null characters are not allowed."),
                            ("x" * 301, "at most 300 characters")]:  # fmt: skip
        response = client.post(url, data | {"reason": reason})
        assert response.status_code == 200 and message in response.content.decode()
    m.refresh_from_db()
    assert m.numerator == 19 and m.history.count() == 1


def test_a_count_past_what_the_database_holds_is_a_form_error(client, plan, manager):
    client.force_login(manager)
    response = client.post(
        reverse("audits:log", args=[plan.reference]),
        {
            "indicator": plan.indicators.get().pk,
            "measured_on": plan.opened_on.isoformat(),
            "numerator": "99999999999999999999",
            "denominator": "99999999999999999999",
            "source": "re_audit",
        },
    )
    assert response.status_code == 200
    assert "less than or equal to 2147483647" in response.content.decode()


@pytest.mark.parametrize("target", ["\\% \\", "home", "plans:register", "//evil.example/"])
def test_a_next_address_that_is_not_a_path_here_goes_home(client, manager, target):
    """``redirect()`` takes a string without "/" for a URL name: "\\% \\" answered 500."""
    client.force_login(manager)
    response = client.get(reverse("mfa_verify"), {"next": target})
    assert response.status_code == 302 and response["Location"] == "/"

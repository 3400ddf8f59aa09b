import datetime

from django.utils import translation
from django.utils.formats import date_format

from core.dates import day


def test_day_writes_what_djangos_formatter_writes():
    for month in range(1, 13):
        for value in (datetime.date(2026, month, 1), datetime.date(1999, month, 28)):
            assert day(value) == date_format(value, "j M Y")
    assert day(datetime.date(2026, 11, 26)) == "26 Nov 2026"
    assert day(datetime.datetime(2026, 6, 3, 23, 59)) == "3 Jun 2026"
    assert day(None) == ""


def test_day_follows_the_active_language():
    with translation.override("de"):
        assert day(datetime.date(2026, 3, 1)) == date_format(datetime.date(2026, 3, 1), "j M Y")

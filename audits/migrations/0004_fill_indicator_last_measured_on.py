"""Fill plans.Indicator.last_measured_on (added by plans 0005) from the results."""

from django.db import migrations
from django.db.models import Max, OuterRef, Subquery


def fill(apps, schema_editor):
    Indicator = apps.get_model("plans", "Indicator")
    Measurement = apps.get_model("audits", "Measurement")
    latest = (
        Measurement.objects.filter(indicator=OuterRef("pk"))
        .order_by()
        .values("indicator")
        .annotate(latest=Max("measured_on"))
        .values("latest")
    )
    Indicator.objects.update(last_measured_on=Subquery(latest))


class Migration(migrations.Migration):
    dependencies = [
        ("audits", "0003_historicalmonitoringperiod_monitoringperiod_and_more"),
        ("plans", "0005_indicator_last_measured_on"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]

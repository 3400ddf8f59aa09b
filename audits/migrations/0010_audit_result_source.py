"""What produced each audit result: the feed's scope and key at submission and the tool
version answered, so a correction recomputes it the same way. Results written before
are filled in from their indicator's feed now (the best record there is), when it is
fed by the audit's tool; otherwise left blank (corrected from the current feed, as
before)."""

import django.db.models.deletion
from django.db import migrations, models


def fill_in(apps, schema_editor):
    AuditResult = apps.get_model("audits", "AuditResult")
    IndicatorFeed = apps.get_model("audits", "IndicatorFeed")
    feeds = {f.indicator_id: f for f in IndicatorFeed.objects.all()}
    for result in AuditResult.objects.select_related("audit__version", "measurement"):
        feed = feeds.get(result.measurement.indicator_id)
        result.version_id = result.audit.version_id
        if feed is not None and feed.tool_id == result.audit.version.tool_id:
            result.scope, result.key = feed.scope, feed.key
        result.save(update_fields=["scope", "key", "version"])


class Migration(migrations.Migration):

    dependencies = [
        ("audits", "0009_audit_pdf_working_index"),
    ]

    operations = [
        migrations.AddField(
            model_name='auditresult',
            name='key',
            field=models.CharField(blank=True, max_length=20),
        ),
        migrations.AddField(
            model_name='auditresult',
            name='scope',
            field=models.CharField(blank=True, choices=[('question', "One question's compliance"), ('section', "A section's score"), ('overall', 'The overall score')], max_length=10),
        ),
        migrations.AddField(
            model_name='auditresult',
            name='version',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='audits.toolversion'),
        ),
        migrations.AddField(
            model_name='historicalauditresult',
            name='key',
            field=models.CharField(blank=True, max_length=20),
        ),
        migrations.AddField(
            model_name='historicalauditresult',
            name='scope',
            field=models.CharField(blank=True, choices=[('question', "One question's compliance"), ('section', "A section's score"), ('overall', 'The overall score')], max_length=10),
        ),
        migrations.AddField(
            model_name='historicalauditresult',
            name='version',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='audits.toolversion'),
        ),
        migrations.RunPython(fill_in, migrations.RunPython.noop),
    ]

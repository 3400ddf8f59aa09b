"""A finding whose "No" a correction turned into something else is withdrawn (who,
when, and the correction's reason), not deleted."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("audits", "0010_audit_result_source"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='finding',
            name='status',
            field=models.CharField(choices=[('open', 'Open'), ('withdrawn', 'Withdrawn by a correction')], default='open', max_length=10),
        ),
        migrations.AddField(
            model_name='finding',
            name='withdrawn_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='finding',
            name='withdrawn_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='finding',
            name='withdrawn_reason',
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AddField(
            model_name='historicalfinding',
            name='status',
            field=models.CharField(choices=[('open', 'Open'), ('withdrawn', 'Withdrawn by a correction')], default='open', max_length=10),
        ),
        migrations.AddField(
            model_name='historicalfinding',
            name='withdrawn_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='historicalfinding',
            name='withdrawn_by',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='historicalfinding',
            name='withdrawn_reason',
            field=models.CharField(blank=True, max_length=300),
        ),
    ]

"""Learning's emails move to the outbox (core.Alert): the claim fields and the reminder
rows go. Emails already sent are first recorded as sent alerts under the keys the new
code uses, so none is sent a second time; their text was not kept, and the placeholder
says so."""

from django.db import migrations

NOTE = "Sent before emails went through the outbox; the text of this email was not kept."


def record_sent_emails(apps, schema_editor):
    Alert = apps.get_model("core", "Alert")
    Acknowledgement = apps.get_model("learning", "Acknowledgement")
    Reminder = apps.get_model("learning", "AcknowledgementReminder")
    LearningReview = apps.get_model("learning", "LearningReview")
    User = apps.get_model("plans", "User")
    emails = dict(User.objects.values_list("pk", "email"))

    def sent(kind, key, to, when, subject):
        return Alert(
            kind=kind,
            key=key,
            recipients=[address for address in to if address],
            subject=subject,
            body_text=NOTE,
            status="sent",
            attempts=1,
            created_at=when,
            next_attempt_at=when,
            sent_at=when,
        )

    alerts = [
        sent(
            "learning-shared",
            f"learning-shared:{pk}",
            [emails.get(manager_id, "")],
            when,
            "Please read (sent before the outbox)",
        )
        for pk, manager_id, when in Acknowledgement.objects.filter(
            notified_at__isnull=False
        ).values_list("pk", "manager_id", "notified_at")
    ]
    alerts += [
        sent(
            "learning-reminder",
            f"learning-reminder:{ack_id}:{period}",
            [emails.get(manager_id, "")],
            when,
            "Reminder (sent before the outbox)",
        )
        for ack_id, period, manager_id, when in Reminder.objects.filter(
            sent_at__isnull=False
        ).values_list("acknowledgement_id", "period", "acknowledgement__manager_id", "sent_at")
    ]
    alerts += [
        sent(
            "learning-review-due",
            f"learning-review-due:{pk}",
            [],
            when,
            "Learning review due (sent before the outbox)",
        )
        for pk, when in LearningReview.objects.filter(notified_at__isnull=False).values_list(
            "pk", "notified_at"
        )
    ]
    Alert.objects.bulk_create(alerts, batch_size=500, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("learning", "0001_initial"),
        ("core", "0002_alert"),
        ("plans", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(record_sent_emails, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name="historicalacknowledgementreminder",
            name="acknowledgement",
        ),
        migrations.RemoveField(
            model_name="historicalacknowledgementreminder",
            name="history_user",
        ),
        migrations.RemoveField(
            model_name="acknowledgement",
            name="notified_at",
        ),
        migrations.RemoveField(
            model_name="learningreview",
            name="notified_at",
        ),
        migrations.DeleteModel(
            name="AcknowledgementReminder",
        ),
        migrations.DeleteModel(
            name="HistoricalAcknowledgementReminder",
        ),
    ]

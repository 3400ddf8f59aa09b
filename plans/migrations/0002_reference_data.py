"""CQC quality statements (single assessment framework) and the fundamental-standard
regulations (Health and Social Care Act 2008 (Regulated Activities) Regulations 2014).
Reference data every installation needs, not demo data."""

from django.db import migrations

QUALITY_STATEMENTS = {
    "safe": [
        "Learning culture", "Safe systems, pathways and transitions", "Safeguarding",
        "Involving people to manage risks", "Safe environments", "Safe and effective staffing",
        "Infection prevention and control", "Medicines optimisation",
    ],
    "effective": [
        "Assessing needs", "Delivering evidence-based care and treatment",
        "How staff, teams and services work together", "Supporting people to live healthier lives",
        "Monitoring and improving outcomes", "Consent to care and treatment",
    ],
    "caring": [
        "Kindness, compassion and dignity", "Treating people as individuals",
        "Independence, choice and control", "Responding to people's immediate needs",
        "Workforce wellbeing and enablement",
    ],
    "responsive": [
        "Person-centred care", "Care provision, integration and continuity", "Providing information",
        "Listening to and involving people", "Equity in access", "Equity in experiences and outcomes",
        "Planning for the future",
    ],
    "well_led": [
        "Shared direction and culture", "Capable, compassionate and inclusive leaders",
        "Freedom to speak up", "Workforce equality, diversity and inclusion",
        "Governance, management and sustainability", "Partnerships and communities",
        "Learning, improvement and innovation", "Environmental sustainability",
    ],
}

REGULATIONS = {
    9: "Person-centred care",
    10: "Dignity and respect",
    11: "Need for consent",
    12: "Safe care and treatment",
    13: "Safeguarding service users from abuse and improper treatment",
    14: "Meeting nutritional and hydration needs",
    15: "Premises and equipment",
    16: "Receiving and acting on complaints",
    17: "Good governance",
    18: "Staffing",
    19: "Fit and proper persons employed",
    20: "Duty of candour",
}


def load(apps, schema_editor):
    QualityStatement = apps.get_model("plans", "QualityStatement")
    Regulation = apps.get_model("plans", "Regulation")
    for key_question, names in QUALITY_STATEMENTS.items():
        for name in names:
            QualityStatement.objects.get_or_create(key_question=key_question, name=name)
    for number, title in REGULATIONS.items():
        Regulation.objects.get_or_create(number=number, defaults={"title": title})


class Migration(migrations.Migration):
    dependencies = [("plans", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]

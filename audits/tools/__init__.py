"""Audit tools: question sets run against a sample of records, record by record, whose
scores feed indicators' results (see ``models``, ``services`` and README "Audit tools")."""

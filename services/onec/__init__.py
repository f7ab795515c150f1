"""The onec service: 1C:Accounting exchange (versions, import/export jobs, exchange log, CommerceML
HTTP protocol) and CSV import/export."""

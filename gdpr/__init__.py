"""The GDPR toolkit: data subject requests handled within their legal deadlines (Art. 12),
erasure by crypto-shredding unless a legal claim, an accounting duty or a legal hold still
keeps the data (Art. 17(3)), retention schedules from ``policies/retention.yaml``, and the
72-hour breach clock (Art. 33); the date arithmetic is pure and lives in
:mod:`gdpr.deadlines` and :mod:`gdpr.retention`."""

"""The pure ranking core: scoring, filtering, diversity, fallbacks and paging. No I/O here."""

"""Silver tables: bronze rows typed, cleansed, deduplicated, PII-protected, with CDC applied."""

"""Scheduled, query-based extraction for databases without log-based CDC."""

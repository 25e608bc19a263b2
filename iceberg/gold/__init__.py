"""Gold tables: business aggregates over silver, refreshed only where silver changed."""

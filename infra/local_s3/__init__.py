"""The embedded stack's local S3: objects on disk, listings from an in-memory index."""

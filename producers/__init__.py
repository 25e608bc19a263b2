"""Synthetic bank producers. A fresh mypyc build of the hot path is used when present (see native)."""

from producers import native as _native

_native.activate(__path__)

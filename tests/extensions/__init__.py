"""Tests for ferrows.extensions."""

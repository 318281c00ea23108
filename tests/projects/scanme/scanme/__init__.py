"""A small project for failpath's static scan; every point and handler is listed in the test."""

from .store import save_atomic as save_atomic

"""A tiny package around the C module _memext (the memory sweep's corpus)."""

from memext._memext import apply, build_list, checksum, join_words, pair, scale, squares

__all__ = ["apply", "build_list", "checksum", "join_words", "pair", "scale", "squares"]

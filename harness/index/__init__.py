"""Indexes a retriever searches: token vectors of a corpus, stored once and memory-mapped."""

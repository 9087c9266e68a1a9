"""Parsers and writers for the file formats of the field, apart from any benchmark definition."""

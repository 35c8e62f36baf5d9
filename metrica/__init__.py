"""Metrica: anonymous retail foot-traffic counting from existing CCTV cameras."""

__version__ = "0.1.0"

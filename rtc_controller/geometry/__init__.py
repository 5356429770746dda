"""Geometry: the bottom floor. Imports only NumPy; every layer above may use it."""

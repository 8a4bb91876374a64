"""aniworldd: keeps an anime/series library complete from aniworld.to and s.to."""

__version__ = "0.1.0"

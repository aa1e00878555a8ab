"""mikupal: raw video in, emotional speech dataset out."""

__version__ = "0.1.0"

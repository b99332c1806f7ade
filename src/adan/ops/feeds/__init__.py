"""Bar feeds for ``trade.py``: where closed bars come from (a file replayed, an exchange)."""

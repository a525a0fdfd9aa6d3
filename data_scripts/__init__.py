"""Scripts that fetch the data sets used by srlib (see download.py)."""

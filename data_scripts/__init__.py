"""The command-line entry point for the data sets (download.py); the code lives in srlib.datasets."""

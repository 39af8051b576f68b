"""The systems the HTTP benchmark compares, on the same templates and the same data."""

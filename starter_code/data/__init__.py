"""Datasets, transforms, downloads and class statistics."""

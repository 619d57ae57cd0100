"""Saving and loading whole datasets. (Placeholder format: pickle; the storage helper replaces it.)"""
from posepile.util import fileio


def save_dataset(dataset, path):
    fileio.save_pickle(dataset, path)


def load_dataset(path, mmap=True):
    return fileio.load_pickle(path)

"""Builds memext._memext (``python setup.py build_ext --inplace``)."""

from setuptools import Extension, setup

setup(name="memext", version="0.1", package_dir={"": "src"}, packages=["memext"],
      ext_modules=[Extension("memext._memext", ["src/memext/_memext.c"])])

"""Build hook for the optional compiled accelerator (metadata is in pyproject.toml).

``socketwire._speedups`` is optional: where no C compiler is available the build
goes on without it and the pure-Python code paths are used.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("socketwire._speedups", ["src/socketwire/_speedups.c"], optional=True),
    ]
)

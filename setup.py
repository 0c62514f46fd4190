"""Build hook for the optional compiled accelerators (metadata is in pyproject.toml).

``socketwire._speedups`` (the sans-I/O core's helpers) and ``socketwire._fanout``
(the broadcast's write loop) are optional: where no C compiler is available the
build goes on without them and the pure-Python code paths are used.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("socketwire._speedups", ["src/socketwire/_speedups.c"], optional=True),
        Extension("socketwire._fanout", ["src/socketwire/_fanout.c"], optional=True),
    ]
)

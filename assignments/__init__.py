"""rlkit's exercise package.

``solutions/`` holds the reference implementations, the single source of every
exercise; ``assignments/`` holds the student stubs that ``tools.make_assignments``
generates from them (each marked solution region becomes its TODO line).
Exercises import each other relatively (``from .ex3_baseline import compute_gae``),
so both packages work the same way.
"""

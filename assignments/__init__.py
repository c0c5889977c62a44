"""Reference solutions of rlkit: the single source of every exercise.

Student stubs in ``assignments/`` are generated from these files by
``tools.make_assignments``, which replaces every ``### BEGIN SOLUTION`` ...
``### END SOLUTION`` region with its ``# TODO:`` line and
``raise NotImplementedError``. Exercises import each other relatively
(``from .ex3_baseline import compute_gae``) so a stub package works the same way.
"""

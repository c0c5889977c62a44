"""The notebook tools, one job per module (``tools/make_notebooks.py`` re-exports them).

* :mod:`.sources`: read the reference module and the hidden suite of an exercise;
* :mod:`.prose`: the course prose and quick checks, data files read by a small reader;
* :mod:`.build`: build an exercise's nbgrader source notebook;
* :mod:`.extract`: a submitted notebook back to a plain module;
* :mod:`.bundle`: rlkit_common.zip, the student bundle and its leak scan;
* :mod:`.grade`: the isolated cross-check of nbgrader's grades (through ``autograder.batch``);
* :mod:`.cli`: the command line (``python -m tools.notebooks`` or ``python -m tools.make_notebooks``).
"""

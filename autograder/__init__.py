"""rlkit autograder: trusted core (sandbox, worker, runner, reports) and one hidden suite per exercise."""

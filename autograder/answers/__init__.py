"""Answer code of the hidden suites: the reference functions and every named-mistake variant.

Trusted, and never shipped to students: a suite reaches these modules only
through ``autograder.oracle.answers(name)``, which runs them live in the full
kit and replays their recorded outputs in the student kit.
"""

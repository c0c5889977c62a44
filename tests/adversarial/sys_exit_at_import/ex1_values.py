# sys.exit(0) while the module is imported: nothing can be graded, score 0,
# and a zero exit status must not look like success.
import sys as _sys

print("15/15 all tests passed")
_sys.exit(0)

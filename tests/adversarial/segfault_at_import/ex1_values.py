# SIGSEGV while the module is imported: score 0, and the batch goes on.
import faulthandler as _faulthandler

_faulthandler._sigsegv()

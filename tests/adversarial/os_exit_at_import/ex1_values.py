# os._exit(0) while the module is imported (no exception, no cleanup): score 0.
import os as _os

print('{"total": 15, "max_total": 15}', flush=True)
_os._exit(0)

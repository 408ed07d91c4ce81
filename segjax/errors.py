"""The exception for bad input from the user: a config value, a file, a flag.

The command line prints its message alone, without a traceback; the message names the key, file or
value and says what to do.
"""


class InputError(ValueError):
  """Bad input that the user can fix; the message says how."""

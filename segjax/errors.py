"""The exception for bad input from the user: a config value, a file, a flag.

The command line prints its message alone, without a traceback; the message names the key, file or
value and says what to do.
"""


class InputError(ValueError):
  """Bad input that the user can fix; the message says how."""


class NonFiniteError(FloatingPointError):
  """The training loss or gradients became NaN or infinite (`config.train.on_nonfinite="stop"`);
  the message names the step, the loss terms and the batch's examples."""


class Interrupted(Exception):
  """Training stopped on SIGTERM or SIGINT after saving a checkpoint; the message says how to
  resume, `signal` is the signal's number."""

  def __init__(self, message: str, signal: int):
    super().__init__(message)
    self.signal = signal

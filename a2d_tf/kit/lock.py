"""One run per output folder: an advisory lock file with its holder's name.

`RunLock(directory)` holds `<directory>/.a2d.lock` for as long as a run
writes there. The file is locked with `fcntl.flock`, which the kernel
releases when the holding process ends in any way (`kill -9` included), so
a lock can never outlive its run; the file's content (pid, host, start
time) only says who holds it:

* A second run into the same folder fails at once with `RunLockedError`,
  whose one-line message names the holder's pid, host and start time.
* A run that finds the file unlocked but not empty (its holder died
  without releasing it) takes it over and logs a warning naming the dead
  run.
* A clean release empties the file (and keeps it: deleting a lock file
  that another process may have just opened would let two runs in).

`flock` locks are local to one machine: two hosts writing one folder over
NFS are not kept apart.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Callable

LOCK_FILE = ".a2d.lock"


class RunLockedError(OSError):
  """Another live run holds the folder's lock."""


class RunLock:
  """The lock of one output folder; a context manager.

  Args:
    directory: The folder (created).
    log: Callable receiving a warning line when a dead run's lock is taken
      over (default: `logging.warning`).
  """

  def __init__(self, directory: str, log: Callable[[str], None] | None = None):
    self.directory = directory
    self.path = os.path.join(directory, LOCK_FILE)
    self.log = log or logging.warning
    self._fd: int | None = None

  def acquire(self) -> RunLock:
    """Takes the lock.

    Raises:
      RunLockedError: A live run holds it (the message names its pid).
    """
    os.makedirs(self.directory, exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _read_holder(fd, wait=True)
      os.close(fd)
      raise RunLockedError(
        f"{self.directory} is in use by another run "
        f"({_describe(holder)}; lock file {self.path}): wait for it to end "
        "or write to another folder."
      ) from None
    previous = _read_holder(fd, wait=False)
    if previous:
      self.log(
        f"took over the lock of {self.directory} from a run that is no "
        f"longer running ({_describe(previous)})"
      )
    holder = {
      "pid": os.getpid(),
      "host": socket.gethostname(),
      "started": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
    self._fd = fd
    return self

  def release(self) -> None:
    """Empties the lock file and releases it (idempotent)."""
    if self._fd is None:
      return
    os.ftruncate(self._fd, 0)
    fcntl.flock(self._fd, fcntl.LOCK_UN)
    os.close(self._fd)
    self._fd = None

  def __enter__(self) -> RunLock:
    # A lock taken by `acquire()` is kept, not taken again: a second
    # `flock` from this process on another descriptor would be refused.
    return self if self._fd is not None else self.acquire()

  def __exit__(self, *exc_info) -> None:
    self.release()


def _read_holder(fd: int, wait: bool) -> dict:
  """The holder recorded in the lock file ({} when empty or unreadable).

  With `wait`, gives a holder that has just taken the lock a second to
  write its name.
  """
  for _ in range(10 if wait else 1):
    raw = os.pread(fd, 4096, 0).decode("utf-8", errors="replace").strip()
    if raw:
      try:
        holder = json.loads(raw)
      except json.JSONDecodeError:
        return {"raw": raw[:80]}
      return holder if isinstance(holder, dict) else {"raw": raw[:80]}
    if wait:
      time.sleep(0.1)
  return {}


def _describe(holder: dict) -> str:
  if "pid" not in holder:
    return "pid unknown"
  return (
    f"pid {holder['pid']} on {holder.get('host', '?')}, started "
    f"{holder.get('started', '?')}"
  )

"""Test order for the parallel run: the files with end-to-end tests first.

`pytest -n 2 --dist loadfile` hands whole files to the two workers in
collection order, as each becomes free. Alphabetical order put the longest
files (minutes each) last, so one worker ran the last of them while the
other sat idle. Files with a `slow` test first, then the rest, each group
in its usual order (the sort is stable), keeps both busy to the end; the
order of tests within a file is unchanged.
"""


def pytest_collection_modifyitems(config, items):
  del config  # unused
  slow = {i.path for i in items if i.get_closest_marker("slow") is not None}
  items.sort(key=lambda item: item.path not in slow)

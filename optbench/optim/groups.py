"""Parameter groups that count their changes, and the list that holds them.

:meth:`Optimizer.step <optbench.optim.Optimizer.step>` compares version numbers to see that no
option and no group changed since the previous step, instead of comparing every option's value.
Comparing values cost 0.6 us per step with hot caches and 15 to 20 us when a forward and
backward pass had evicted the interpreter's data between steps (SGD and Adam, 1e3 to 1e5
elements, float32).
"""


class ParamGroup(dict):
    """One parameter group: a dict (``param_groups[i]``, as in torch) that counts its changes.

    Every way of changing the dict adds 1 to ``version``. Its ``"params"`` is a tuple: a new
    list of arrays is assigned, never appended to in place, so that the optimizer sees the
    change. A change inside another value (a list of betas modified in place) is not a change
    of the dict either: assign a new value instead.
    """

    __slots__ = ("version",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.version = 0

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.version += 1

    def __delitem__(self, key):
        super().__delitem__(key)
        self.version += 1

    def __ior__(self, other):
        self.update(other)
        return self

    def update(self, *args, **kwargs):
        super().update(*args, **kwargs)
        self.version += 1

    def setdefault(self, key, default=None):
        self.version += 1
        return super().setdefault(key, default)

    def pop(self, key, *default):
        self.version += 1
        return super().pop(key, *default)

    def popitem(self):
        self.version += 1
        return super().popitem()

    def clear(self):
        super().clear()
        self.version += 1

    def __reduce__(self):
        return (type(self), (dict(self),))


class GroupList(list):
    """``optimizer.param_groups``: a list that counts its changes (groups added, removed,
    replaced or reordered), so that the optimizer re-reads its groups after any of them."""

    __slots__ = ("version",)

    def __init__(self, *args):
        super().__init__(*args)
        self.version = 0

    def _changed(self, result=None):
        self.version += 1
        return result


def _counting(name):
    method = getattr(list, name)

    def counted(self, *args, **kwargs):
        return self._changed(method(self, *args, **kwargs))

    counted.__name__ = name
    return counted


for _name in (
    "__setitem__",
    "__delitem__",
    "__iadd__",
    "__imul__",
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "clear",
    "sort",
    "reverse",
):
    setattr(GroupList, _name, _counting(_name))
GroupList.__reduce__ = lambda self: (GroupList, (list(self),))

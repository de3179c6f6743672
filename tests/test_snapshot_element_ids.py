"""Element ids kept as a shared prefix and numbers (:class:`gnnsec.snapshot.ElementIds`) read back as the
strings Neo4j gave, in any order or subset; ids of another shape stay strings."""

from __future__ import annotations

import pickle

import numpy as np

from gnnsec.snapshot import ElementIds, element_ids_at

PREFIX = "5:d2d35251-23e9-4a1c-ba50-ca97b3f4c4db:"


def test_ids_sharing_a_prefix_are_compacted_and_read_back_unchanged() -> None:
    ids = [f"{PREFIX}{n}" for n in (1131, 882, 0, 2**40)]
    compact = ElementIds.of(ids)
    assert isinstance(compact, ElementIds)
    assert list(compact) == ids
    assert compact == ids
    assert compact[1] == ids[1] and compact[-1] == ids[-1]
    assert list(compact[1:3]) == ids[1:3]
    assert list(element_ids_at(compact, np.array([3, 0]))) == [ids[3], ids[0]]
    assert pickle.loads(pickle.dumps(compact)) == compact


def test_ids_of_another_shape_stay_strings() -> None:
    for ids in ([f"{PREFIX}1", "4:other-db:2"], [f"{PREFIX}1", f"{PREFIX}x7"], ["17", "18"]):
        kept = ElementIds.of(ids)
        assert kept == ids and not isinstance(kept, ElementIds)
        assert element_ids_at(kept, np.array([1])) == [ids[1]]
    assert ElementIds.of([]) == []
    assert element_ids_at([], np.array([], dtype=np.int64)) == []

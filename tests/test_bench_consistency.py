"""The checker the drills, the soak and the peer bench judge freshness and durability by."""

from bench.consistency import History, StaleRead


def test_a_read_older_than_an_acknowledged_write_is_stale():
    history = History()
    history.acknowledged(7, 2)
    before = history.newest(7)

    assert history.served(7, before, 2)
    assert not history.served(7, before, 1)
    assert history.stale == [StaleRead(item_id=7, served=1, acknowledged=2)]
    assert history.reads == 2


def test_a_write_acknowledged_after_the_read_was_sent_does_not_make_it_stale():
    history = History()
    before = history.newest(7)
    history.acknowledged(7, 3)

    assert history.served(7, before, 1)


def test_an_item_served_after_its_delete_was_acknowledged_is_stale():
    history = History()
    history.acknowledged(7, 4)
    history.acknowledged_delete(7)
    before = history.newest(7)

    assert history.served(7, before, None)
    assert not history.served(7, before, 4)


def test_acknowledgements_keep_the_newest_version():
    history = History()
    history.acknowledged(7, 5, {"name": "five"})
    history.acknowledged(7, 4, {"name": "four"})  # an answer that arrived late

    assert history.newest(7) == 5
    assert history.lost_writes({7: (5, {"name": "five"})}) == []


def test_lost_writes_are_missing_rows_older_rows_and_other_content():
    history = History()
    for item_id in (1, 2, 3, 4, 5):
        history.acknowledged(item_id, 2, {"name": f"n{item_id}"})
    history.acknowledged_delete(6)
    rows = {
        1: (2, {"name": "n1"}),  # as written
        2: (3, {"name": "other"}),  # a newer write whose answer was lost: not lost
        3: (1, {"name": "n3"}),  # older than acknowledged
        4: (2, {"name": "changed"}),  # same version, other content
        6: (1, {}),  # deleted, still there
    }

    assert history.lost_writes(rows) == [3, 4, 5, 6]

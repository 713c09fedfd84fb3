import pytest

from mgm.schedules.reuse import ReusePattern


def test_kinds_pattern():
    assert ReusePattern(2, 1).kinds(7) == (True, True, True, False, True, False, True)
    assert ReusePattern(1, 3).kinds(6) == (True, True, False, False, False, True)
    assert ReusePattern(1, 0).kinds(4) == (True,) * 4
    assert ReusePattern(5, 2).kinds(3) == (True,) * 3
    assert ReusePattern(2, 1).num_full(12) == 7


@pytest.mark.parametrize("kwargs, match", [({"full_first": 0}, "full_first=0"), ({"cheap_per_full": -1}, "cheap")])
def test_bad_patterns(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReusePattern(**kwargs)

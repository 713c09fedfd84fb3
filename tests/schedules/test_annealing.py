import pytest

from mgm.schedules import choice_temperature_at, guidance_scale_at


def test_choice_temperature_decays_to_zero():
    values = [choice_temperature_at(4.5, t, 10) for t in range(10)]
    assert values[-1] == 0 and all(a > b for a, b in zip(values, values[1:]))
    assert all(choice_temperature_at(2.0, t, 5, "constant") == 2.0 for t in range(5))


@pytest.mark.parametrize("annealing", ["linear", "cosine"])
def test_guidance_ramps_up_to_scale(annealing):
    values = [guidance_scale_at(3.0, t, 8, annealing) for t in range(8)]
    assert values[-1] == pytest.approx(3.0) and all(a < b for a, b in zip(values, values[1:]))


def test_unknown_annealing():
    with pytest.raises(ValueError, match="guidance_annealing='wobbly'"):
        guidance_scale_at(1.0, 0, 4, "wobbly")

"""Motions7's captions: a few templates per action, with variety in wording.

``_caption(p, i, choice)`` words clip ``i`` of ``MotionParameters`` ``p`` ("a person walks forward
slowly.", "someone waves with the right hand."): the action's template, its direction, pace (which
third of the action's speed range), side, and number of jumps or kicks; the random integers
``choice`` pick among the wordings.
"""

from __future__ import annotations

import math

from mgm.data.motions.params import CLASSES, DIRECTIONS, RUN_SPEEDS, SIDES, WALK_SPEEDS, MotionParameters

_SPEED_WORDS = {
    "walk": (("slowly", "at a slow pace"), ("",), ("quickly", "briskly", "at a fast pace")),
    "run": (("at an easy pace", "slowly"), ("",), ("fast", "quickly")),
}
_DIRECTION_WORDS = {
    "forward": ("forward", "forwards", "straight ahead"),
    "backward": ("backward", "backwards"),
    "left": ("to the left", "sideways to the left", "to their left"),
    "right": ("to the right", "sideways to the right", "to their right"),
}
_TIMES = {1: "once", 2: "twice", 3: "three times"}
_TEMPLATES = {
    "walk": (
        "a person walks {direction} {speed}.",
        "someone is walking {direction} {speed}.",
        "a person takes several steps {direction} {speed}.",
        "the person walks {speed} {direction}.",
    ),
    "run": ("a person runs {direction} {speed}.", "someone is jogging {direction} {speed}.", "a man runs {direction}."),
    "jump": (
        "a person jumps {direction} {times}.",
        "someone jumps {direction} {times}.",
        "a person leaps {direction} {times}.",
    ),
    "wave": (
        "someone waves with the {side} hand.",
        "a person raises their {side} hand above the head and waves.",
        "a person waves their {side} hand over their head.",
    ),
    "turn": (
        "a person turns {around}to the {side}.",
        "someone turns {around}to their {side} in place.",
        "a person turns {side} on the spot.",
    ),
    "sit": (
        "a person squats down and stays down.",
        "someone crouches down and holds the position.",
        "a person lowers into a squat and holds it.",
        "a person sits down into a squat.",
    ),
    "kick": (
        "a person kicks with the {side} leg {times}.",
        "someone kicks forward with their {side} foot {times}.",
        "a person does a {side} kick {times}.",
    ),
}


def _caption(p: MotionParameters, i: int, choice: list[int]) -> str:
    """Caption of clip ``i``; ``choice`` are random integers that pick the wording."""
    label = CLASSES[int(p.labels[i])]
    pick = lambda options, k: options[choice[k] % len(options)]  # noqa: E731
    words = {"times": _TIMES.get(int(p.repeats[i]), ""), "around": "", "speed": "", "direction": "", "side": ""}
    if int(p.side[i]) >= 0:
        words["side"] = SIDES[int(p.side[i])]
    if label in ("walk", "run"):
        direction = DIRECTIONS[int(p.direction[i])]
        words["direction"] = pick(_DIRECTION_WORDS[direction], 1)
        low, high = (WALK_SPEEDS if label == "walk" else RUN_SPEEDS)[direction != "forward"]
        pace = min(2, int(3 * (float(p.speed[i]) - low) / (high - low)))  # slow, normal, fast thirds
        words["speed"] = pick(_SPEED_WORDS[label][pace], 2)
    elif label == "jump":
        words["direction"] = "forward" if int(p.direction[i]) == 0 else pick(("in place", "up and down"), 1)
    elif label == "turn":
        words["side"] = DIRECTIONS[int(p.direction[i])]
        words["around"] = "around " if abs(float(p.turn_angle[i])) > math.radians(150) else ""
    caption = pick(_TEMPLATES[label], 0).format(**words)
    return " ".join(caption.split()).replace(" .", ".")

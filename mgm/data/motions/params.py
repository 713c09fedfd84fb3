"""Motions7's per-clip choices: the action vocabulary, ``MotionParameters`` and their seeded draw.

``motion_parameters(num, seed, labels, seconds)`` returns the choices ``make_motions`` animates
(action, duration, heading and start, direction of travel, side, speed, arm swing, gait phase,
timing of the action, jump, kick, wave and squat sizes), all tensors [M] (M clips). ``_draw`` takes
them from a ``torch.Generator`` in a fixed order, so the same seed gives the same clips: change the
order of the draws and every clip changes. The jump and kick timings live here as well, since the
draw uses them to fit the number of jumps or kicks into the clip (``mgm.data.motions.animate``
shares them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mgm.data.motion_features import FPS

CLASSES = ("walk", "run", "jump", "wave", "turn", "sit", "kick")
NUM_CLASSES = len(CLASSES)
DIRECTIONS = ("forward", "backward", "left", "right")  # relative to the clip's initial facing
_DIRECTION_ANGLES = (0.0, math.pi, math.pi / 2, -math.pi / 2)  # yaw of each direction from the facing
SIDES = ("left", "right")
MIN_SECONDS, MAX_SECONDS = 2.0, 6.0  # the range durations are drawn from
LONGEST_SECONDS = 9.8  # 196 frames, HumanML3D's longest clip: the most ``seconds`` may ask for

WALK_SPEEDS = ((0.6, 1.6), (0.4, 1.0))  # m/s: (forward), (backward, left, right)
RUN_SPEEDS = ((2.2, 3.6), (2.0, 2.8))

# Timing of a jump (crouch, flight, landing, rest) and a kick (kick, rest), s.
_JUMP_CROUCH_SECONDS, _JUMP_LAND_SECONDS, _JUMP_REST = 0.45, 0.45, 0.2
_KICK_SECONDS, _KICK_REST = 1.1, 0.2


def _jump_cycle(flight_time: torch.Tensor | float):
    return _JUMP_CROUCH_SECONDS + flight_time + _JUMP_LAND_SECONDS + _JUMP_REST


@dataclass(frozen=True)
class MotionParameters:
    """The per-clip choices behind a batch of Motions7 clips (all tensors [M]; float64 unless said).

    Fields that do not apply to a clip's action are 0 (or -1 for the index fields).
    """

    labels: torch.Tensor  # LongTensor, index into CLASSES
    seconds: torch.Tensor  # clip duration; the clip has round(seconds * FPS) + 1 joint frames
    heading: torch.Tensor  # initial facing yaw in the world, radians
    start: torch.Tensor  # [M, 2] initial root x, z in the world, m
    direction: torch.Tensor  # LongTensor, index into DIRECTIONS (walk, run, jump forward, turn), else -1
    side: torch.Tensor  # LongTensor, index into SIDES: the waving hand or kicking leg, else -1
    speed: torch.Tensor  # m/s of root travel (walk, run)
    arm_swing: torch.Tensor  # 0.4-1: how far the arms swing (walk, run, jump) or reach forward (sit)
    phase: torch.Tensor  # gait phase at t = 0 (walk, run), radians; also phases the idle sway
    onset: torch.Tensor  # s: when the action starts (jump, wave, turn, sit, kick)
    ramp: torch.Tensor  # s: how long raising the hand (wave), turning (turn) or squatting down (sit) takes
    repeats: torch.Tensor  # LongTensor: number of jumps or kicks
    turn_angle: torch.Tensor  # signed yaw change, radians, positive to the left (turn)
    squat_angle: torch.Tensor  # thigh angle from vertical at the deepest point, radians (sit, jump)
    jump_distance: torch.Tensor  # m forward per jump (0: in place)
    flight_time: torch.Tensor  # s in the air per jump
    wave_rate: torch.Tensor  # Hz of the forearm's swing (wave)
    wave_amplitude: torch.Tensor  # radians of the forearm's swing (wave)
    kick_angle: torch.Tensor  # hip flexion at the top of a kick, radians


def _check_labels(num: int, labels) -> torch.Tensor | None:
    if labels is None:
        return None
    if isinstance(labels, (list, tuple)) and all(isinstance(label, str) for label in labels):
        unknown = [label for label in labels if label not in CLASSES]
        if unknown:
            raise ValueError(f"labels: got unknown action {unknown[0]!r}; expected one of {CLASSES}")
        labels = [CLASSES.index(label) for label in labels]
    labels = torch.as_tensor(labels)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.shape != (num,):
        raise ValueError(
            f"labels: got a {labels.dtype} tensor of shape {tuple(labels.shape)}; expected {num} class ids or names"
        )
    out_of_range = (labels < 0) | (labels >= NUM_CLASSES)
    if out_of_range.any():
        raise ValueError(
            f"labels: got class id {labels[out_of_range][0].item()}; expected ids in [0, {NUM_CLASSES}) for {CLASSES}"
        )
    return labels.long()


def _check_arguments(num: int, seconds: float | None) -> None:
    if num < 0:
        raise ValueError(f"num={num}: expected a number of clips >= 0")
    if seconds is not None and not MIN_SECONDS <= seconds <= LONGEST_SECONDS:
        raise ValueError(f"seconds={seconds}: expected a duration from {MIN_SECONDS} to {LONGEST_SECONDS} s, or None")


def _draw(num: int, labels: torch.Tensor | None, seconds: float | None, g: torch.Generator) -> MotionParameters:
    rand = lambda *shape: torch.rand(*(shape or (num,)), generator=g, dtype=torch.float64)  # noqa: E731
    uniform = lambda low, high: low + (high - low) * rand()  # noqa: E731
    if labels is None:
        labels = torch.randint(NUM_CLASSES, (num,), generator=g)
    is_ = {name: labels == CLASSES.index(name) for name in CLASSES}
    duration = uniform(MIN_SECONDS, MAX_SECONDS) if seconds is None else torch.full((num,), float(seconds))
    duration = (duration * FPS).round() / FPS  # a whole number of frames
    heading, start = uniform(0, 2 * math.pi), 4 * rand(num, 2) - 2

    # Directions: walks half forward, runs mostly forward, jumps forward or in place, turns left or right.
    u = rand()
    walk_direction = torch.where(u < 0.5, 0, 1 + ((u - 0.5) * 6).long().clamp(max=2))
    run_direction = torch.where(u < 0.7, 0, 1 + ((u - 0.7) * 10).long().clamp(max=2))
    direction = torch.full((num,), -1, dtype=torch.long)
    direction = torch.where(is_["walk"], walk_direction, direction)
    direction = torch.where(is_["run"], run_direction, direction)
    direction = torch.where(is_["jump"] & (u < 0.5), 0, direction)
    direction = torch.where(is_["turn"], torch.where(u < 0.5, 2, 3), direction)
    side = torch.where(is_["wave"] | is_["kick"], (rand() < 0.5).long(), -1)

    forward = direction == 0
    walk_speed = torch.where(forward, uniform(*WALK_SPEEDS[0]), uniform(*WALK_SPEEDS[1]))
    run_speed = torch.where(forward, uniform(*RUN_SPEEDS[0]), uniform(*RUN_SPEEDS[1]))
    speed = torch.where(is_["walk"], walk_speed, torch.where(is_["run"], run_speed, 0.0))

    onset = uniform(0.1, 0.4)
    turn_ramp = torch.minimum(uniform(0.8, 2.0), duration - onset - 0.2)
    ramp = torch.where(is_["wave"], uniform(0.3, 0.4), torch.where(is_["sit"], uniform(0.6, 1.0), 0.0))
    ramp = torch.where(is_["turn"], turn_ramp, ramp)
    sign = torch.where(direction == 2, 1.0, -1.0)
    turn_angle = torch.where(is_["turn"], sign * uniform(math.radians(90), math.radians(180)), 0.0)
    squat_angle = torch.where(
        is_["sit"], uniform(math.radians(55), math.radians(75)), uniform(math.radians(30), math.radians(45))
    )
    squat_angle = torch.where(is_["sit"] | is_["jump"], squat_angle, 0.0)
    flight_time = torch.where(is_["jump"], uniform(0.40, 0.50), 0.0)
    jump_distance = torch.where(is_["jump"] & (direction == 0), uniform(0.3, 0.8), 0.0)
    # As many jumps / kicks as fit after the onset (at least one), drawn uniformly.
    fit_jumps = ((duration - onset - 0.1) / _jump_cycle(flight_time.clamp_min(0.4))).floor().clamp(1, 3)
    fit_kicks = ((duration - onset - 0.1) / (_KICK_SECONDS + _KICK_REST)).floor().clamp(1, 2)
    fit = torch.where(is_["jump"], fit_jumps, torch.where(is_["kick"], fit_kicks, 0.0))
    repeats = (1 + (rand() * fit).floor().clamp(max=fit - 1)).long() * (is_["jump"] | is_["kick"])
    return MotionParameters(
        labels=labels,
        seconds=duration,
        heading=heading,
        start=start,
        direction=direction,
        side=side,
        speed=speed,
        arm_swing=uniform(0.4, 1.0) * ~(is_["wave"] | is_["turn"] | is_["kick"]),
        phase=uniform(0, 2 * math.pi),
        onset=onset * ~(is_["walk"] | is_["run"]),
        ramp=ramp,
        repeats=repeats,
        turn_angle=turn_angle,
        squat_angle=squat_angle,
        jump_distance=jump_distance,
        flight_time=flight_time,
        wave_rate=torch.where(is_["wave"], uniform(1.2, 2.5), 0.0),
        wave_amplitude=torch.where(is_["wave"], uniform(math.radians(25), math.radians(40)), 0.0),
        kick_angle=torch.where(is_["kick"], uniform(math.radians(65), math.radians(95)), 0.0),
    )


def motion_parameters(
    num: int, seed: int = 0, labels: torch.Tensor | None = None, seconds: float | None = None
) -> MotionParameters:
    """The choices ``make_motions(num, seed, labels, seconds)`` makes for its clips."""
    _check_arguments(num, seconds)
    return _draw(num, _check_labels(num, labels), seconds, torch.Generator().manual_seed(seed))

"""Motions7: an embedded, procedurally animated, captioned motion dataset, and its exact checker.

The 22-joint skeleton of ``mgm.data.skeleton`` performs one of seven actions, animated by smooth
joint-angle curves (sines, eased ramps and keyframes) through forward kinematics, then turned into
HumanML3D features by ``extract_features`` so that everything downstream runs the HumanML3D path:

- walk, run: a sinusoidal gait (hips swing along the direction of travel, knees bend in the swing
  phase, arms swing against the legs) at a constant speed, forward, backward, left or right
  (walk 0.6-1.6 m/s forward, 0.4-1.0 m/s otherwise; run 2.2-3.6 m/s forward, 2.0-2.8 otherwise);
- jump: 1 to 3 jumps in place or forward (0.3-0.8 m each): crouch, push off with an arm swing,
  a ballistic flight of 0.4-0.5 s (20-30 cm high), land in a crouch;
- wave: one hand raised above the head, the forearm swinging side to side at 1.2-2.5 Hz;
- turn: turn in place to the left or right by 90-180 degrees, stepping on the spot;
- sit: squat down (thighs 55-75 degrees from vertical) and hold it;
- kick: 1 or 2 forward kicks with the left or right leg.

Every clip also varies in duration (2 to 6 s by default, at 20 fps), starting position and heading
(canonicalised away by feature extraction), arm swing, gait phase, and a small idle sway of spine
and head. The pelvis is lowered or raised each frame so that the lowest foot joint stands on the
floor (plus the flight of a jump or a run), and knees, hips and ankles of a squat keep the feet flat
under the hips. The caption of each clip comes from a few templates per action, with variety in
wording ("a person walks forward slowly.", "someone waves with the right hand.").

Deterministic: the same seed gives the same clips and captions.

Dimension legend: M clips, T joint frames, F = T - 1 feature frames, J = 22 joints, D = 263.

The checker (``classify_motion``, ``classify_direction``) reads joints, or features through
``recover_joints``, so it can judge generated features. It uses a few measurements, each public:
``airborne_height`` (jump), ``root_displacement`` (walk, run and their direction),
``root_height_drop`` (sit), ``kick_height``, ``hand_height`` (wave) and ``yaw_change`` (turn).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from mgm.data.humanml3d import normalise
from mgm.data.motion_features import (
    FEATURE_DIM,
    FPS,
    check_joints,
    extract_features,
    facing_yaw,
    normalisation_statistics,
    recover_joints,
    rotate_y,
    wrap_angle,
)
from mgm.data.skeleton import (
    FOOT_JOINTS,
    JOINT_INDEX,
    NUM_JOINTS,
    REST_OFFSETS,
    axis_angle_to_matrix,
    forward_kinematics,
    rest_pose,
)

CLASSES = ("walk", "run", "jump", "wave", "turn", "sit", "kick")
NUM_CLASSES = len(CLASSES)
DIRECTIONS = ("forward", "backward", "left", "right")  # relative to the clip's initial facing
_DIRECTION_ANGLES = (0.0, math.pi, math.pi / 2, -math.pi / 2)  # yaw of each direction from the facing
SIDES = ("left", "right")
MIN_SECONDS, MAX_SECONDS = 2.0, 6.0  # the range durations are drawn from
LONGEST_SECONDS = 9.8  # 196 frames, HumanML3D's longest clip: the most ``seconds`` may ask for

WALK_SPEEDS = ((0.6, 1.6), (0.4, 1.0))  # m/s: (forward), (backward, left, right)
RUN_SPEEDS = ((2.2, 3.6), (2.0, 2.8))
GRAVITY = 9.81

# Checker thresholds, each halfway (or so) between what the classes it separates produce.
AIRBORNE_HEIGHT = 0.12  # m: jumps lift the lowest foot 0.2-0.3 m, runs 0.04 m, others 0
MOVING_SPEED = 0.25  # m/s of net root travel: walks go at least 0.4, stationary actions 0
RUNNING_SPEED = 1.8  # m/s: walks at most 1.6, runs at least 2.0
SQUAT_DROP = 0.2  # m the root sinks by the last quarter: squats 0.34-0.59, others about 0
KICK_HEIGHT = 0.3  # m above the floor for an ankle ahead of the pelvis: kicks 0.45-0.75, others < 0.1
KICK_REACH = 0.3  # m ahead of the pelvis (facing frame) that makes an ankle a kicking one
HAND_ABOVE_HEAD = 0.05  # m a wrist must be above the head joint to count as raised
WAVE_FRACTION = 0.3  # of the frames with a hand raised: waves at least 0.6, others 0
TURN_ANGLE = math.radians(45)  # net yaw change: turns 90-180 degrees, others about 0
DIRECTION_DISTANCE = 0.2  # m of net travel below which a clip has no direction of travel

_J = JOINT_INDEX
_LEGS = {  # side sign (+1 left, towards +X; -1 right) -> (hip, knee, ankle)
    1: (_J["left_hip"], _J["left_knee"], _J["left_ankle"]),
    -1: (_J["right_hip"], _J["right_knee"], _J["right_ankle"]),
}
_ARMS = {1: (_J["left_shoulder"], _J["left_elbow"]), -1: (_J["right_shoulder"], _J["right_elbow"])}
_LEG_LENGTH = float(-REST_OFFSETS[_J["left_knee"], 1] - REST_OFFSETS[_J["left_ankle"], 1])  # hip to ankle, 0.8 m
_FLOOR_CLEARANCE = float(rest_pose()[list(FOOT_JOINTS), 1].min())  # lowest foot joint at rest: 3 cm


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


@dataclass(frozen=True)
class MotionClips:
    """A batch of Motions7 clips. Padded entries (past a clip's length) are zero."""

    joints: torch.Tensor  # [M, T, J, 3] world joint positions, m
    num_frames: torch.Tensor  # LongTensor[M]: joint frames per clip
    features: torch.Tensor  # [M, T - 1, 263] HumanML3D features (not normalised)
    lengths: torch.Tensor  # LongTensor[M]: feature frames per clip, num_frames - 1
    labels: torch.Tensor  # LongTensor[M], index into CLASSES
    captions: list[str]
    params: MotionParameters


# ----------------------------------------------------------------------------------------------
# Drawing the parameters


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


# ----------------------------------------------------------------------------------------------
# Animation: local joint rotations per frame, then forward kinematics

_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}
_JUMP_CROUCH_SECONDS, _JUMP_LAND_SECONDS, _JUMP_REST = 0.45, 0.45, 0.2
_KICK_SECONDS, _KICK_REST = 1.1, 0.2


def _jump_cycle(flight_time: torch.Tensor | float):
    return _JUMP_CROUCH_SECONDS + flight_time + _JUMP_LAND_SECONDS + _JUMP_REST


def _rotation(axis: str, angle: torch.Tensor) -> torch.Tensor:
    """Rotations [T, 3, 3] about a coordinate axis by ``angle`` [T] radians (right-handed)."""
    return axis_angle_to_matrix(angle[:, None] * torch.tensor(_AXES[axis], dtype=angle.dtype))


def _ease(x: torch.Tensor) -> torch.Tensor:
    """0 before 0, 1 after 1, a half cosine between."""
    return 0.5 - 0.5 * torch.cos(math.pi * x.clamp(0, 1))


def _bump(x: torch.Tensor) -> torch.Tensor:
    """0 outside [0, 1], rising smoothly to 1 at 0.5."""
    return torch.where((x > 0) & (x < 1), torch.sin(math.pi * x) ** 2, 0.0)


def _keyframes(t: torch.Tensor, times: list[float], values: list[float]) -> torch.Tensor:
    """Eased interpolation through (times, values), held constant outside them."""
    out = torch.full_like(t, values[0])
    for (t0, v0), (t1, v1) in zip(zip(times, values), zip(times[1:], values[1:])):
        out = torch.where(t >= t0, v0 + (v1 - v0) * _ease((t - t0) / (t1 - t0)), out)
    return out


class _Pose:
    """Local rotations [T, J, 3, 3] being composed, plus the root's travel, lift and yaw."""

    def __init__(self, t: torch.Tensor):
        self.t = t
        self.local = torch.eye(3, dtype=t.dtype).repeat(len(t), NUM_JOINTS, 1, 1)
        self.travel = torch.zeros(len(t), 2, dtype=t.dtype)  # x, z in the initial facing frame, m
        self.lift = torch.zeros_like(t)  # m above standing on the lowest foot
        self.yaw = torch.zeros_like(t)  # radians from the initial heading

    def rotate(self, joint: int, rotation: torch.Tensor) -> None:
        self.local[:, joint] = self.local[:, joint] @ rotation

    def turn(self, joint: int, axis: str, angle: torch.Tensor | float) -> None:
        self.rotate(joint, _rotation(axis, torch.as_tensor(angle, dtype=self.t.dtype).expand_as(self.t)))

    def squat(self, angle: torch.Tensor) -> None:
        """Both legs bent with feet flat below the hips, thighs ``angle`` from vertical; torso leans forward."""
        for hip, knee, ankle in _LEGS.values():
            self.turn(hip, "x", -angle)
            self.turn(knee, "x", 2 * angle)
            self.turn(ankle, "x", -angle)
        self.turn(_J["spine1"], "x", 0.5 * angle)

    def arm(self, side: int, forward: torch.Tensor | float, elbow: torch.Tensor | float, out: float = 0.14) -> None:
        """Arm of ``side`` raised ``forward`` (radians, negative: backward), elbow bent, ``out`` to the side."""
        shoulder, elbow_joint = _ARMS[side]
        self.turn(shoulder, "z", side * out)
        self.turn(shoulder, "x", -torch.as_tensor(forward, dtype=self.t.dtype))
        self.turn(elbow_joint, "x", -torch.as_tensor(elbow, dtype=self.t.dtype))


def _gait(pose: _Pose, p: MotionParameters, i: int, running: bool) -> None:
    t, speed = pose.t, float(p.speed[i])
    angle = _DIRECTION_ANGLES[int(p.direction[i])]
    travel = torch.tensor([math.sin(angle), math.cos(angle)], dtype=t.dtype)
    cycles = (1.3 + 0.1 * speed) if running else (0.75 + 0.2 * speed)  # gait cycles (two steps) per second
    # A stance leg sweeps 2 L sin(A) under the hip while the body covers one step, speed / (2 cycles).
    max_swing = math.radians(40 if running else 32)
    swing = math.asin(min(speed / (2 * cycles) / (2 * _LEG_LENGTH), math.sin(max_swing)))
    phase = 2 * math.pi * cycles * t + float(p.phase[i])
    knee_bend, knee_rest = (math.radians(100), math.radians(20)) if running else (math.radians(55), math.radians(5))
    # Hips swing about the horizontal axis across the direction of travel (travel x Y).
    hip_axis = torch.tensor([-travel[1], 0.0, travel[0]], dtype=t.dtype)
    for side, leg_phase in ((1, phase), (-1, phase + math.pi)):
        hip, knee, ankle = _LEGS[side]
        # The foot's offset along the travel, as a fraction of its reach L sin(swing): forward in a half
        # sine while the leg swings through (cos(phase) > 0), back at a constant speed while it stands,
        # so that the standing foot keeps (nearly) still on the floor.
        u = torch.remainder(leg_phase + math.pi / 2, 2 * math.pi)
        reach = torch.where(u < math.pi, -torch.cos(u), 1 - 2 * (u - math.pi) / math.pi)
        hip_angle = torch.asin(reach * math.sin(swing))
        pose.rotate(hip, axis_angle_to_matrix(hip_angle[:, None] * hip_axis))
        bend = knee_rest + knee_bend * torch.cos(leg_phase).clamp_min(0) ** 2  # bent while swinging through
        pose.turn(knee, "x", bend)
        pose.turn(ankle, "x", -0.4 * bend)
        arm_swing = float(p.arm_swing[i]) * math.radians(45 if running else 30)
        elbow = math.radians(85 if running else 15) + math.radians(10) * torch.sin(leg_phase)
        pose.arm(side, -arm_swing * torch.sin(leg_phase), elbow)
    pose.turn(_J["spine1"], "x", math.radians(9 if running else 2))
    pose.travel = speed * t[:, None] * travel
    if running:  # a short flight around the widest stride
        pose.lift = 0.04 * torch.sin(phase) ** 2


def _jump(pose: _Pose, p: MotionParameters, i: int) -> None:
    t, flight, crouch = pose.t, float(p.flight_time[i]), float(p.squat_angle[i])
    cycle = _jump_cycle(flight)
    squat, arms, distance = torch.zeros_like(t), torch.zeros_like(t), torch.zeros_like(t)
    for k in range(int(p.repeats[i])):
        tau = t - float(p.onset[i]) - k * cycle  # time since this jump's crouch began
        air = tau - _JUMP_CROUCH_SECONDS  # time since take-off
        squat += crouch * _bump(tau / _JUMP_CROUCH_SECONDS)
        squat += 0.8 * crouch * _bump((air - flight) / _JUMP_LAND_SECONDS)
        arms += -math.radians(40) * _bump(tau / _JUMP_CROUCH_SECONDS)  # back while crouching
        arms += math.radians(110) * float(p.arm_swing[i]) * _bump(air / flight)  # up in the air
        in_air = (air > 0) & (air < flight)
        pose.lift += torch.where(in_air, GRAVITY * air * (flight - air) / 2, 0.0)  # 0 at take-off and landing
        distance += float(p.jump_distance[i]) * (air / flight).clamp(0, 1)
    pose.squat(squat)
    for side in (1, -1):
        pose.arm(side, arms, math.radians(20))
    pose.travel = torch.stack([torch.zeros_like(distance), distance], dim=-1)


def _idle_arms(pose: _Pose, p: MotionParameters, i: int, sides=(1, -1)) -> None:
    for side in sides:
        pose.arm(side, math.radians(3) * torch.sin(2 * math.pi * 0.3 * pose.t + float(p.phase[i]) + side), 0.1)


def _wave(pose: _Pose, p: MotionParameters, i: int) -> None:
    side = 1 if int(p.side[i]) == 0 else -1
    t, onset = pose.t, float(p.onset[i])
    raised = _ease((t - onset) / float(p.ramp[i]))
    waving = float(p.wave_amplitude[i]) * torch.sin(2 * math.pi * float(p.wave_rate[i]) * (t - onset))
    shoulder, elbow = _ARMS[side]
    pose.turn(shoulder, "z", side * math.radians(150) * raised)  # up and out to the side
    pose.turn(elbow, "z", side * (math.radians(20) + waving) * raised)  # forearm near vertical, swinging
    _idle_arms(pose, p, i, sides=(-side,))


def _turn(pose: _Pose, p: MotionParameters, i: int) -> None:
    t, onset, duration = pose.t, float(p.onset[i]), float(p.ramp[i])
    pose.yaw = float(p.turn_angle[i]) * _ease((t - onset) / duration)
    stepping = ((t >= onset) & (t <= onset + duration)).to(t.dtype) * torch.sin(2 * math.pi * (t - onset))
    for side, lift in ((1, stepping.clamp_min(0)), (-1, (-stepping).clamp_min(0))):
        hip, knee, ankle = _LEGS[side]
        pose.turn(hip, "x", -math.radians(25) * lift)
        pose.turn(knee, "x", math.radians(50) * lift)
        pose.turn(ankle, "x", -math.radians(25) * lift)
    _idle_arms(pose, p, i)


def _sit(pose: _Pose, p: MotionParameters, i: int) -> None:
    depth = float(p.squat_angle[i]) * _ease((pose.t - float(p.onset[i])) / float(p.ramp[i]))
    pose.squat(depth)
    for side in (1, -1):  # arms reach forward for balance
        pose.arm(side, float(p.arm_swing[i]) * depth, 0.2 * depth)


def _kick(pose: _Pose, p: MotionParameters, i: int) -> None:
    side = 1 if int(p.side[i]) == 0 else -1
    t, top = pose.t, float(p.kick_angle[i])
    hip_flexion, knee_flexion = torch.zeros_like(t), torch.zeros_like(t)
    times = [0.0, 0.3, 0.45, 0.65, 1.0]  # chamber, snap out, chamber again, foot down (fractions of a kick)
    for k in range(int(p.repeats[i])):
        tau = (t - float(p.onset[i]) - k * (_KICK_SECONDS + _KICK_REST)) / _KICK_SECONDS
        hip_flexion += _keyframes(tau, times, [0.0, 0.6 * top, top, 0.6 * top, 0.0])
        knee_flexion += _keyframes(tau, times, [0.0, math.radians(90), math.radians(5), math.radians(80), 0.0])
    hip, knee, ankle = _LEGS[side]
    pose.turn(hip, "x", -hip_flexion)
    pose.turn(knee, "x", knee_flexion)
    pose.turn(ankle, "x", math.radians(20) * hip_flexion / top)  # toes pointed
    support_hip, support_knee, _ = _LEGS[-side]
    pose.turn(support_knee, "x", 0.15 * hip_flexion)  # the standing knee gives a little
    pose.turn(support_hip, "x", -0.15 * hip_flexion)
    pose.turn(_J["spine1"], "x", -0.2 * hip_flexion)  # lean back against the kick
    for arm_side in (1, -1):
        pose.arm(arm_side, 0.3 * hip_flexion * (arm_side == -side), math.radians(30), out=math.radians(25))


_ANIMATIONS = {
    "walk": lambda pose, p, i: _gait(pose, p, i, running=False),
    "run": lambda pose, p, i: _gait(pose, p, i, running=True),
    "jump": _jump,
    "wave": _wave,
    "turn": _turn,
    "sit": _sit,
    "kick": _kick,
}


def _animate(p: MotionParameters, i: int) -> torch.Tensor:
    """Joint positions [T, J, 3] (float32) of clip ``i``."""
    t = torch.arange(round(float(p.seconds[i]) * FPS) + 1, dtype=torch.float64) / FPS
    pose = _Pose(t)
    sway = 2 * math.pi * 0.25 * t + float(p.phase[i])
    pose.turn(_J["spine2"], "z", 0.03 * torch.sin(sway))
    pose.turn(_J["neck"], "x", 0.05 * torch.sin(1.3 * sway + 1.0))
    _ANIMATIONS[CLASSES[int(p.labels[i])]](pose, p, i)

    heading = float(p.heading[i])
    pose.local[:, 0] = _rotation("y", heading + pose.yaw) @ pose.local[:, 0]
    joints = forward_kinematics(torch.zeros(len(t), 3, dtype=t.dtype), pose.local, REST_OFFSETS.double())
    lowest_foot = joints[:, list(FOOT_JOINTS), 1].amin(-1)  # [T]
    travel = rotate_y(
        torch.stack([pose.travel[:, 0], torch.zeros_like(t), pose.travel[:, 1]], -1), torch.tensor(heading)
    )
    root = travel + torch.stack([p.start[i, 0].expand_as(t), _FLOOR_CLEARANCE - lowest_foot + pose.lift,
                                 p.start[i, 1].expand_as(t)], -1)  # fmt: skip
    return (joints + root[:, None, :]).float()


# ----------------------------------------------------------------------------------------------
# Captions

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


# ----------------------------------------------------------------------------------------------
# Making clips


def make_motions(
    num: int, seed: int = 0, labels: torch.Tensor | list[str] | None = None, seconds: float | None = None
) -> MotionClips:
    """``num`` Motions7 clips as a ``MotionClips`` (joints, HumanML3D features, lengths, labels, captions, params).

    ``labels`` (LongTensor[num] of class ids, or a list of names from CLASSES) fixes the actions; by
    default they are drawn. ``seconds`` (2 to 9.8) fixes every clip's duration; by default each is
    drawn from 2 to 6 s. A clip of S seconds has round(S * 20) + 1 joint frames and round(S * 20)
    feature frames. The same seed gives the same clips; ``motion_parameters`` gives the choices.
    """
    _check_arguments(num, seconds)
    g = torch.Generator().manual_seed(seed)
    p = _draw(num, _check_labels(num, labels), seconds, g)
    choices = torch.randint(1 << 16, (num, 3), generator=g).tolist()
    num_frames = (p.seconds * FPS).round().long() + 1
    longest = int(num_frames.max()) if num else 2
    joints = torch.zeros(num, longest, NUM_JOINTS, 3)
    features = torch.zeros(num, longest - 1, FEATURE_DIM)
    for i in range(num):
        clip = _animate(p, i)
        joints[i, : len(clip)] = clip
        features[i, : len(clip) - 1] = extract_features(clip)
    captions = [_caption(p, i, choices[i]) for i in range(num)]
    return MotionClips(joints, num_frames, features, num_frames - 1, p.labels, captions, p)


class MotionsDataset(Dataset):
    """Motions7 as a Dataset of HumanML3D-style items: ``{"motion": FloatTensor[F, 263] normalised,
    "length": F, "caption": str, "label": int}`` (generated once, in memory).

    ``mean`` / ``std`` [263] normalise the features; by default they are this dataset's own
    ``normalisation_statistics`` (pass the training set's to a validation set). ``collate_motions`` batches items.
    """

    def __init__(
        self,
        num: int = 2000,
        seed: int = 0,
        seconds: float | None = None,
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
    ):
        clips = make_motions(num, seed=seed, seconds=seconds)
        self.features = [clips.features[i, :length] for i, length in enumerate(clips.lengths.tolist())]
        if (mean is None) != (std is None):
            raise ValueError("mean, std: got only one of them; expected both or neither")
        if mean is None:
            mean, std = normalisation_statistics(torch.cat(self.features))
        self.mean, self.std = mean, std
        self.lengths, self.labels, self.captions, self.classes = clips.lengths, clips.labels, clips.captions, CLASSES

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict:
        return {
            "motion": normalise(self.features[index], self.mean, self.std),
            "length": int(self.lengths[index]),
            "caption": self.captions[index],
            "label": int(self.labels[index]),
        }


# ----------------------------------------------------------------------------------------------
# The exact checker: measurements on joint positions [..., T, J, 3] (T >= 2), then the decision


def _as_joints(motion: torch.Tensor) -> torch.Tensor:
    """Joints [..., T, J, 3] from joints, or from features [..., F, 263] through ``recover_joints``."""
    if isinstance(motion, torch.Tensor) and motion.dim() >= 2 and motion.shape[-1] == FEATURE_DIM:
        return recover_joints(motion)
    return check_joints(motion, name="motion", min_frames=2)


def root_displacement(joints: torch.Tensor, fps: float = FPS) -> tuple[torch.Tensor, torch.Tensor]:
    """(direction [...], speed [...]) of the root's net horizontal travel from the first frame to the last.

    The direction is a yaw relative to the first frame's facing (0 forward, pi/2 left, -pi/2 right,
    +-pi backward); the speed is the net distance over the clip's duration, m/s.
    """
    joints = check_joints(joints, min_frames=2)
    delta = joints[..., -1, 0, :] - joints[..., 0, 0, :]
    local = rotate_y(delta, -facing_yaw(joints[..., 0, :, :]))
    seconds = (joints.shape[-3] - 1) / fps
    return torch.atan2(local[..., 0], local[..., 2]), torch.hypot(local[..., 0], local[..., 2]) / seconds


def hand_height(joints: torch.Tensor) -> torch.Tensor:
    """Height of the (left, right) wrist above the head joint: [..., T, 2], m (positive: above the head)."""
    joints = check_joints(joints)
    wrists = joints[..., [_J["left_wrist"], _J["right_wrist"]], 1]
    return wrists - joints[..., _J["head"], None, 1]


def root_height_drop(joints: torch.Tensor) -> torch.Tensor:
    """How far the root sinks [...]: its height at the first frame minus its mean height over the last quarter."""
    joints = check_joints(joints)
    height = joints[..., 0, 1]
    return height[..., 0] - height[..., -max(1, height.shape[-1] // 4) :].mean(-1)


def yaw_change(joints: torch.Tensor) -> torch.Tensor:
    """Net change [...] of the facing yaw from the first frame to the last, radians, positive to the left.

    Summed frame to frame (each step wrapped to [-pi, pi)), so turns beyond half a circle count in full.
    """
    yaw = facing_yaw(check_joints(joints))
    return wrap_angle(yaw[..., 1:] - yaw[..., :-1]).sum(-1)


def airborne_height(joints: torch.Tensor) -> torch.Tensor:
    """The most the lowest foot joint rises above its lowest point in the clip: [...], m."""
    lowest = check_joints(joints)[..., list(FOOT_JOINTS), 1].amin(-1)  # [..., T]
    return lowest.amax(-1) - lowest.amin(-1)


def kick_height(joints: torch.Tensor) -> torch.Tensor:
    """The highest an ankle gets above the clip's lowest foot point while more than KICK_REACH ahead of
    the root (in that frame's facing frame): [...], m; 0 if no ankle gets that far ahead."""
    joints = check_joints(joints)
    ankles = joints[..., [_J["left_ankle"], _J["right_ankle"]], :]  # [..., T, 2, 3]
    ahead = rotate_y(ankles - joints[..., :1, :], -facing_yaw(joints)[..., None])[..., 2]  # [..., T, 2]
    floor = joints[..., list(FOOT_JOINTS), 1].amin(dim=(-2, -1))
    height = ankles[..., 1] - floor[..., None, None]
    return torch.where(ahead > KICK_REACH, height, 0.0).amax(dim=(-2, -1)).clamp_min(0)


def _clips(motion: torch.Tensor, lengths: torch.Tensor | None):
    """Yield the joints [T, J, 3] of each clip in ``motion`` (joints or features, padded with ``lengths``)."""
    joints = _as_joints(motion)
    flat = joints.reshape(-1, *joints.shape[-3:])
    if lengths is None:
        lengths = torch.full((len(flat),), flat.shape[1])
    lengths = torch.as_tensor(lengths).reshape(-1)
    if len(lengths) != len(flat) or (lengths < 2).any() or (lengths > flat.shape[1]).any():
        raise ValueError(
            f"lengths: got {lengths.tolist()}; expected {len(flat)} frame counts from 2 to {flat.shape[1]}"
        )
    return joints.shape[:-3], [flat[i, : int(n)] for i, n in enumerate(lengths)]


def classify_motion(motion: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The action (index into CLASSES) of each clip: LongTensor[...], -1 where none fits.

    ``motion`` is joints [..., T, 22, 3] or HumanML3D features [..., F, 263] (read through
    ``recover_joints``); ``lengths`` [...] gives each clip's frames when the batch is padded. In order:
    jump if the lowest foot rises more than AIRBORNE_HEIGHT; run or walk if the root travels faster
    than RUNNING_SPEED or MOVING_SPEED; sit if the root sinks more than SQUAT_DROP; kick if an ankle
    ahead of the body rises above KICK_HEIGHT; wave if a hand is above the head in more than
    WAVE_FRACTION of the frames; turn if the facing turns more than TURN_ANGLE.
    """
    shape, clips = _clips(motion, lengths)
    labels = []
    for joints in clips:
        _, speed = root_displacement(joints)
        raised = (hand_height(joints).amax(-1) > HAND_ABOVE_HEAD).float().mean()
        if airborne_height(joints) > AIRBORNE_HEIGHT:
            label = "jump"
        elif speed > MOVING_SPEED:
            label = "run" if speed > RUNNING_SPEED else "walk"
        elif root_height_drop(joints) > SQUAT_DROP:
            label = "sit"
        elif kick_height(joints) > KICK_HEIGHT:
            label = "kick"
        elif raised > WAVE_FRACTION:
            label = "wave"
        elif yaw_change(joints).abs() > TURN_ANGLE:
            label = "turn"
        else:
            label = None
        labels.append(-1 if label is None else CLASSES.index(label))
    return torch.tensor(labels, dtype=torch.long).reshape(shape)


def classify_direction(motion: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The direction (index into DIRECTIONS) of each clip: LongTensor[...], -1 where none applies.

    A clip whose root travels at least DIRECTION_DISTANCE gets the direction nearest to its travel
    (relative to its first frame's facing); otherwise one that turns more than TURN_ANGLE gets left or
    right (the way it turned); otherwise -1. Inputs as for ``classify_motion``.
    """
    shape, clips = _clips(motion, lengths)
    directions = torch.tensor(_DIRECTION_ANGLES)
    out = []
    for joints in clips:
        angle, speed = root_displacement(joints)
        distance = speed * (len(joints) - 1) / FPS
        turned = yaw_change(joints)
        if distance >= DIRECTION_DISTANCE:
            out.append(int(wrap_angle(angle - directions).abs().argmin()))
        elif turned.abs() > TURN_ANGLE:
            out.append(DIRECTIONS.index("left" if turned > 0 else "right"))
        else:
            out.append(-1)
    return torch.tensor(out, dtype=torch.long).reshape(shape)

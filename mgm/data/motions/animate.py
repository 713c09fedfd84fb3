"""Motions7's animator: a clip's ``MotionParameters`` turned into joint positions.

``_animate(p, i)`` composes the local joint rotations [T, J, 3, 3] of clip ``i`` on a ``_Pose``
(smooth joint-angle curves: sines, eased ramps, keyframes), one function per action (``_gait`` for
walk and run, ``_jump``, ``_wave``, ``_turn``, ``_sit``, ``_kick``) plus an idle sway of spine and
neck, then runs forward kinematics on the skeleton of ``mgm.data.skeleton``. The pelvis is lowered
or raised each frame so that the lowest foot joint stands on the floor (plus the flight of a jump or
a run), and the root travels and turns as the action asks, from the clip's start and heading.

Dimension legend: T joint frames, J = 22 joints.
"""

from __future__ import annotations

import math

import torch

from mgm.data.motion_features import FPS, rotate_y
from mgm.data.motions.params import (
    _DIRECTION_ANGLES,
    _JUMP_CROUCH_SECONDS,
    _JUMP_LAND_SECONDS,
    _KICK_REST,
    _KICK_SECONDS,
    CLASSES,
    MotionParameters,
    _jump_cycle,
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

GRAVITY = 9.81

_J = JOINT_INDEX
_LEGS = {  # side sign (+1 left, towards +X; -1 right) -> (hip, knee, ankle)
    1: (_J["left_hip"], _J["left_knee"], _J["left_ankle"]),
    -1: (_J["right_hip"], _J["right_knee"], _J["right_ankle"]),
}
_ARMS = {1: (_J["left_shoulder"], _J["left_elbow"]), -1: (_J["right_shoulder"], _J["right_elbow"])}
_LEG_LENGTH = float(-REST_OFFSETS[_J["left_knee"], 1] - REST_OFFSETS[_J["left_ankle"], 1])  # hip to ankle, 0.8 m
_FLOOR_CLEARANCE = float(rest_pose()[list(FOOT_JOINTS), 1].min())  # lowest foot joint at rest: 3 cm

_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


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

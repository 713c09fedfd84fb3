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

The modules, one concern each (this package re-exports their public names):

- ``params``: the vocabulary (``CLASSES``, ``DIRECTIONS``, ``SIDES``, speed ranges) and the seeded
  draw of each clip's choices, ``MotionParameters`` / ``motion_parameters``;
- ``animate``: the parameters turned into joint positions (``_animate``);
- ``captions``: the templated caption of a clip (``_caption``);
- ``dataset``: ``make_motions`` (``MotionClips``: joints, features, captions) and ``MotionsDataset``;
- ``checker``: the exact checker. ``classify_motion`` and ``classify_direction`` read joints, or
  features through ``recover_joints``, so they can judge generated features, using a few public
  measurements: ``airborne_height`` (jump), ``root_displacement`` (walk, run and their direction),
  ``root_height_drop`` (sit), ``kick_height``, ``hand_height`` (wave) and ``yaw_change`` (turn).

Dimension legend: M clips, T joint frames, F = T - 1 feature frames, J = 22 joints, D = 263.
"""

from mgm.data.motions.animate import GRAVITY
from mgm.data.motions.checker import (
    AIRBORNE_HEIGHT,
    DIRECTION_DISTANCE,
    HAND_ABOVE_HEAD,
    KICK_HEIGHT,
    KICK_REACH,
    MOVING_SPEED,
    RUNNING_SPEED,
    SQUAT_DROP,
    TURN_ANGLE,
    WAVE_FRACTION,
    airborne_height,
    classify_direction,
    classify_motion,
    hand_height,
    kick_height,
    root_displacement,
    root_height_drop,
    yaw_change,
)
from mgm.data.motions.dataset import MotionClips, MotionsDataset, make_motions
from mgm.data.motions.params import (
    CLASSES,
    DIRECTIONS,
    LONGEST_SECONDS,
    MAX_SECONDS,
    MIN_SECONDS,
    NUM_CLASSES,
    RUN_SPEEDS,
    SIDES,
    WALK_SPEEDS,
    MotionParameters,
    motion_parameters,
)

__all__ = [
    "AIRBORNE_HEIGHT",
    "CLASSES",
    "DIRECTIONS",
    "DIRECTION_DISTANCE",
    "GRAVITY",
    "HAND_ABOVE_HEAD",
    "KICK_HEIGHT",
    "KICK_REACH",
    "LONGEST_SECONDS",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "MOVING_SPEED",
    "MotionClips",
    "MotionParameters",
    "MotionsDataset",
    "NUM_CLASSES",
    "RUNNING_SPEED",
    "RUN_SPEEDS",
    "SIDES",
    "SQUAT_DROP",
    "TURN_ANGLE",
    "WALK_SPEEDS",
    "WAVE_FRACTION",
    "airborne_height",
    "classify_direction",
    "classify_motion",
    "hand_height",
    "kick_height",
    "make_motions",
    "motion_parameters",
    "root_displacement",
    "root_height_drop",
    "yaw_change",
]

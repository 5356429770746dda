"""RTC guidance math and the guided flow sampler (JAX, no ROS).

Flow time: t = 1 is noise, t = 0 is data. Axes: b = batch, H = horizon, D = action dim.
"""

from .bid import MAX_CANDIDATES, BestOfN, backward_coherence, sample_best_of_n
from .guidance import (
    GUIDANCE_MODES,
    MAX_GUIDANCE_WEIGHT,
    PREFIX_CONDITIONED_MODES,
    GuidanceMode,
    GuidedStep,
    guidance_weight,
    guidance_weight_refusal,
    guided_step,
    guided_velocity,
)
from .prefix import build_prefix
from .prefix_weights import PREFIX_SCHEDULES, PrefixSchedule, prefix_weights
from .sampler import SampleTrace, sample

__all__ = [
    "MAX_CANDIDATES",
    "BestOfN",
    "backward_coherence",
    "sample_best_of_n",
    "MAX_GUIDANCE_WEIGHT",
    "guidance_weight_refusal",
    "GUIDANCE_MODES",
    "PREFIX_CONDITIONED_MODES",
    "PREFIX_SCHEDULES",
    "GuidanceMode",
    "GuidedStep",
    "PrefixSchedule",
    "SampleTrace",
    "build_prefix",
    "guidance_weight",
    "guided_step",
    "guided_velocity",
    "prefix_weights",
    "sample",
]

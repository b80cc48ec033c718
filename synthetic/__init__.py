"""Simulator of Light My Cells studies: TL z-stacks (BF/PC/DIC) and fluorescence ground truth.

The images are simulated from a cell phantom and a physical model of the microscope; see README.md.
Profiles (SimulationConfig.profile): v1, the shipped weights' simulator kept bit for bit; lmc (default),
calibrated to the real studies; new-site, acquisitions outside them (synthetic/profiles.py).
"""
from .config import DEFAULT_PROFILE, PROFILES, REAL_SHAPES, SimulationConfig
from .fov import SimulatedFOV, simulate_fov
from .generate import generate_studies, image_id
from .study import StudyParams, choose_organelles, sample_study

__all__ = ["DEFAULT_PROFILE", "PROFILES", "REAL_SHAPES", "SimulationConfig", "SimulatedFOV", "StudyParams", "choose_organelles",
           "generate_studies", "image_id", "sample_study", "simulate_fov"]

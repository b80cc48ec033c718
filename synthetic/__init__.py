"""Simulator of Light My Cells studies: TL z-stacks (BF/PC/DIC) and fluorescence ground truth.

The images are simulated from a cell phantom and a physical model of the microscope; see README.md.
"""
from .config import REAL_SHAPES, SimulationConfig
from .fov import SimulatedFOV, simulate_fov
from .generate import generate_studies, image_id
from .study import StudyParams, choose_organelles, sample_study

__all__ = ["REAL_SHAPES", "SimulationConfig", "SimulatedFOV", "StudyParams", "choose_organelles",
           "generate_studies", "image_id", "sample_study", "simulate_fov"]

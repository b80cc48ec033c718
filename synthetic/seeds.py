"""Which seed draws which simulated images, so that no evaluation image can be trained on.

Every simulated set is a pure function of its seed (and study numbers), so keeping the sets apart
means keeping their seeds apart. The seeds in use:

| seeds | studies | what | made by |
|---|---|---|---|
| 11-15 | 1-440 | training studies of the shipped weights | weights/recipe.toml |
| 21-25 | 501-660 | output calibration and route choice of the shipped weights | the same |
| 31 | 601-603 | overlap probe (README, "Measured") | python -m synthetic |
| 41 | 701-724 | the realism report (synthetic/README.md) | python -m synthetic.realism_report |
| 51-53 | 3001-3224 | training studies of the simulator experiment, profile lmc (README, "Measured") | weights/recipe.toml |
| 54-56 | 3301-3524 | training studies of the simulator experiment, profile low-mag (the same) | weights/recipe.toml |
| 900001 | 901-903 | test/studies, the CI smoke set | scripts/make_test_studies.sh |
| 910001 | 1001-1064 | benchmark development set (decisions) | python -m benchmarks.heldout |
| 920001 | 2001-2064 | benchmark test set (reported once per shipped version) | python -m benchmarks.heldout |

Within a seed, the profile (synthetic/config.py PROFILES) picks the stream: v1 studies draw from
`[seed, study]`, lmc from `[seed, study, 1]`, new-site from `[seed, study, 2]`, low-mag from `[seed, study, 3]`; a
field draws from `[seed, study, fov]` and, outside v1, its nuclei's biology from `[seed, study, fov, 1]`
(synthetic/profiles.py). Every row above but 51-56 was made with profile v1 (the recipe, the held-out and
benchmark builders pin it); the realism report draws seed 41 in v1 and lmc alike.

The last three are reserved (in every profile): `python -m synthetic` and `generate_studies` refuse them, so no
training or calibration set can reproduce an evaluation set by accident, and the folders they make
carry an EVALUATION_SET.json marker that the trainers refuse (preprocessing/evaluation_sets.py).
"""
from __future__ import annotations

HELDOUT_SEED = 900001          # test/studies (synthetic/heldout.py)
BENCHMARK_DEV_SEED = 910001    # benchmarks/heldout, development set
BENCHMARK_TEST_SEED = 920001   # benchmarks/heldout, test set

RESERVED_SEEDS: dict[int, str] = {
    HELDOUT_SEED: "the CI smoke set test/studies (scripts/make_test_studies.sh)",
    BENCHMARK_DEV_SEED: "the benchmark's development set (python -m benchmarks.heldout)",
    BENCHMARK_TEST_SEED: "the benchmark's test set (python -m benchmarks.heldout)",
}


def refuse_reserved(seed: int) -> None:
    """Raise ValueError when `seed` draws an evaluation set."""
    if seed in RESERVED_SEEDS:
        raise ValueError(f"seed {seed} is reserved for {RESERVED_SEEDS[seed]}; pick another seed "
                         "for training or calibration data")

"""Benchmarks on the only real images reachable here (../shared/real): zero-shot and learnability."""

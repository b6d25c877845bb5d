"""The Dalitz plane of Λc⁺ → p K⁻ π⁺: kinematics (region, samples) and plots (``[plot]`` extra)."""

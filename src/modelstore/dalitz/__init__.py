"""The Dalitz plane of Λc⁺ → p K⁻ π⁺: kinematics (region, samples) and plots (``[plot]`` extra).

Modules, each with its public names in ``__all__``: ``kinematics`` (region, uniform samples),
``sampling`` (toy events distributed as a model's intensity, ``PublishedModel.sample``),
``fourvectors`` (σ1, σ2, σ3 and the angles φ, θ, χ from four-momenta, and back), ``polarized``,
``rates``, ``fit``, ``field``, ``band``, ``plot``.
"""

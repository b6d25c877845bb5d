"""Fitting: likelihoods and fits of published models."""

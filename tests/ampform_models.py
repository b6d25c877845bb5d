"""Two small decays built with ampform-dpd (not Λc⁺ → p K⁻ π⁺), for open-publishing tests.

* ``jpsi_model()``: J/ψ → K⁰ Σ⁺ p̄ (a spin-1 decaying particle) with N(1875) (spin 3/2) in K⁰Σ⁺
  and a spin-1 X(2300) in Σ⁺p̄ (``third=True``: a spin-1/2 Σ̄(1660) in p̄K⁰ too);
* ``d0_model()``: D⁰ → K⁻ π⁺ π⁰ (spin-0 final state only) with K*(892)⁰ and ρ(770)⁺;
* ``xic_builder()``: the builder of Ξc⁺ → Σ⁺ π⁺ K⁻ (a spin-1/2 decaying particle, so with a
  polarimeter vector α⃗) with K̄*(892)⁰ in π⁺K⁻ and a spin-3/2 Ξ(1820)⁰ in K⁻Σ⁺.

All use ampform-dpd's relativistic Breit-Wigner with form factors and LS couplings. In
ampform-dpd 0.4.3 the decay vertex's form factor is ``FormFactor(s=σ**2)`` (σ is already a
squared mass), so the models are NaN where σ < (m_a + m_b) in GeV; modelstore reproduces that
(every backend is NaN exactly where sympy's lambdify is).
"""

from __future__ import annotations


def _build(states, resonances):
    return _builder(states, resonances).formulate(reference_subsystem=1)


def _builder(states, resonances):
    from ampform_dpd import DalitzPlotDecompositionBuilder
    from ampform_dpd.decay import IsobarNode, ThreeBodyDecay, ThreeBodyDecayChain
    from ampform_dpd.dynamics.builder import formulate_breit_wigner_with_form_factor

    chains = [
        ThreeBodyDecayChain(
            IsobarNode(
                states[0],
                IsobarNode(resonance, states[a], states[b], interaction=decay_ls),
                states[6 - a - b],
                interaction=production_ls,
            )
        )
        for resonance, (a, b), production_ls, decay_ls in resonances
    ]
    decay = ThreeBodyDecay(states, chains)
    builder = DalitzPlotDecompositionBuilder(decay, min_ls=False)
    for chain in decay.chains:
        builder.dynamics_choices.register_builder(chain, formulate_breit_wigner_with_form_factor)
    return builder


def jpsi_model(third=False):
    from ampform_dpd.decay import Particle, State

    states = {
        0: State("J/psi", "J/\\psi", 1, -1, 3.0969, 0.0, 0),
        1: State("K0", "K^0", 0, -1, 0.497611, 0.0, 1),
        2: State("Sigma+", "\\Sigma^+", 0.5, 1, 1.18937, 0.0, 2),
        3: State("pbar", "\\bar{p}", 0.5, -1, 0.938272, 0.0, 3),
    }
    n1875 = Particle("N(1875)", "N(1875)", 1.5, -1, 1.875, 0.2)
    x2300 = Particle("X(2300)", "X(2300)", 1, -1, 2.3, 0.2)
    sigma1660 = Particle("Sigmabar(1660)", "\\bar\\Sigma(1660)", 0.5, -1, 1.66, 0.2)
    return _build(
        states,
        [
            (n1875, (1, 2), (1, 1), (2, 0.5)),
            (x2300, (2, 3), (1, 1), (0, 1)),
            *([(sigma1660, (3, 1), (1, 1), (1, 0.5))] if third else []),
        ],
    )


def d0_model():
    return _build(*d0_parts())


def d0_parts():
    from ampform_dpd.decay import Particle, State

    states = {
        0: State("D0", "D^0", 0, -1, 1.86484, 0.0, 0),
        1: State("K-", "K^-", 0, -1, 0.493677, 0.0, 1),
        2: State("pi+", "\\pi^+", 0, -1, 0.13957, 0.0, 2),
        3: State("pi0", "\\pi^0", 0, -1, 0.134977, 0.0, 3),
    }
    kstar = Particle("K*(892)0", "K^*(892)^0", 1, -1, 0.89555, 0.0473)
    rho = Particle("rho(770)+", "\\rho(770)^+", 1, -1, 0.77526, 0.1491)
    return states, [(kstar, (1, 2), (1, 1), (1, 0)), (rho, (2, 3), (1, 1), (1, 0))]


def xic_builder():
    from ampform_dpd.decay import Particle, State

    states = {
        0: State("Xi_c+", "\\Xi_c^+", 0.5, 1, 2.46771, 0.0, 0),
        1: State("Sigma+", "\\Sigma^+", 0.5, 1, 1.18937, 0.0, 1),
        2: State("pi+", "\\pi^+", 0, -1, 0.13957, 0.0, 2),
        3: State("K-", "K^-", 0, -1, 0.493677, 0.0, 3),
    }
    kstar = Particle("K*(892)0bar", "\\bar{K}^*(892)^0", 1, -1, 0.89555, 0.0473)
    xi1820 = Particle("Xi(1820)0", "\\Xi(1820)^0", 1.5, -1, 1.823, 0.024)
    return _builder(
        states,
        [(kstar, (2, 3), (0, 0.5), (1, 0)), (xi1820, (3, 1), (1, 1.5), (2, 0.5))],
    )

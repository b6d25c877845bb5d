"""What a manifest may say about a model for people: decay, particles, authors, references.

The manifest's optional ``about`` object (absent from manifests published before it existed,
which parse and verify unchanged). Every field is optional; unknown fields are refused, and
every text is bounded:

    {"decay": "J/ψ → K⁰ Σ⁺ p̄",
     "particles": [{"label": "J/ψ", "mass": 3.0969}, {"label": "K⁰", ...}, ...],  # 0, 1, 2, 3
     "description": "...", "references": ["arXiv:...", ...], "authors": ["..."],
     "license": "CC-BY-4.0", "packages": {"ampform-dpd": "0.4.3", ...}}

``particles`` lists the decaying particle and the three final-state particles in the model's
order: σ1 = m²(23), σ2 = m²(31).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from modelstore.errors import ManifestError

__all__ = ["About", "Particle"]

MAX_TEXT = 4096
MAX_LABEL = 64
MAX_ITEMS = 64
FIELDS = ("decay", "particles", "description", "references", "authors", "license", "packages")


def _text(value: Any, where: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        msg = f"{where}: expected a non-empty text of at most {limit} characters, got {value!r:.60}"
        raise ManifestError(msg)
    return value


def _texts(value: Any, where: str, limit: int = MAX_TEXT) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or len(value) > MAX_ITEMS:
        msg = f"{where}: expected a list of at most {MAX_ITEMS} texts"
        raise ManifestError(msg)
    return tuple(_text(v, f"{where}[{i}]", limit) for i, v in enumerate(value))


@dataclass(frozen=True)
class Particle:
    """One particle of the decay: its label (``"K⁰"``) and mass in GeV (or None)."""

    label: str
    mass: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form. Never raises."""
        return {"label": self.label, "mass": self.mass}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Particle:
        """A particle from its JSON form.

        Raises:
            ManifestError: not ``{"label": text, "mass": number or null}``.
        """
        if not isinstance(data, dict) or set(data) != {"label", "mass"}:
            msg = f"{where}: expected {{'label': text, 'mass': number or null}}"
            raise ManifestError(msg)
        mass = data["mass"]
        if mass is not None and (
            isinstance(mass, bool)
            or not isinstance(mass, int | float)
            or not math.isfinite(float(mass))
            or mass < 0
        ):
            msg = f"{where}: mass must be a non-negative finite number or null, got {mass!r:.40}"
            raise ManifestError(msg)
        return cls(
            _text(data["label"], f"{where}.label", MAX_LABEL), None if mass is None else float(mass)
        )


@dataclass(frozen=True)
class About:
    """The optional ``about`` object of a manifest (see the module docstring)."""

    decay: str | None = None
    particles: tuple[Particle, ...] = ()
    description: str | None = None
    references: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    license: str | None = None
    packages: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with only the fields that are set. Never raises."""
        data: dict[str, Any] = {
            "decay": self.decay,
            "particles": [p.to_dict() for p in self.particles] or None,
            "description": self.description,
            "references": list(self.references) or None,
            "authors": list(self.authors) or None,
            "license": self.license,
            "packages": dict(self.packages) or None,
        }
        return {k: v for k, v in data.items() if v is not None}

    def is_empty(self) -> bool:
        """True when no field is set. Never raises."""
        return not self.to_dict()

    def axis_labels(self) -> tuple[str, str] | None:
        """``(m²(23), m²(31))`` from the particle labels, or None without four particles.

        Never raises.
        """
        if len(self.particles) != 4:
            return None
        _, p1, p2, p3 = (p.label for p in self.particles)
        return f"m²({p2} {p3})", f"m²({p3} {p1})"

    @classmethod
    def from_dict(cls, data: Any, where: str = "about") -> About:
        """The ``about`` object from its JSON form (strict: unknown fields are refused).

        Raises:
            ManifestError: not an object, an unknown field, or a field of the wrong shape.
        """
        if not isinstance(data, dict):
            msg = f"{where}: expected a JSON object"
            raise ManifestError(msg)
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            msg = f"{where}: unknown fields {unknown} (known: {list(FIELDS)})"
            raise ManifestError(msg)
        particles = data.get("particles", [])
        if not isinstance(particles, list) or len(particles) not in (0, 4):
            msg = f"{where}.particles: expected the 4 particles 0 → 1 2 3"
            raise ManifestError(msg)
        packages = data.get("packages", {})
        if not isinstance(packages, dict) or len(packages) > MAX_ITEMS:
            msg = f"{where}.packages: expected {{name: version}}"
            raise ManifestError(msg)
        return cls(
            decay=None if "decay" not in data else _text(data["decay"], f"{where}.decay", 256),
            particles=tuple(
                Particle.from_dict(p, f"{where}.particles[{i}]") for i, p in enumerate(particles)
            ),
            description=None
            if "description" not in data
            else _text(data["description"], f"{where}.description"),
            references=_texts(data.get("references", []), f"{where}.references"),
            authors=_texts(data.get("authors", []), f"{where}.authors", 256),
            license=None
            if "license" not in data
            else _text(data["license"], f"{where}.license", 256),
            packages=tuple(
                (_text(k, f"{where}.packages key", 128), _text(v, f"{where}.packages[{k}]", 128))
                for k, v in sorted(packages.items())
            ),
        )

"""The manifest of one published model version: what it is, which files it has, where it came from.

A manifest is JSON with a ``schema_version``. It is read strictly: unknown schema versions,
missing or extra keys, duplicated files and malformed digests are refused with ManifestError.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from modelstore.errors import InvalidInputError, ManifestError
from modelstore.format.about import About
from modelstore.format.jsondoc import load_document
from modelstore.format.names import check_model_id, check_version
from modelstore.store.hashing import bytes_digest, parse_digest

__all__ = [
    "EXECUTABLE_ROLES",
    "ROLES",
    "SCHEMA_VERSION",
    "FileEntry",
    "Manifest",
    "Parameter",
    "ParameterValue",
]

SCHEMA_VERSION = 1
MAX_MANIFEST_BYTES = 4 << 20
# The largest file a registry serves (models are a few MB). A manifest may record more, but such
# a file is refused when read, before any buffer of that size is made.
MAX_BLOB_SIZE = 1 << 30

ParameterValue = float | complex | int
INT64_RANGE = (-(2**63), 2**63 - 1)
DType = Literal["float64", "complex128", "int64"]

# role -> (file name used by `modelstore get`, media type)
ROLES: dict[str, tuple[str, str]] = {
    "expressions": ("model.pkl", "application/vnd.modelstore.cloudpickle"),
    "intensity-srepr": ("intensity.srepr", "text/x-sympy-srepr; charset=utf-8"),
    "reference-values": ("reference.zarr.zip", "application/vnd.zarr.v3+zip"),
    "native-source": ("intensity.c", "text/x-csrc; charset=utf-8"),
    "kinematics-srepr": ("kinematics.srepr", "text/x-sympy-srepr; charset=utf-8"),
    "array-source": ("intensity_array.py", "text/x-python; charset=utf-8"),
    "polarimetry-srepr": ("polarimetry.srepr", "text/x-sympy-srepr; charset=utf-8"),  # 1.4.0 on
}
# Roles whose bytes run as code when used: a pickle is unpickled, C is compiled and loaded, the
# array program is compiled and called. They are used only from a registry trusted to run code
# (``Registry.require_code_trust``); every other role is data, read by allow-list parsers.
EXECUTABLE_ROLES: frozenset[str] = frozenset({"expressions", "native-source", "array-source"})
# Pickle bytes of sympy objects differ from run to run for the same expression; the semantic
# identity of a version is its expression digest (a digest of the srepr text).
_UNSTABLE_ROLES = frozenset({"expressions"})


def _encode_value(value: ParameterValue | None) -> Any:
    if value is None:
        return None
    if isinstance(value, complex):
        return [value.real, value.imag]
    return value


def _decode_value(raw: Any, dtype: DType, where: str) -> ParameterValue:
    if dtype == "complex128":
        if (
            not isinstance(raw, list)
            or len(raw) != 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in raw)
        ):
            msg = f"{where}: a complex value must be [real, imag], got {raw!r}"
            raise ManifestError(msg)
        return complex(_finite(raw[0], where), _finite(raw[1], where))
    if dtype == "int64":
        if not isinstance(raw, int) or isinstance(raw, bool) or not -(2**63) <= raw < 2**63:
            msg = f"{where}: expected a 64-bit integer, got {raw!r}"
            raise ManifestError(msg)
        return raw
    if not isinstance(raw, (int, float)) or isinstance(raw, bool):
        msg = f"{where}: expected a number, got {raw!r}"
        raise ManifestError(msg)
    return _finite(raw, where)


def _as_kind(dtype: DType, value: object) -> tuple[ParameterValue, str | None]:
    """``value`` as a ``dtype`` value, or (0, what is wrong with it)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Complex):
        return 0, "is not a number"
    if dtype == "int64" and isinstance(value, numbers.Integral):
        return _int64(int(value))
    try:
        number = complex(value)
    except (OverflowError, TypeError, ValueError):  # an integer too large for a float
        return 0, "is too large for a float64"
    if not (math.isfinite(number.real) and math.isfinite(number.imag)):
        return 0, "is not finite"
    if dtype == "complex128":
        return number, None
    if number.imag != 0:
        return 0, "is complex; the parameter is real"
    if dtype == "float64":
        return number.real, None
    if not INT64_RANGE[0] <= number.real <= INT64_RANGE[1]:
        return 0, "is outside the int64 range -2**63..2**63-1"
    # a whole number as an int; a fraction stays a float: upstream's integer defaults include
    # quantities that are real numbers (a radius of 5 GeV⁻¹, couplings of 1), all evaluators
    # compute in doubles, and the range is what keeps the result finite
    return (int(number.real) if number.real.is_integer() else number.real), None


def _int64(whole: int) -> tuple[int, str | None]:
    if INT64_RANGE[0] <= whole <= INT64_RANGE[1]:
        return whole, None
    return 0, "is outside the int64 range -2**63..2**63-1"


def _shown(value: object) -> str:
    """``repr(value)`` cut to 60 characters (an integer of thousands of digits included)."""
    try:
        text = repr(value)
    except ValueError:  # Python refuses to print an int of more than 4300 digits
        return f"an integer of {int(value).bit_length()} bits"  # type: ignore[call-overload]
    return text if len(text) <= 60 else f"{text[:57]}..."


def _finite(raw: int | float, where: str) -> float:
    """``raw`` as a finite float (an integer too large for a float is refused, not overflowed)."""
    try:
        value = float(raw)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        msg = f"{where}: the number {str(raw)[:40]} is not a finite float64"
        raise ManifestError(msg)
    return value


def _require(data: Any, keys: set[str], optional: set[str], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        msg = f"{where}: expected a JSON object, got {type(data).__name__}"
        raise ManifestError(msg)
    missing = keys - data.keys()
    extra = data.keys() - keys - optional
    if missing:
        msg = f"{where}: missing keys {sorted(missing)}"
        raise ManifestError(msg)
    if extra:
        msg = f"{where}: unexpected keys {sorted(extra)}"
        raise ManifestError(msg)
    return data


def _string(value: Any, where: str, max_length: int = 4096) -> str:
    if not isinstance(value, str) or len(value) > max_length or "\x00" in value:
        msg = f"{where}: expected a string of at most {max_length} characters, got {value!r}"
        raise ManifestError(msg)
    return value


@dataclass(frozen=True)
class FileEntry:
    """One artifact file: its role, the name `get` writes it under, media type, size, digest."""

    role: str
    name: str
    media_type: str
    size: int
    digest: str

    @classmethod
    def for_bytes(cls, role: str, data: bytes) -> FileEntry:
        """The entry of ``data`` published as ``role`` (name and media type follow the role).

        Raises:
            ManifestError: ``role`` is not a known file role.
        """
        if role not in ROLES:
            msg = f"unknown file role {role!r} (known: {sorted(ROLES)})"
            raise ManifestError(msg)
        name, media_type = ROLES[role]
        return cls(role, name, media_type, len(data), bytes_digest(data))

    @classmethod
    def from_dict(cls, data: Any, where: str = "file entry") -> FileEntry:
        """A file entry from its JSON form.

        Raises:
            ManifestError: a field is missing, extra, of the wrong type, or inconsistent.
        """
        d = _require(data, {"role", "name", "media_type", "size", "digest"}, set(), where)
        role = _string(d["role"], f"{where}.role", 64)
        if role not in ROLES:
            msg = f"{where}: unknown role {role!r} (known: {sorted(ROLES)})"
            raise ManifestError(msg)
        name, media_type = ROLES[role]
        if d["name"] != name or d["media_type"] != media_type:
            msg = f"{where}: role {role!r} must have name {name!r} and media type {media_type!r}"
            raise ManifestError(msg)
        size = d["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            msg = f"{where}: size must be a non-negative integer, got {size!r}"
            raise ManifestError(msg)
        parse_digest(d["digest"])
        return cls(role, name, media_type, size, d["digest"])


@dataclass(frozen=True)
class Parameter:
    """A model parameter: its symbol name, type, default value and published uncertainties.

    ``uncertainty`` holds ``hesse``, ``model`` and ``systematic`` as given in upstream's
    ``model-definitions.yaml``; it is None for parameters that file does not fit (masses of
    external particles, fixed decay couplings are given with zero uncertainty).
    """

    name: str
    dtype: DType
    value: ParameterValue
    uncertainty: dict[str, ParameterValue | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (complex values as ``[re, im]``).

        Raises:
            ManifestError: a value is not finite (NaN or infinity are never published).
        """
        unc = None
        if self.uncertainty is not None:
            unc = {k: _encode_value(v) for k, v in self.uncertainty.items()}
        return {
            "name": self.name,
            "dtype": self.dtype,
            "value": _encode_value(self.value),
            "uncertainty": unc,
        }

    def check_value(self, value: object, where: str = "parameter") -> ParameterValue:
        """``value`` for this parameter, as its kind: a float, a complex or an int64 integer.

        Python and numpy numbers are accepted. Every value must be finite (both parts of a
        complex one); a real parameter takes a complex value only with a zero imaginary part;
        an ``int64`` one takes values within the 64-bit range (whole ones come back as ints,
        exactly; fractions as floats, since upstream's integer defaults include real
        quantities such as a 5 GeV⁻¹ radius, and every evaluator computes in doubles).

        Raises:
            InvalidInputError: one line naming the parameter and the value: not a number, not
                finite, complex for a real parameter, or outside the int64 range.
        """
        checked, problem = _as_kind(self.dtype, value)
        if problem is None:
            return checked
        msg = f"{where} {self.name!r} ({self.dtype}): {_shown(value)} {problem}"
        raise InvalidInputError(msg)

    @classmethod
    def from_dict(cls, data: Any, where: str = "parameter") -> Parameter:
        """A parameter from its JSON form.

        Raises:
            ManifestError: a field is missing, of the wrong type, or not finite.
        """
        d = _require(data, {"name", "dtype", "value", "uncertainty"}, set(), where)
        name = _string(d["name"], f"{where}.name", 256)
        dtype = d["dtype"]
        if dtype not in ("float64", "complex128", "int64"):
            msg = f"{where} {name!r}: unknown dtype {dtype!r}"
            raise ManifestError(msg)
        value = _decode_value(d["value"], dtype, f"{where} {name!r}")
        unc = d["uncertainty"]
        if unc is not None:
            unc = _require(unc, {"hesse"}, {"model", "systematic"}, f"{where} {name!r} uncertainty")
            unc = {
                k: None if v is None else _decode_value(v, dtype, f"{where} {name!r}.{k}")
                for k, v in unc.items()
            }
        return cls(name, dtype, value, unc)


@dataclass(frozen=True)
class Manifest:
    """Everything known about one published model version; see docs/format.md."""

    model_id: str
    version: str
    title: str
    upstream_index: int | None
    inputs: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    files: tuple[FileEntry, ...]
    provenance: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    about: About | None = None  # optional: what the model is, for people (format/about.py)

    def file(self, role: str) -> FileEntry:
        """The entry of the file published as ``role``.

        Raises:
            ModelNotFoundError: this version has no such file.
        """
        for entry in self.files:
            if entry.role == role:
                return entry
        from modelstore.errors import ModelNotFoundError

        msg = f"{self.model_id}@{self.version} has no {role!r} file"
        raise ModelNotFoundError(msg)

    def has_file(self, role: str) -> bool:
        """True if this version has a file of ``role`` (never raises)."""
        return any(entry.role == role for entry in self.files)

    @property
    def parameter_defaults(self) -> dict[str, ParameterValue]:
        return {p.name: p.value for p in self.parameters}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the manifest.

        Raises:
            ManifestError: a parameter value is not finite.
        """
        data = {
            "schema_version": self.schema_version,
            "model_id": self.model_id,
            "version": self.version,
            "title": self.title,
            "upstream_index": self.upstream_index,
            "inputs": list(self.inputs),
            "parameters": [p.to_dict() for p in self.parameters],
            "files": [asdict(f) for f in self.files],
            "provenance": self.provenance,
        }
        if self.about is not None:  # absent from manifests published before `about` existed
            data["about"] = self.about.to_dict()
        return data

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, fixed indentation, trailing newline.

        Raises:
            ManifestError: a parameter value is not finite.
        """
        text = json.dumps(
            self.to_dict(), indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False
        )
        return (text + "\n").encode("utf-8")

    def content_key(self) -> bytes:
        """Bytes that are equal exactly when two manifests describe the same content.

        The digests of pickle files are left out: pickle bytes of the same sympy expression
        differ from run to run, and the expression digest in the provenance covers them.

        Raises:
            ManifestError: a parameter value is not finite.
        """
        d = self.to_dict()
        d["files"] = [
            {**f, "size": None, "digest": None} if f["role"] in _UNSTABLE_ROLES else f
            for f in d["files"]
        ]
        d["provenance"] = {k: v for k, v in d["provenance"].items() if k != "versions"}
        return json.dumps(d, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "manifest") -> Manifest:
        """Parse and check a published manifest (strict JSON, bounded size, known schema).

        Raises:
            ManifestError: the bytes are not a valid manifest; the message starts with ``where``.
            InvalidNameError: the model id or version does not follow the grammar.
        """
        raw = load_document(data, where, max_bytes=MAX_MANIFEST_BYTES, what="a manifest")
        return cls.from_dict(raw, where)

    @classmethod
    def from_dict(cls, data: Any, where: str = "manifest") -> Manifest:
        """A manifest from its JSON form.

        Raises:
            ManifestError: a field is missing, extra, of the wrong type, or of another schema.
            InvalidNameError: the model id or version does not follow the grammar.
        """
        if isinstance(data, dict) and data.get("schema_version") != SCHEMA_VERSION:
            msg = (
                f"{where}: unknown schema version {data.get('schema_version')!r}"
                f" (this modelstore reads version {SCHEMA_VERSION})"
            )
            raise ManifestError(msg)
        keys = {
            "schema_version", "model_id", "version", "title", "upstream_index",
            "inputs", "parameters", "files", "provenance",
        }  # fmt: skip
        d = _require(data, keys, {"about"}, where)
        try:
            model_id = check_model_id(d["model_id"])
            version = check_version(d["version"])
        except ValueError as exc:
            raise ManifestError(f"{where}: {exc}") from None
        where = f"{where} {model_id}@{version}"
        title = _string(d["title"], f"{where}.title")
        upstream_index = d["upstream_index"]
        if upstream_index is not None and (
            not isinstance(upstream_index, int) or isinstance(upstream_index, bool)
        ):
            msg = f"{where}: upstream_index must be an integer or null"
            raise ManifestError(msg)
        inputs = d["inputs"]
        if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
            msg = f"{where}: inputs must be a list of names"
            raise ManifestError(msg)
        if not isinstance(d["parameters"], list) or not isinstance(d["files"], list):
            msg = f"{where}: parameters and files must be lists"
            raise ManifestError(msg)
        parameters = tuple(
            Parameter.from_dict(p, f"{where} parameter {i}") for i, p in enumerate(d["parameters"])
        )
        names = [p.name for p in parameters]
        if len(set(names)) != len(names):
            msg = f"{where}: duplicated parameter names"
            raise ManifestError(msg)
        files = tuple(FileEntry.from_dict(f, f"{where} file {i}") for i, f in enumerate(d["files"]))
        roles = [f.role for f in files]
        if len(set(roles)) != len(roles):
            msg = f"{where}: a file role is listed twice: {roles}"
            raise ManifestError(msg)
        for required in ("expressions", "intensity-srepr", "reference-values"):
            if required not in roles:
                msg = f"{where}: no {required!r} file"
                raise ManifestError(msg)
        provenance = d["provenance"]
        if not isinstance(provenance, dict) or "expression_digest" not in provenance:
            msg = f"{where}: provenance must be an object with an expression_digest"
            raise ManifestError(msg)
        parse_digest(provenance["expression_digest"])
        about = None if "about" not in d else About.from_dict(d["about"], f"{where} about")
        return cls(
            model_id=model_id,
            version=version,
            title=title,
            upstream_index=upstream_index,
            inputs=tuple(inputs),
            parameters=parameters,
            files=files,
            provenance=provenance,
            about=about,
        )

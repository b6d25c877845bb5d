"""Whom to believe: index signatures (``signing``), the trust policy and rollback state
(``policy``), and lock files that pin exact versions (``lockfile``)."""

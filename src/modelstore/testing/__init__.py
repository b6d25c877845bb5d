"""Conformance suites shipped with the package, for whoever implements a contract
(``modelstore.testing.store.StoreTests`` for stores); they need pytest."""

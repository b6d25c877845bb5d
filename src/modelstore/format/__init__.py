"""What a registry's files say and how they are read safely: names, index, manifest, documents.

``names`` (ids, versions, references), ``index`` and ``manifest`` (the JSON documents),
``jsondoc`` (strict JSON), ``srepr`` and ``forms`` (allow-listed sympy text), ``unpickle``
(allow-listed pickles), ``reference`` (bounded zarr reference values), ``arraycode`` (the array
program, generated) and ``arraycheck`` (its AST allow-list and size budget).
"""

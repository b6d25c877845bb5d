"""A publisher process for the fault tests: publishes versions of a model as fast as it can.

    python publisher.py REGISTRY FIRST COUNT [TAG]

Publishes default@1.<FIRST+i>.0 for i < COUNT, each with its own C source blob (so every
publish writes a new blob, a manifest and the index), copying the other files from the
embedded registry. Prints ``ready`` once set up, then one line per publish result.
"""

from __future__ import annotations

import dataclasses
import sys

from modelstore.format.manifest import FileEntry
from modelstore.registry import Registry, embedded_registry_root


def main() -> None:
    root, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    tag = sys.argv[4] if len(sys.argv) > 4 else ""
    source = Registry(embedded_registry_root())
    manifest = source.manifest("default@1.1.0")
    blobs = {f.role: source.read_file(manifest, f.role) for f in manifest.files}
    target = Registry(root)
    print("ready", flush=True)
    for minor in range(first, first + count):
        blobs["native-source"] = (
            blobs["native-source"].split(b"\n/* publish")[0]
            + f"\n/* publish {minor} {tag} */\n".encode()
        )
        files = tuple(FileEntry.for_bytes(f.role, blobs[f.role]) for f in manifest.files)
        version = dataclasses.replace(manifest, version=f"1.{minor}.0", files=files)
        try:
            print(target.publish(version, blobs), minor, flush=True)
        except Exception as exc:
            print(type(exc).__name__, minor, flush=True)


if __name__ == "__main__":
    main()

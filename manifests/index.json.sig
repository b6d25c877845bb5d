{
 "schema_version": 1,
 "index_digest": "sha256:be3e95fddd2b3e82001875f716a9b6e00f3aeb861b1a3e5f404a54ef8f2367ea",
 "signatures": [
  {
   "algorithm": "ed25519",
   "key_id": "ed25519:c4a5ceea36bae821cf969dcbd34f3b04",
   "signature": "Y69iLbIEOEjAZ7l8FlOrhtntcTBhDshBZ8rAndKnzEz8d386KB8QMzDtkGvLbFL9SKs0KQfMVQ3nMFO1lklwDw=="
  }
 ]
}

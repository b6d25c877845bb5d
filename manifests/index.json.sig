{
 "schema_version": 1,
 "index_digest": "sha256:9bb3c7660e90d66c7077c4bd777513379fa71b002d5b915e624aa47eab7dadf3",
 "signatures": [
  {
   "algorithm": "ed25519",
   "key_id": "ed25519:7d75a3518e0b538eebe3a02c3b538e15",
   "signature": "e2UFts54blhSUmJyEPgvUgypTkbo9ITEZu4PMz3AR403tIA+IJMRbxrIIUTfnfb7oa9BoXqcoXibBoFlQ/8tBQ=="
  }
 ]
}

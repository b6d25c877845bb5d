{
 "schema_version": 1,
 "index_digest": "sha256:c27707fe32357127ae4a93c8dd23fc2fb24838ac0bd5c0d7e3a1633c6becb0f3",
 "signatures": [
  {
   "algorithm": "ed25519",
   "key_id": "ed25519:7d75a3518e0b538eebe3a02c3b538e15",
   "signature": "KDuTD5++DToPGDr7LicOxSo6NpUvXLvbns01yvl9AwORwENtwPTvvZHZg4axgCDLjqjkALzh+IrJaHRSCYH5DA=="
  }
 ]
}

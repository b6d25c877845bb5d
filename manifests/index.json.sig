{
 "schema_version": 1,
 "index_digest": "sha256:af3a4185083b7a16514f36b3090f01b88a1930a7cce82afa34248073e46ad06f",
 "signatures": [
  {
   "algorithm": "ed25519",
   "key_id": "ed25519:c4a5ceea36bae821cf969dcbd34f3b04",
   "signature": "5Lur9EUZQ6wID5Nlpc0iYIjcCTka383bsWXc8LsOzhSSKhEM15TyfZxmJJUIXPcX8QSU7d4Kkbv5cpxsRI7QBg=="
  }
 ]
}

# store.cmake -- the publication store (tests/test_store.py, issue 21): bytes
# replicated per publication, one script call per batch, the dedup index
# rebuilt by a promoted replica.
saltrelay_pytest(test_store test_replicated_bytes_per_publication test_promoted_replica_dedups)
